"""PURE: the metric families of several worker processes -> the families of one exposition.

With MLOPS_WORKERS above 1 a scrape reaches one worker; that worker adds what every worker
counted (runtime/peers.py carries each one's families in the form ``to_wire`` gives), so one
scrape speaks for the pod. Counters and histograms add up sample by sample, as Prometheus'
``sum`` would across pods. A gauge adds up too (requests in flight, memory, open files) unless
it is a state the pod has only when every worker has it (ready: the smallest) or a figure of
the slowest or of the first (load time: the largest; start time: the earliest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import Metric

Wire = list[dict[str, Any]]

# how a gauge (or an info) of several workers becomes one; the others add up
GAUGE_MERGE: dict[str, Callable[[Iterable[float]], float]] = {
    "mlops_runtime_model_ready": min,
    "mlops_runtime_model_load_seconds": max,
    "mlops_runtime_model": max,  # the info: 1 where any worker has it
    "mlops_shadow_percent": max,
    "process_start_time_seconds": min,
    "process_max_fds": min,
}
ADDED = ("counter", "histogram", "gaugehistogram", "summary")


def to_wire(families: Iterable[Metric]) -> Wire:
    """Families as JSON-able dicts (labels as dicts, values as floats)."""
    return [
        {
            "name": f.name,
            "type": f.type,
            "help": f.documentation,
            "samples": [[s.name, dict(s.labels), float(s.value)] for s in f.samples],
        }
        for f in families
    ]


def merge(workers: Sequence[Wire]) -> list[Metric]:
    """One family per name, in the order first seen; a sample only some workers have (a route
    one of them served) is theirs alone."""
    order: list[str] = []
    kinds: dict[str, tuple[str, str]] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], list[float]]] = {}
    for wire in workers:
        for family in wire:
            name = str(family["name"])
            if name not in kinds:
                order.append(name)
                kinds[name] = (str(family["type"]), str(family["help"]))
                values[name] = {}
            elif kinds[name][0] != family["type"]:
                raise ValueError(f"workers disagree on the type of {name}")
            samples = values[name]
            for sample_name, labels, value in family["samples"]:
                key = (str(sample_name), tuple(sorted((str(k), str(v)) for k, v in labels.items())))
                samples.setdefault(key, []).append(float(value))
    out = []
    for name in order:
        typ, doc = kinds[name]
        combine = sum if typ in ADDED else GAUGE_MERGE.get(name, sum)
        metric = Metric(name, doc, typ)
        for (sample_name, labels), seen in values[name].items():
            metric.add_sample(sample_name, dict(labels), float(combine(seen)))
        out.append(metric)
    return out
