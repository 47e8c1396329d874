"""One worker per object, woken by watch events, with periodic resync and backoff.

Why not kopf's on.create/on.update/on.resume: those persist progress and a copy of the spec
(`last-handled-configuration`) in the object, and a timer or daemon would put a finalizer on
every object. Reconciliation here is level-based, so none of that bookkeeping is needed:
kopf's watch-stream (`on.event`) feeds this queue, the worker always reconciles the newest
body it has seen, and bursts of events collapse into one reconcile. The object carries no
kopf annotations and no finalizer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlops_operator.contract import Requeue

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)


ReconcileFn = Callable[[dict[str, Any], dt.datetime], Awaitable[Requeue | None]]


class QueueObserver(Protocol):
    """Instrumentation (metrics.py): sees what the queue sees, must not raise or block."""

    def updated(self, queue: str, body: dict[str, Any]) -> None: ...
    def reconciled(self, queue: str, seconds: float, outcome: str) -> None: ...
    def forgotten(self, queue: str, namespace: str, name: str) -> None: ...


# How long watch events older than this process's own last write of an object are skipped
# while that write's own event is on its way (a watch that restarted past it is not waited for).
OWN_WRITE_SECONDS = 10.0


@dataclass
class _Slot:
    body: dict[str, Any]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    failures: int = 0
    busy: bool = False  # inside a reconcile pass
    # (resourceVersion, generation, until): the body is this process's own write, newer than
    # the events the watch delivers before that write's own
    own: tuple[str, int, float] | None = None


class WorkQueue:
    def __init__(
        self,
        name: str,
        reconcile: ReconcileFn,
        resync_seconds: float,
        max_backoff: float = 300.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        observer: QueueObserver | None = None,
        max_concurrent: int = 0,
    ) -> None:
        self.name = name
        # At most this many passes at once (0: no bound), first come first served, as
        # controller-runtime's MaxConcurrentReconciles and kube-controller-manager's
        # --concurrent-*-syncs bound theirs. Unbounded, a burst of 1,000 objects ran 1,000
        # passes interleaved on one event loop: each finished only near the end of the burst
        # and held its body, its pods and its requests all that time (the memory and the
        # latency of bench-reconcile at 1,000).
        self._passes = asyncio.Semaphore(max_concurrent) if max_concurrent > 0 else None
        self._reconcile = reconcile
        self._resync = resync_seconds
        self._max_backoff = max_backoff
        self._clock = clock
        self._slots: dict[Key, _Slot] = {}
        self._observer = observer
        self._stopping = False

    def __len__(self) -> int:
        return len(self._slots)

    def update(self, body: dict[str, Any]) -> None:
        """A new version of the object was seen: remember it and wake its worker."""
        if self._stopping:
            return
        m = body["metadata"]
        key = (m["namespace"], m["name"])
        slot = self._slots.get(key)
        if slot is None or slot.body["metadata"].get("uid") != m.get("uid"):
            if slot and slot.task:
                slot.task.cancel()
            slot = self._slots[key] = _Slot(body=body)
            slot.task = asyncio.create_task(self._run(key, slot), name=f"{self.name}:{key}")
        else:
            if slot.own is not None and self._older_than_own(slot.own, m):
                return  # the next pass works on the newer body it already has
            slot.own = None
            slot.body = body
        slot.wake.set()
        if self._observer:
            self._observe(self._observer.updated, self.name, body)

    @staticmethod
    def _older_than_own(own: tuple[str, int, float], m: dict[str, Any]) -> bool:
        """A watch delivers an object's versions in order, so until the event of our own write
        arrives, every event is of an older version. A pass working on one would compute a
        status from before its own last write, which the API server refuses (409), and read
        the object again: at 1,000 objects, as many refused writes as accepted ones."""
        rv, generation, until = own
        if m.get("resourceVersion") == rv or time.monotonic() > until:
            return False
        return int(m.get("generation") or 0) <= generation

    def wrote(self, body: dict[str, Any]) -> None:
        """The object as this process has just written it (the API server's answer): the next
        pass starts from it, not from the watch events still on their way."""
        m = body.get("metadata") or {}
        slot = self._slots.get((m.get("namespace", ""), m.get("name", "")))
        if slot is None or slot.body["metadata"].get("uid") != m.get("uid"):
            return
        slot.body = body
        until = time.monotonic() + OWN_WRITE_SECONDS
        slot.own = (str(m.get("resourceVersion")), int(m.get("generation") or 0), until)
        if self._observer:
            self._observe(self._observer.updated, self.name, body)

    def poke(self, namespace: str, name: str) -> None:
        """Something the object depends on changed (a child, a related object)."""
        slot = self._slots.get((namespace, name))
        if slot:
            slot.wake.set()

    def poke_where(self, wanted: Callable[[dict[str, Any]], bool]) -> int:
        """Wake every object whose newest body is `wanted`; -> how many."""
        woken = 0
        for slot in self._slots.values():
            if wanted(slot.body):
                slot.wake.set()
                woken += 1
        return woken

    def forget(self, namespace: str, name: str) -> None:
        slot = self._slots.pop((namespace, name), None)
        if slot and slot.task:
            slot.task.cancel()
        if self._observer:
            self._observe(self._observer.forgotten, self.name, namespace, name)

    def _drop(self, key: Key, slot: _Slot) -> None:
        """Forget, from inside the object's own worker (which then ends)."""
        if self._slots.get(key) is slot:
            del self._slots[key]
            if self._observer:
                self._observe(self._observer.forgotten, self.name, *key)

    def body(self, namespace: str, name: str) -> dict[str, Any] | None:
        slot = self._slots.get((namespace, name))
        return slot.body if slot else None

    async def stop(self, grace: float = 0.0) -> None:
        """No new passes; a pass under way may finish within `grace` seconds (then it is
        cancelled, as a crash would end it); workers waiting for their next pass end at once.

        kopf waits 5 s for tasks it did not start before it cancels them, so stopping the
        workers in its cleanup activity is what makes a SIGTERM take well under a second."""
        self._stopping = True
        tasks = [s.task for s in self._slots.values() if s.task]
        busy = {s.task for s in self._slots.values() if s.task and s.busy and grace > 0}
        for t in tasks:
            if t not in busy:
                t.cancel()
        if busy:
            _, late = await asyncio.wait(busy, timeout=grace)
            for t in late:
                t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._slots.clear()

    @staticmethod
    def _observe(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # instrumentation never breaks reconciliation
            log.exception("work queue observer failed")

    def _backoff(self, first: float, failures: int) -> float:
        # exponential, with jitter so that objects failing together do not retry together
        delay = min(self._max_backoff, first * 2 ** min(failures - 1, 10))
        return float(delay * random.uniform(0.9, 1.1))

    async def _run(self, key: Key, slot: _Slot) -> None:
        while True:
            async with self._passes or contextlib.nullcontext():
                delay = await self._pass(key, slot)
            if delay is None or self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(slot.wake.wait(), timeout=delay)

    async def _pass(self, key: Key, slot: _Slot) -> float | None:
        """One reconcile of the newest body -> seconds until the next unless woken; None: the
        object is forgotten. Events that came while it waited for its turn are in the body it
        works on, so they need no pass of their own."""
        slot.wake.clear()
        delay: float
        started = time.perf_counter()
        slot.busy = True
        try:
            result = await self._reconcile(slot.body, self._clock())
            if result is not None and result.forget:
                self._drop(key, slot)
                return None
            if result is None:
                slot.failures, delay, outcome = 0, self._resync, "success"
            elif result.backoff:
                slot.failures += 1
                delay, outcome = self._backoff(result.after, slot.failures), "requeue"
            else:  # never later than the resync, which stays the backstop
                slot.failures, delay = 0, min(result.after, self._resync)
                outcome = "requeue"
        except asyncio.CancelledError:
            raise
        except Exception:  # the operator never dies on one object
            slot.failures += 1
            log.exception("%s %s/%s: reconcile failed (attempt %d)", self.name, *key, slot.failures)
            delay, outcome = self._backoff(1.0, slot.failures), "error"
        finally:
            slot.busy = False
        if self._observer:
            elapsed = time.perf_counter() - started
            self._observe(self._observer.reconciled, self.name, elapsed, outcome)
        return delay
