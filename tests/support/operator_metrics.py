"""Reading a running operator's /metrics (Prometheus text format)."""

from __future__ import annotations

import socket

import requests
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> Samples:
    """{(sample name, labels): value} from http://127.0.0.1:<port>/metrics."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over samples of `name` whose labels include `labels` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def nonzero(samples: Samples, name: str) -> dict[str, float]:
    """The samples of `name` above zero, keyed by their labels (for assertion messages)."""
    return {
        ",".join(f"{k}={v}" for k, v in sorted(ls)): x
        for (n, ls), x in samples.items()
        if n == name and x
    }
