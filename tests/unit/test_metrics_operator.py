"""The operator's metrics: what the work queue reports, the Ready gauge, spec-to-Ready time."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from mlops_operator.contract import Requeue
from mlops_operator.metrics import OperatorMetrics, serve
from mlops_operator.workqueue import WorkQueue
from tests.support.operator_metrics import free_port

KIND = "ModelDeployment"
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def fresh() -> OperatorMetrics:
    return OperatorMetrics(CollectorRegistry())


def sample(m: OperatorMetrics, name: str, **labels: str) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


def body(
    generation: int = 1,
    ready: str | None = None,
    observed: int | None = None,
    name: str = "fraud",
) -> dict[str, Any]:
    b: dict[str, Any] = {
        "metadata": {
            "namespace": "ml",
            "name": name,
            "uid": "u1",
            "generation": generation,
            "creationTimestamp": T0.isoformat().replace("+00:00", "Z"),
        }
    }
    if ready is not None:
        b["status"] = {
            "observedGeneration": observed if observed is not None else generation,
            "conditions": [{"type": "Ready", "status": ready}],
        }
    return b


def at(seconds: float) -> float:
    return T0.timestamp() + seconds


def test_spec_to_ready_from_creation_and_from_a_spec_change() -> None:
    m = fresh()
    # a new object: the clock starts at its creationTimestamp, not when the operator saw it
    m.observe_status(KIND, "ml", "fraud", 1, None, observed_generation=-1, created_at=at(0))
    m.observe_status(KIND, "ml", "fraud", 1, False, now=at(3))
    m.observe_status(KIND, "ml", "fraud", 1, True, now=at(12))
    assert sample(m, "mlops_operator_spec_to_ready_seconds_count", kind=KIND) == 1
    assert sample(m, "mlops_operator_spec_to_ready_seconds_sum", kind=KIND) == 12
    # Ready again at the same generation (resync, another event): nothing new to time
    m.observe_status(KIND, "ml", "fraud", 1, True, now=at(40))
    assert sample(m, "mlops_operator_spec_to_ready_seconds_count", kind=KIND) == 1
    # a spec change: Ready=True that still describes generation 1 does not stop the clock
    m.observe_status(KIND, "ml", "fraud", 2, True, observed_generation=1, now=at(100))
    m.observe_status(KIND, "ml", "fraud", 2, False, now=at(101))
    m.observe_status(KIND, "ml", "fraud", 2, True, now=at(105))
    assert sample(m, "mlops_operator_spec_to_ready_seconds_count", kind=KIND) == 2
    assert sample(m, "mlops_operator_spec_to_ready_seconds_sum", kind=KIND) == 17


def test_already_ready_when_first_seen_is_not_timed() -> None:
    # e.g. after an operator restart: the spec change happened before this process existed
    m = fresh()
    m.updated(KIND, body(generation=3, ready="True"))
    assert sample(m, "mlops_operator_spec_to_ready_seconds_count", kind=KIND) == 0
    assert sample(m, "mlops_operator_objects", kind=KIND, ready="True") == 1


def test_ready_gauge_follows_objects_and_forgets_deleted_ones() -> None:
    m = fresh()
    m.updated(KIND, body(name="a"))
    m.updated(KIND, body(name="b", ready="False"))
    assert sample(m, "mlops_operator_objects", kind=KIND, ready="Unknown") == 1
    assert sample(m, "mlops_operator_objects", kind=KIND, ready="False") == 1
    m.updated(KIND, body(name="a", ready="True"))
    m.updated(KIND, body(name="b", ready="True"))
    assert sample(m, "mlops_operator_objects", kind=KIND, ready="True") == 2
    assert sample(m, "mlops_operator_objects", kind=KIND, ready="Unknown") == 0
    assert sample(m, "mlops_operator_objects", kind=KIND, ready="False") == 0
    m.forgotten(KIND, "ml", "a")
    m.forgotten(KIND, "ml", "a")  # twice: no negative counts
    assert sample(m, "mlops_operator_objects", kind=KIND, ready="True") == 1


def test_the_work_queue_reports_each_reconcile() -> None:
    m = fresh()
    results: list[Any] = [None, Requeue(0.001), RuntimeError("boom")]

    async def reconcile(_: dict[str, Any], __: dt.datetime) -> Requeue | None:
        r = results.pop(0) if results else None
        if isinstance(r, Exception):
            raise r
        return r

    async def scenario() -> None:
        q = WorkQueue(KIND, reconcile, resync_seconds=0.01, observer=m)
        q.update(body(ready="False"))
        for _ in range(200):
            if not results:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        q.forget("ml", "fraud")
        await q.stop()

    asyncio.run(scenario())
    assert sample(m, "mlops_operator_reconcile_total", kind=KIND, result="success") >= 1
    assert sample(m, "mlops_operator_reconcile_total", kind=KIND, result="requeue") == 1
    assert sample(m, "mlops_operator_reconcile_total", kind=KIND, result="error") == 1
    assert sample(m, "mlops_operator_reconcile_duration_seconds_count", kind=KIND) >= 3
    # the queue also fed the Ready gauge, and forgetting the object emptied it
    assert sample(m, "mlops_operator_objects", kind=KIND, ready="False") == 0


def test_a_broken_observer_does_not_break_the_queue() -> None:
    class Broken:
        def updated(self, queue: str, body: dict[str, Any]) -> None:
            raise ValueError("observer bug")

        def reconciled(self, queue: str, seconds: float, outcome: str) -> None:
            raise ValueError("observer bug")

        def forgotten(self, queue: str, namespace: str, name: str) -> None:
            raise ValueError("observer bug")

    calls: list[str] = []

    async def reconcile(b: dict[str, Any], _: dt.datetime) -> Requeue | None:
        calls.append(b["metadata"]["name"])
        return None

    async def scenario() -> None:
        q = WorkQueue(KIND, reconcile, resync_seconds=60, observer=Broken())
        q.update(body())
        await asyncio.sleep(0.05)
        q.forget("ml", "fraud")
        await q.stop()

    asyncio.run(scenario())
    assert calls == ["fraud"]


def test_api_errors_and_leadership() -> None:
    m = fresh()
    m.observe_api_error("patch", "deployments", 409)
    m.observe_api_error("GET", "pods", "timeout")
    assert (
        sample(
            m, "mlops_operator_api_errors_total", verb="PATCH", resource="deployments", code="409"
        )
        == 1
    )
    assert sample(m, "mlops_operator_api_errors_total", verb="GET", resource="pods", code="timeout")
    m.set_leader(True)
    assert sample(m, "mlops_operator_leader") == 1
    m.set_leader(False)
    assert sample(m, "mlops_operator_leader") == 0


def test_api_requests_and_events_are_counted_apart_from_errors() -> None:
    m = fresh()
    m.observe_api_request("patch", "modeldeployments/status", 200)
    m.observe_api_request("patch", "modeldeployments/status", 200)
    m.observe_api_request("PUT", "leases", 409)
    m.observe_event("Normal")
    requests = "mlops_operator_api_requests_total"
    status = {"verb": "PATCH", "resource": "modeldeployments/status", "code": "200"}
    assert sample(m, requests, **status) == 2
    assert sample(m, requests, verb="PUT", resource="leases", code="409") == 1
    assert sample(m, "mlops_operator_events_total", type="Normal") == 1
    assert sample(m, "mlops_operator_events_total", type="Warning") == 0
    # a request is not an error: the error counter moves only when observe_api_error is called
    lease = {"verb": "PUT", "resource": "leases", "code": "409"}
    assert sample(m, "mlops_operator_api_errors_total", **lease) == 0


def test_served_over_http() -> None:
    m = fresh()
    m.reconciled(KIND, 0.2, "success")
    port = free_port()

    async def scenario() -> tuple[str, str, str]:
        runner = await serve(port, m, host="127.0.0.1")
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    health = await r.text()
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    return health, r.headers["Content-Type"], await r.text()
        finally:
            await runner.cleanup()

    health, ctype, text = asyncio.run(scenario())
    assert health == "ok\n" and ctype.startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "mlops_operator_reconcile",
        "mlops_operator_reconcile_duration_seconds",
        "mlops_operator_api_errors",
        "mlops_operator_api_requests",
        "mlops_operator_events",
        "mlops_operator_objects",
        "mlops_operator_spec_to_ready_seconds",
        "mlops_operator_leader",
    } <= names


def test_api_error_resources_never_carry_object_names() -> None:
    from mlops_operator.metrics import resource_of

    cases = {
        "/apis/apps/v1/namespaces/ml/deployments/fraud": "deployments",
        "/apis/apps/v1/namespaces/ml/deployments": "deployments",
        "/apis/mlops.dev/v1alpha1/namespaces/ml/modeldeployments/fraud/status": (
            "modeldeployments/status"
        ),
        "/api/v1/namespaces/ml/pods?labelSelector=a%3Db": "pods",
        "/api/v1/namespaces/ml": "namespaces",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x.mlops.dev": (
            "customresourcedefinitions"
        ),
        "deployments": "deployments",
    }
    assert {p: resource_of(p) for p in cases} == cases


def test_a_recreated_object_is_timed_from_its_own_creation() -> None:
    m = fresh()
    m.observe_status(KIND, "ml", "fraud", 1, None, created_at=at(0), uid="u1", now=at(0))
    m.observe_status(KIND, "ml", "fraud", 1, True, uid="u1", now=at(5))
    # deleted and created again under the same name, before the queue noticed the delete
    m.observe_status(KIND, "ml", "fraud", 1, None, created_at=at(100), uid="u2", now=at(101))
    m.observe_status(KIND, "ml", "fraud", 1, True, uid="u2", now=at(103))
    assert sample(m, "mlops_operator_spec_to_ready_seconds_count", kind=KIND) == 2
    assert sample(m, "mlops_operator_spec_to_ready_seconds_sum", kind=KIND) == 5 + 3
    assert sample(m, "mlops_operator_objects", kind=KIND, ready="True") == 1
