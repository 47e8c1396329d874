from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import pytest

from mlops_operator.contract import Requeue
from mlops_operator.workqueue import WorkQueue


def body(name: str = "a", uid: str = "u1", **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": uid, **metadata}}


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


def versioned(rv: str, generation: int = 1, status: str = "") -> dict[str, Any]:
    b = body()
    b["metadata"].update(resourceVersion=rv, generation=generation)
    b["status"] = {"seen": status}
    return b


def rv_of(q: WorkQueue) -> str:
    b = q.body("ns", "a")
    assert b is not None
    return str(b["metadata"]["resourceVersion"])


def test_watch_events_older_than_the_own_last_write_are_skipped_until_its_own_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass after our own status write works on what was written, not on the watch's older
    versions still on their way (their status write would be refused as stale, 409)."""
    import mlops_operator.workqueue as wq

    seen: list[str] = []

    async def reconcile(b: dict[str, Any], _: dt.datetime) -> Requeue | None:
        seen.append(b["metadata"]["resourceVersion"])
        return None

    async def scenario() -> list[str]:
        q = WorkQueue("T", reconcile, resync_seconds=3600)
        q.update(versioned("1"))
        await asyncio.sleep(0.05)
        q.wrote(versioned("3", status="ours"))  # the API server's answer to our write
        q.update(versioned("2"))  # an older version the watch had not delivered yet
        assert rv_of(q) == "3"
        q.update(versioned("3", status="ours"))  # our write's own event: newer ones count again
        q.update(versioned("4"))
        assert rv_of(q) == "4"
        q.wrote(versioned("5"))
        q.update(versioned("6", generation=2))  # a spec change is never older than our write
        assert rv_of(q) == "6"
        # a watch that restarted past our write's event is not waited for forever
        monkeypatch.setattr(wq, "OWN_WRITE_SECONDS", 0.0)
        q.wrote(versioned("7", generation=2))
        await asyncio.sleep(0.01)
        q.update(versioned("9", generation=2))
        assert rv_of(q) == "9"
        await asyncio.sleep(0.05)
        await q.stop()
        return seen

    passes = asyncio.run(scenario())
    assert passes[0] == "1" and "2" not in passes, passes


def test_a_write_of_another_object_under_the_same_name_is_ignored() -> None:
    async def reconcile(_: dict[str, Any], __: dt.datetime) -> Requeue | None:
        return None

    async def scenario() -> str:
        q = WorkQueue("T", reconcile, resync_seconds=3600)
        q.update(versioned("1"))
        other = versioned("2")
        other["metadata"]["uid"] = "u2"
        q.wrote(other)
        rv = rv_of(q)
        await q.stop()
        return rv

    assert asyncio.run(scenario()) == "1"


def test_poke_where_wakes_only_the_wanted_objects() -> None:
    passes: list[str] = []

    async def reconcile(b: dict[str, Any], _: dt.datetime) -> Requeue | None:
        passes.append(b["metadata"]["name"])
        return None

    async def scenario() -> int:
        q = WorkQueue("T", reconcile, resync_seconds=3600)
        for name in ("a", "b", "c"):
            q.update({**body(name), "spec": {"follows": name != "b"}})
        await asyncio.sleep(0.1)
        woken = q.poke_where(lambda b: bool(b["spec"]["follows"]))
        await asyncio.sleep(0.1)
        await q.stop()
        return woken

    assert asyncio.run(scenario()) == 2
    assert sorted(passes) == ["a", "a", "b", "c", "c"], passes


def test_at_most_max_concurrent_passes_run_at_once_first_come_first_served() -> None:
    running, most, order = 0, 0, []
    release = asyncio.Event()

    async def reconcile(b: dict[str, Any], _: dt.datetime) -> Requeue | None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        order.append(b["metadata"]["name"])
        await release.wait()
        running -= 1
        return None

    async def scenario() -> None:
        q = WorkQueue("T", reconcile, resync_seconds=3600, max_concurrent=2)
        for i in range(6):
            q.update(body(f"o{i}", f"u{i}"))
        await asyncio.sleep(0.1)
        assert order == ["o0", "o1"]  # the others wait for a free pass
        release.set()
        await asyncio.sleep(0.1)
        await q.stop()

    asyncio.run(scenario())
    assert most == 2
    assert order == [f"o{i}" for i in range(6)]


def test_events_while_waiting_for_a_pass_make_one_pass_on_the_newest_body() -> None:
    seen: list[tuple[str, int]] = []
    release = asyncio.Event()

    async def reconcile(b: dict[str, Any], _: dt.datetime) -> Requeue | None:
        seen.append((b["metadata"]["name"], b["metadata"].get("generation", 0)))
        if b["metadata"]["name"] == "busy":
            await release.wait()
        return None

    async def scenario() -> None:
        q = WorkQueue("T", reconcile, resync_seconds=3600, max_concurrent=1)
        q.update(body("busy", "b"))
        await asyncio.sleep(0.05)
        for gen in (1, 2, 3):  # three versions of the same object while "busy" holds the pass
            q.update(body("w", "w", generation=gen))
            await asyncio.sleep(0.01)
        release.set()
        await asyncio.sleep(0.1)
        await q.stop()

    asyncio.run(scenario())
    assert seen == [("busy", 0), ("w", 3)]


def test_stop_ends_the_passes_still_waiting_for_their_turn() -> None:
    started: list[str] = []

    async def reconcile(b: dict[str, Any], _: dt.datetime) -> Requeue | None:
        started.append(b["metadata"]["name"])
        await asyncio.sleep(3600)
        return None

    async def scenario() -> None:
        q = WorkQueue("T", reconcile, resync_seconds=3600, max_concurrent=1)
        for i in range(3):
            q.update(body(f"o{i}", f"u{i}"))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(q.stop(), timeout=2)
        assert len(q) == 0

    asyncio.run(scenario())
    assert started == ["o0"]
