"""Leader election semantics (client-go's) against an in-memory Lease and a fake clock."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from mlops_operator.leader import (
    Conflict,
    LeaderElector,
    LeaseError,
    Record,
    Timing,
    micro_time,
)
from mlops_operator.settings import Settings, SettingsError


class Clock:
    """Monotonic time that only moves when a test (or a fake sleep) moves it."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


class MemoryLease:
    """A Lease with the API server's optimistic concurrency: writes name the version read."""

    def __init__(self) -> None:
        self.record: Record | None = None
        self.version = 0
        self.fail: Exception | None = None
        self.writes = 0

    async def get(self) -> tuple[Record, str] | None:
        if self.fail:
            raise self.fail
        return (self.record, str(self.version)) if self.record else None

    async def create(self, record: Record) -> str:
        if self.record is not None:
            raise Conflict("exists")
        return self._write(record)

    async def update(self, record: Record, resource_version: str) -> str:
        if self.fail:
            raise self.fail
        if resource_version != str(self.version):
            raise Conflict("stale")
        return self._write(record)

    def _write(self, record: Record) -> str:
        self.record, self.version, self.writes = record, self.version + 1, self.writes + 1
        return str(self.version)


EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def elector(store: Any, identity: str, clock: Clock, skew: float = 0.0, **kw: Any) -> LeaderElector:
    return LeaderElector(
        store,
        identity,
        Timing(15, 10, 2),
        clock=clock,
        wall_clock=lambda: EPOCH + dt.timedelta(seconds=clock.t - 1000 + skew),
        sleep=clock.sleep,
        **kw,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_timing_scales_client_go_defaults() -> None:
    assert Timing.from_lease_duration(15) == Timing(15, 10, 2)
    assert Timing.from_lease_duration(30) == Timing(30, 20, 4)
    with pytest.raises(ValueError):
        Timing(10, 10, 2)


def test_first_candidate_creates_the_lease() -> None:
    store, clock = MemoryLease(), Clock()
    a = elector(store, "a", clock)
    assert run(a.try_acquire_or_renew())
    assert store.record == Record(
        holder="a",
        lease_duration_seconds=15,
        acquire_time="2026-11-01T00:00:00.000000Z",
        renew_time="2026-11-01T00:00:00.000000Z",
        transitions=0,
    )


def test_standby_waits_a_full_lease_after_the_last_renewal_it_saw() -> None:
    store, clock = MemoryLease(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)

    async def scenario() -> None:
        assert await a.try_acquire_or_renew()
        clock.t += 1
        assert not await b.try_acquire_or_renew()
        clock.t += 1
        assert await a.try_acquire_or_renew()  # renewal: the record changes
        clock.t += 1
        assert not await b.try_acquire_or_renew()  # b saw the change at t0+3
        # a dies here; b judges expiry by when it *saw* the last change, not by renewTime
        clock.t += 14.9
        assert not await b.try_acquire_or_renew()
        clock.t += 0.2
        assert await b.try_acquire_or_renew()

    run(scenario())
    assert store.record is not None
    assert (store.record.holder, store.record.transitions) == ("b", 1)


def test_old_leader_learns_it_lost() -> None:
    store, clock = MemoryLease(), Clock()
    changes: list[bool] = []
    a = elector(store, "a", clock, on_change=changes.append)

    async def scenario() -> str:
        await a.acquire()
        # someone took over while a was frozen (e.g. a long GC pause or a network partition)
        assert store.record is not None
        store._write(Record(holder="b", lease_duration_seconds=15, transitions=1))
        return await a.hold()

    why = run(scenario())
    assert "held by b" in why
    assert changes == [True, False] and not a.is_leader


def test_leader_gives_up_after_the_renew_deadline() -> None:
    store, clock = MemoryLease(), Clock()
    a = elector(store, "a", clock)

    async def scenario() -> tuple[str, float]:
        await a.acquire()
        start = clock.t
        store.fail = LeaseError("503 the API server is away")
        why = await a.hold()
        return why, clock.t - start

    why, after = run(scenario())
    assert "could not renew" in why
    # gives up after the renew deadline (10 s), well before the lease (15 s) could pass to
    # another replica: the two never reconcile together
    assert 10 <= after < 15


def test_renewals_keep_the_lease() -> None:
    store, clock = MemoryLease(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)

    async def scenario() -> None:
        await a.acquire()
        holding = asyncio.create_task(a.hold())
        for _ in range(30):  # 60 s of fake time with renewals every 2 s
            await clock.sleep(2)
            assert not await b.try_acquire_or_renew()
        assert not holding.done()
        holding.cancel()

    run(scenario())
    assert store.record is not None and store.record.holder == "a"


def test_release_hands_over_at_once() -> None:
    store, clock = MemoryLease(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)

    async def scenario() -> None:
        await a.acquire()
        assert not await b.try_acquire_or_renew()
        await a.release()
        assert store.record is not None
        assert (store.record.holder, store.record.lease_duration_seconds) == ("", 1)
        assert await b.try_acquire_or_renew()  # no waiting for expiry

    run(scenario())
    assert store.record is not None and store.record.transitions == 1


def test_racing_candidates_one_wins() -> None:
    store, clock = MemoryLease(), Clock()
    store._write(Record(holder="", lease_duration_seconds=1))
    both_read = asyncio.Barrier(2)
    original_get = store.get

    async def get_then_wait() -> tuple[Record, str] | None:
        got = await original_get()
        await both_read.wait()
        return got

    store.get = get_then_wait  # type: ignore[method-assign]
    a, b = elector(store, "a", clock), elector(store, "b", clock)

    async def scenario() -> list[bool]:
        return list(await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew()))

    results = run(scenario())
    assert sorted(results) == [False, True]
    assert store.record is not None and store.record.holder in ("a", "b")


