"""Adding up the metrics of several runtime workers (runtime/merge.py, metrics.py): pure."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlops_operator.runtime import merge
from mlops_operator.runtime.metrics import RuntimeMetrics


def worker(requests: int, route: str, ready: int, load_seconds: float) -> RuntimeMetrics:
    m = RuntimeMetrics("iris-prod", "ml", "3")
    for i in range(requests):
        m.observe(route, 200, 0.001 * (i + 1), rows=2)
    m.observe_batch(requests)
    m.ready.set(ready)
    m.load_seconds.set(load_seconds)
    m.info.info({"model_name": "iris", "model_uri": "models:/iris/3"})
    return m


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in BASE))
            out[(s.name, labels)] = s.value
    return out


BASE = ("model_deployment", "namespace", "model_version")


def test_a_scrape_of_one_worker_adds_up_all_of_them() -> None:
    a = worker(3, "/invocations", ready=1, load_seconds=1.5)
    b = worker(2, "/invocations", ready=1, load_seconds=2.5)
    c = worker(4, "/v2/models/{model}/infer", ready=0, load_seconds=0.5)
    # b and c answer as they would over their sockets: JSON
    peers = [json.loads(json.dumps(w.payload())) for w in (b, c)]
    got = samples(a.render_merged(peers))
    invocations = (("route", "/invocations"), ("status", "200"))
    infer = (("route", "/v2/models/{model}/infer"), ("status", "200"))
    assert got[("mlops_runtime_requests_total", invocations)] == 5
    assert got[("mlops_runtime_requests_total", infer)] == 4  # c's alone
    assert got[("mlops_runtime_predicted_rows_total", (("route", "/invocations"),))] == 10
    count = ("mlops_runtime_request_duration_seconds_count", (("route", "/invocations"),))
    assert got[count] == 5
    total = ("mlops_runtime_request_duration_seconds_sum", (("route", "/invocations"),))
    assert abs(got[total] - (0.001 + 0.002 + 0.003 + 0.001 + 0.002)) < 1e-9
    le_2ms = (("le", "0.002"), ("route", "/invocations"))
    assert got[("mlops_runtime_request_duration_seconds_bucket", le_2ms)] == 4
    assert got[("mlops_runtime_batch_size_count", ())] == 3
    assert got[("mlops_runtime_model_ready", ())] == 0  # one worker is not: the pod is not
    assert got[("mlops_runtime_model_load_seconds", ())] == 2.5  # the slowest
    info = ("mlops_runtime_model_info", (("model_name", "iris"), ("model_uri", "models:/iris/3")))
    assert got[info] == 1
    assert got[("mlops_runtime_workers", ())] == 3
    assert got[("process_resident_memory_bytes", ())] > 0


def test_one_worker_renders_as_before_and_says_so() -> None:
    a = worker(3, "/invocations", ready=1, load_seconds=1.0)
    got = samples(a.render())
    invocations = (("route", "/invocations"), ("status", "200"))
    assert got[("mlops_runtime_requests_total", invocations)] == 3
    assert got[("mlops_runtime_workers", ())] == 1
    assert got[("mlops_runtime_model_ready", ())] == 1


def test_gauges_follow_their_rule_and_a_type_conflict_is_refused() -> None:
    def gauge(name: str, value: float) -> merge.Wire:
        return [{"name": name, "type": "gauge", "help": "h", "samples": [[name, {}, value]]}]

    for name, expected in (
        ("mlops_runtime_requests_in_flight", 5.0),  # adds up
        ("mlops_runtime_model_ready", 2.0),
        ("process_start_time_seconds", 2.0),  # the earliest
        ("mlops_shadow_percent", 3.0),
    ):
        (family,) = merge.merge([gauge(name, 2.0), gauge(name, 3.0)])
        assert family.samples[0].value == expected, name
    counter = [{"name": "x", "type": "counter", "help": "h", "samples": [["x_total", {}, 1.0]]}]
    with pytest.raises(ValueError, match="disagree"):
        merge.merge([counter, gauge("x", 1.0)])
