"""An object whose namespace was deleted under it: the watch of that namespace can end before
the DELETED events of its objects, so a pass that finds it gone drops it from the work queue
(else it is reconciled, and its children applied into nothing, at every resync for ever)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from mlops_operator.clients.kube import ApiError
from mlops_operator.contract import Requeue
from mlops_operator.reconcilers.status_write import after_api_failure
from mlops_operator.workqueue import WorkQueue
from tests.support.fakes import FakeKube

pytestmark = pytest.mark.unit
NOW = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
GONE = ApiError(404, "NotFound", 'namespaces "ml" not found')
TERMINATING = ApiError(
    403, "Forbidden", "unable to create new content in namespace ml because it is being terminated"
)


def md(uid: str = "u1") -> dict[str, Any]:
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"namespace": "ml", "name": "fraud", "uid": uid, "generation": 1},
        "spec": {},
    }


def failure(kube: FakeKube, e: ApiError, body: dict[str, Any]) -> Requeue | None:
    return asyncio.run(after_api_failure(e, kube, lambda *_: None, body, NOW, {}))


def test_an_object_gone_with_its_namespace_is_forgotten() -> None:
    assert failure(FakeKube(), GONE, md()) == Requeue(0.0, "deleted", forget=True)


def test_one_re_created_under_the_name_is_another_object_and_this_one_is_forgotten() -> None:
    kube = FakeKube()
    kube.put(md(uid="u2"))
    out = failure(kube, GONE, md(uid="u1"))
    assert out is not None and out.forget


def test_one_still_there_in_a_terminating_namespace_is_kept() -> None:
    # a RetrainJob there still has its finalizer to remove: its worker must go on
    kube = FakeKube()
    kube.put(md())
    assert failure(kube, TERMINATING, md()) is None


def test_the_queue_drops_an_object_its_pass_found_gone_and_takes_it_anew() -> None:
    passes: list[str] = []

    async def reconcile(b: dict[str, Any], _: dt.datetime) -> Requeue | None:
        passes.append(b["metadata"]["uid"])
        return Requeue(0.0, "deleted", forget=True) if len(passes) == 1 else None

    async def scenario() -> tuple[int, int]:
        q = WorkQueue("T", reconcile, resync_seconds=0.01)
        q.update(md())
        await asyncio.sleep(0.1)
        after_drop = len(q)  # no more passes: a resync of 0.01 s would have made many
        q.update(md(uid="u2"))
        await asyncio.sleep(0.05)
        n = len(q)
        await q.stop()
        return after_drop, n

    after_drop, n = asyncio.run(scenario())
    assert after_drop == 0 and n == 1
    assert passes[0] == "u1" and passes.count("u1") == 1 and "u2" in passes
