from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import pytest

from mlops_operator.contract import Requeue
from mlops_operator.workqueue import WorkQueue


def body(name: str = "a") -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": "u1"}}


def test_backoff_grows_only_for_outages_and_events_coalesce() -> None:
    calls: list[float] = []
    plan: list[Requeue] = [Requeue(0.01, backoff=True)] * 4 + [Requeue(0.01)] * 3

    async def reconcile(_: dict[str, Any], __: dt.datetime) -> Requeue | None:
        calls.append(asyncio.get_running_loop().time())
        return plan.pop(0) if plan else None

    async def scenario() -> WorkQueue:
        q = WorkQueue("T", reconcile, resync_seconds=3600, max_backoff=1.0)
        q.update(body())
        await asyncio.sleep(0.8)
        await q.stop()
        return q

    asyncio.run(scenario())
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    # outage: 0.01, 0.02, 0.04, 0.08 (x jitter); then steady 0.01 polls; then resync (idle)
    assert len(calls) == 8
    assert gaps[3] > 3 * gaps[0]
    assert max(gaps[4:7]) < gaps[3]


def test_a_crashing_reconcile_is_retried_and_the_queue_survives() -> None:
    seen: list[str] = []

    async def reconcile(b: dict[str, Any], _: dt.datetime) -> Requeue | None:
        seen.append(b["metadata"]["name"])
        if len(seen) == 1:
            raise RuntimeError("boom")
        return None

    async def scenario() -> None:
        q = WorkQueue("T", reconcile, resync_seconds=3600)
        q.update(body("x"))
        await asyncio.sleep(1.5)
        await q.stop()

    asyncio.run(scenario())
    assert seen == ["x", "x"]


def test_a_requeue_never_waits_longer_than_the_resync() -> None:
    calls: list[float] = []

    async def reconcile(_: dict[str, Any], __: dt.datetime) -> Requeue | None:
        calls.append(asyncio.get_running_loop().time())
        return Requeue(3600.0, "next scheduled firing")  # tomorrow, say

    async def scenario() -> None:
        q = WorkQueue("T", reconcile, resync_seconds=0.1)
        q.update(body())
        await asyncio.sleep(0.55)
        await q.stop()

    asyncio.run(scenario())
    assert len(calls) >= 4  # one per resync period, not one in an hour


def test_stop_lets_a_pass_under_way_finish_within_the_grace_and_starts_no_other() -> None:
    seen: list[str] = []
    started = asyncio.Event()

    async def reconcile(b: dict[str, Any], _: dt.datetime) -> Requeue | None:
        seen.append(f"start {b['metadata']['name']}")
        started.set()
        await asyncio.sleep(0.05)
        seen.append(f"end {b['metadata']['name']}")
        return None

    async def scenario() -> None:
        q = WorkQueue("T", reconcile, resync_seconds=0.01)
        q.update(body("a"))
        await started.wait()
        await q.stop(grace=30)
        q.update(body("b"))  # an event while stopping starts nothing
        await asyncio.sleep(0.1)

    asyncio.run(scenario())
    assert seen == ["start a", "end a"]


@pytest.mark.parametrize("grace", [0.05, 0.0])  # past the grace, or none (the default)
def test_stop_cancels_a_pass_that_outlasts_the_grace_and_ends_idle_workers(grace: float) -> None:
    seen: list[str] = []
    started = asyncio.Event()

    async def reconcile(b: dict[str, Any], _: dt.datetime) -> Requeue | None:
        name = b["metadata"]["name"]
        seen.append(f"start {name}")
        if name == "slow":
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen.append("cancelled slow")
                raise
        return Requeue(3600.0, "idle for an hour")

    async def scenario() -> None:
        q = WorkQueue("T", reconcile, resync_seconds=3600)
        q.update(body("idle"))
        q.update(body("slow"))
        await started.wait()
        await q.stop(grace)  # returns: neither the hour's sleep nor the idle wait holds it
        assert len(q) == 0

    asyncio.run(scenario())
    assert seen == ["start idle", "start slow", "cancelled slow"]