def test_wall_clock_skew_does_not_matter() -> None:
    # b's wall clock is an hour ahead: a renewTime that looks ancient to it is still fresh
    store, clock = MemoryLease(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock, skew=3600)

    async def scenario() -> None:
        await a.acquire()
        for _ in range(10):
            clock.t += 2
            assert await a.try_acquire_or_renew()
            assert not await b.try_acquire_or_renew()

    run(scenario())


def test_micro_time() -> None:
    t = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert micro_time(t) == "2026-01-02T01:04:05.000006Z"


def test_record_round_trips_the_lease_spec() -> None:
    spec = {
        "holderIdentity": "pod-1_7",
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-11-01T00:00:00.000000Z",
        "renewTime": "2026-11-01T00:00:02.000000Z",
        "leaseTransitions": 3,
    }
    assert Record.from_spec(spec).to_spec() == spec
    assert Record.from_spec({}).holder == ""


def test_settings() -> None:
    s = Settings.from_env({})
    assert not s.leader_election
    assert (s.leader_election_name, s.leader_election_namespace) == ("mlops-operator", "")
    assert s.leader_election_lease_seconds == 15
    s = Settings.from_env(
        {
            "MLOPS_LEADER_ELECTION": "true",
            "MLOPS_LEADER_ELECTION_NAMESPACE": "mlops-system",
            "MLOPS_LEADER_ELECTION_NAME": "mlops-operator.leader",
            "MLOPS_LEADER_ELECTION_LEASE_SECONDS": "30",
        }
    )
    assert s.leader_election and s.leader_election_lease_seconds == 30
    assert s.leader_election_namespace == "mlops-system"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"MLOPS_LEADER_ELECTION": "maybe"}, "expected true or false"),
        ({"MLOPS_LEADER_ELECTION_NAMESPACE": "Bad_NS"}, "not a namespace name"),
        ({"MLOPS_LEADER_ELECTION_NAME": "Upper"}, "Lease name"),
        ({"MLOPS_LEADER_ELECTION_LEASE_SECONDS": "1"}, "between 3 and 300"),
    ],
)
def test_bad_settings(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError) as e:
        Settings.from_env(env)
    assert words in str(e.value)
