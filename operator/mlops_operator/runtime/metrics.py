"""Prometheus metrics of the runtime, in a registry of its own.

Every series carries ``model_deployment``, ``namespace`` and ``model_version`` (the contract in
DESIGN.md), so one Prometheus query can pick a ModelDeployment's pods whatever their pod names,
and a canary's analysis the pods of one version. The drift gauges
``mlops_feature_drift_psi{feature}``, ``mlops_drift_psi`` and ``mlops_prediction_drift_psi``
are what the operator's drift trigger reads; they are computed when scraped (drift.py) and
absent while there is no baseline or too little data. With several workers (MLOPS_WORKERS) the
worker a scrape reaches adds up every worker's counts (merge.py) and their drift windows' bin
counts, so one scrape speaks for the pod.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    Metric,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mlops_operator.contract import (
    METRIC_DRIFT_PSI,
    METRIC_DRIFT_WINDOW_ROWS,
    METRIC_FEATURE_DRIFT_PSI,
    METRIC_LABEL_MODEL_DEPLOYMENT,
    METRIC_LABEL_MODEL_VERSION,
    METRIC_LABEL_NAMESPACE,
    METRIC_LABEL_SHADOW_VERSION,
    METRIC_PREDICTION_DRIFT_PSI,
    METRIC_REQUEST_DURATION,
    METRIC_REQUESTS,
    METRIC_SHADOW_ABS_ERROR,
    METRIC_SHADOW_AGREEMENTS,
    METRIC_SHADOW_DURATION,
    METRIC_SHADOW_NUMERIC,
    METRIC_SHADOW_PREDICTIONS,
    METRIC_SHADOW_REL_ERROR,
    METRIC_SHADOW_REQUESTS,
)
from mlops_operator.runtime import merge
from mlops_operator.runtime.drift import DriftCounts, DriftMonitor, DriftSnapshot

# `*_created` series double the output and nobody queries them; this process is ours alone.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_LATEST
BASE = (METRIC_LABEL_MODEL_DEPLOYMENT, METRIC_LABEL_NAMESPACE, METRIC_LABEL_MODEL_VERSION)
# Request latency buckets: sub-millisecond resolution for small models, up to 10 s.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class RuntimeMetrics:
    """The runtime's metrics; label values for the contract labels are fixed at start."""

    def __init__(self, model_deployment: str, namespace: str, model_version: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.base = (model_deployment, namespace, model_version)
        r = self.registry
        self.requests = Counter(
            METRIC_REQUESTS,
            "HTTP requests by route template and status code.",
            [*BASE, "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            METRIC_REQUEST_DURATION,
            "Time from request to response, by route template.",
            [*BASE, "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "mlops_runtime_requests_in_flight",
            "Requests being served right now.",
            BASE,
            registry=r,
        ).labels(*self.base)
        self.rows = Counter(
            "mlops_runtime_predicted_rows",
            "Rows scored, by route template.",
            [*BASE, "route"],
            registry=r,
        )
        self.load_seconds = Gauge(
            "mlops_runtime_model_load_seconds",
            "Time taken to download and load the model (and its baseline).",
            BASE,
            registry=r,
        ).labels(*self.base)
        self.ready = Gauge(
            "mlops_runtime_model_ready",
            "1 once the model is loaded and the server is not draining.",
            BASE,
            registry=r,
        ).labels(*self.base)
        self.info = Info(
            "mlops_runtime_model",
            "The model this pod serves.",
            BASE,
            registry=r,
        ).labels(*self.base)
        self.batch_size = Histogram(
            "mlops_runtime_batch_size",
            "Requests scored by one call of the model (adaptive batching; 1 = alone).",
            BASE,
            buckets=BATCH_BUCKETS,
            registry=r,
        ).labels(*self.base)
        self.shadow = ShadowMetrics(r, self.base)
        ProcessCollector(registry=r)
        self.drift: DriftMonitor | None = None
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._rows: dict[str, Any] = {}

    def observe_batch(self, requests: int) -> None:
        self.batch_size.observe(requests)

    def observe(self, route: str, status: int, seconds: float, rows: int = 0) -> None:
        """Count one finished request (label children are cached: this is the hot path)."""
        key = (route, status)
        child = self._children.get(key)
        if child is None:
            child = (
                self.requests.labels(*self.base, route, str(status)),
                self.latency.labels(*self.base, route),
            )
            self._children[key] = child
        child[0].inc()
        child[1].observe(seconds)
        if rows:
            counter = self._rows.get(route)
            if counter is None:
                counter = self._rows[route] = self.rows.labels(*self.base, route)
            counter.inc(rows)

    def add_drift(self, monitor: DriftMonitor) -> None:
        self.drift = monitor

    def render(self) -> bytes:
        """This process's exposition (one worker: the pod's)."""
        families = list(self.registry.collect())
        if self.drift is not None:
            families += drift_families(self.base, self.drift.rows, self.drift.snapshot())
        return generate_latest(_Families([*families, self._workers(1)]))

    def payload(self) -> dict[str, Any]:
        """What this worker sends the worker that answers a scrape (runtime/peers.py)."""
        return {
            "families": merge.to_wire(self.registry.collect()),
            "drift": self.drift.counts().to_wire() if self.drift is not None else None,
        }

    def render_merged(self, peers: Sequence[dict[str, Any]]) -> bytes:
        """The exposition of all workers: this one's families and the ``payload`` of each
        peer added up, and PSI over their drift windows' counts added up."""
        own = merge.to_wire(self.registry.collect())
        families = merge.merge([own, *(p["families"] for p in peers)])
        if self.drift is not None:
            total = self.drift.counts()
            for p in peers:
                if p.get("drift") is not None:
                    total += DriftCounts.from_wire(p["drift"])
            snap = self.drift.snapshot_of(total)
            families += drift_families(self.base, total.input_rows, snap)
        return generate_latest(_Families([*families, self._workers(1 + len(peers))]))

    def _workers(self, n: int) -> GaugeMetricFamily:
        g = GaugeMetricFamily(
            "mlops_runtime_workers",
            "Worker processes whose counts this scrape adds up (MLOPS_WORKERS).",
            labels=list(BASE),
        )
        g.add_metric(list(self.base), n)
        return g


class _Families(Collector):
    """Families already collected, in the form generate_latest takes."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


class ShadowMetrics:
    """What a stable pod measures of the candidate it copies requests to (runtime/shadow.py),
    labelled with the candidate's version (shadow_version)."""

    OUTCOMES = ("ok", "error", "timeout", "dropped")

    def __init__(self, r: CollectorRegistry, base: tuple[str, str, str]) -> None:
        self.base = base
        labels = [*BASE, METRIC_LABEL_SHADOW_VERSION]
        self.requests = Counter(
            METRIC_SHADOW_REQUESTS,
            "Copies of prediction requests sent to the shadow candidate, by outcome: ok, "
            "error (a failed or non-200 answer), timeout, dropped (the queue was full).",
            [*labels, "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            METRIC_SHADOW_DURATION,
            "The candidate's time to answer a copy.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        doc = {
            METRIC_SHADOW_PREDICTIONS: "Predictions compared with the candidate's.",
            METRIC_SHADOW_AGREEMENTS: "Compared predictions the candidate gave identically.",
            METRIC_SHADOW_NUMERIC: "Compared predictions where both are numbers.",
            METRIC_SHADOW_ABS_ERROR: "Sum of |candidate - stable| over the numeric ones.",
            METRIC_SHADOW_REL_ERROR: "Sum of |candidate - stable| / |stable| over them.",
        }
        self.sums = {name: Counter(name, text, labels, registry=r) for name, text in doc.items()}
        self.percent = Gauge(
            "mlops_shadow_percent",
            "Share of the prediction requests copied to a shadow candidate now (0: off).",
            BASE,
            registry=r,
        ).labels(*base)
        self._seen: set[str] = set()

    def _first(self, version: str) -> None:
        # every series of a candidate exists from its first copy, at 0: a rate over the
        # interval is then 0, not absent, for outcomes that never happened
        if version in self._seen:
            return
        self._seen.add(version)
        for outcome in self.OUTCOMES:
            self.requests.labels(*self.base, version, outcome)
        for counter in self.sums.values():
            counter.labels(*self.base, version)

    def outcome(self, version: str, outcome: str) -> None:
        self._first(version)
        self.requests.labels(*self.base, version, outcome).inc()

    def duration(self, version: str, seconds: float) -> None:
        self.latency.labels(*self.base, version).observe(seconds)

    def compared(self, version: str, c: Any) -> None:
        """Add one shadow.Comparison."""
        self._first(version)
        for name, value in (
            (METRIC_SHADOW_PREDICTIONS, c.predictions),
            (METRIC_SHADOW_AGREEMENTS, c.agreements),
            (METRIC_SHADOW_NUMERIC, c.numeric),
            (METRIC_SHADOW_ABS_ERROR, c.absolute_error),
            (METRIC_SHADOW_REL_ERROR, c.relative_error),
        ):
            if value:
                self.sums[name].labels(*self.base, version).inc(value)


def drift_families(
    base: tuple[str, str, str], rows: int, snap: DriftSnapshot | None
) -> list[Metric]:
    """The drift gauges: the window's rows always, PSI once there is enough data (computed
    when scraped, drift.py)."""
    values = list(base)
    window = GaugeMetricFamily(
        METRIC_DRIFT_WINDOW_ROWS, "Rows in the drift window.", labels=list(BASE)
    )
    window.add_metric(values, rows)
    out: list[Metric] = [window]
    if snap is None:
        return out
    feature = GaugeMetricFamily(
        METRIC_FEATURE_DRIFT_PSI,
        "PSI of each input feature, window vs the version's training baseline.",
        labels=[*BASE, "feature"],
    )
    for name, value in snap.features.items():
        feature.add_metric([*values, name], value)
    overall = GaugeMetricFamily(
        METRIC_DRIFT_PSI,
        "Overall input drift: the largest feature PSI (<0.1 stable, >0.25 significant).",
        labels=list(BASE),
    )
    overall.add_metric(values, snap.overall)
    out += [feature, overall]
    if snap.prediction is not None:
        pred = GaugeMetricFamily(
            METRIC_PREDICTION_DRIFT_PSI,
            "PSI of the model's predictions, window vs the training baseline.",
            labels=list(BASE),
        )
        pred.add_metric(values, snap.prediction)
        out.append(pred)
    return out
