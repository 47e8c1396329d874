"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

kopf has no Lease-based election (its peering only pauses operators by priority and its docs
advise one replica), so two replicas would both reconcile. This module decides which replica
may run kopf at all:

- A candidate takes the Lease when nobody holds it, or when the holder has not renewed it for
  `lease_duration`. Like client-go, "not renewed" is judged by this process's own monotonic
  clock from the moment it last saw the Lease record change, never by comparing the holder's
  `renewTime` with our wall clock, so clock skew between nodes cannot hand the Lease over early.
- Every write is an update with the `resourceVersion` that was read, so when two candidates
  race, the API server lets exactly one win (409 Conflict for the other).
- The leader renews every `retry_period`; when it has not managed to for `renew_deadline`
  (shorter than `lease_duration`), or it sees another holder, it has lost. The caller then
  stops at once (main.py exits the process, as controller-runtime does): the margin
  `lease_duration - renew_deadline` is what keeps an old leader from still writing when the
  new one starts.
- On a clean shutdown the leader releases the Lease (empty holder), so a standby takes over
  after one retry instead of a whole lease duration.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import aiohttp

from mlops_operator import metrics
from mlops_operator.clients.kube import Credentials, session

log = logging.getLogger(__name__)

_SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class Timing:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    @classmethod
    def from_lease_duration(cls, seconds: float) -> Timing:
        """client-go's default ratios (15 s / 10 s / 2 s) scaled to another lease duration."""
        return cls(seconds, seconds * 2 / 3, seconds * 2 / 15)

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(f"need 0 < retry < renew deadline < lease duration: {self}")


@dataclass(frozen=True)
class Record:
    """The Lease's spec, the part the election reads and writes."""

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Record:
        return cls(
            holder=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder or None,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


class Conflict(Exception):
    """Someone else wrote the Lease between our read and our write."""


class LeaseError(Exception):
    """The API server refused or failed a Lease call (other than a conflict)."""


class LeaseStore(Protocol):
    async def get(self) -> tuple[Record, str] | None:
        """The record and its resourceVersion, or None when the Lease does not exist."""

    async def create(self, record: Record) -> str:
        """Create the Lease; Conflict when it exists. Returns the new resourceVersion."""

    async def update(self, record: Record, resource_version: str) -> str:
        """Replace the record if still at resource_version; Conflict otherwise."""


class HttpLeaseStore:
    """The Lease through the API server, over aiohttp (which kopf already uses)."""

    def __init__(
        self, creds: Credentials, namespace: str, name: str, request_timeout: float = 5.0
    ) -> None:
        self.namespace, self.name = namespace, name
        self._creds = creds
        self._timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None
        base = f"{creds.server}/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self._collection, self._item = base, f"{base}/{name}"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = session(self._creds, limit=2, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session:
            await self._session.close()

    async def _call(self, method: str, url: str, body: Any = None) -> dict[str, Any] | None:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        async with self._http().request(method, url, data=data, headers=headers) as r:
            text = await r.text()
            metrics.observe_api_request(method, "leases", r.status)
            if r.status == 404 and method == "GET":
                return None
            if r.status == 409:
                raise Conflict(text)
            if r.status >= 400:
                raise LeaseError(f"{method} lease {self.namespace}/{self.name}: {r.status} {text}")
            out: dict[str, Any] = json.loads(text)
            return out

    def _body(self, record: Record, resource_version: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": record.to_spec(),
        }

    async def get(self) -> tuple[Record, str] | None:
        out = await self._call("GET", self._item)
        if out is None:
            return None
        return Record.from_spec(out.get("spec") or {}), out["metadata"]["resourceVersion"]

    async def create(self, record: Record) -> str:
        out = await self._call("POST", self._collection, self._body(record, None))
        assert out is not None
        return str(out["metadata"]["resourceVersion"])

    async def update(self, record: Record, resource_version: str) -> str:
        out = await self._call("PUT", self._item, self._body(record, resource_version))
        assert out is not None
        return str(out["metadata"]["resourceVersion"])


def micro_time(t: dt.datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    # The pod name tells a person which replica leads; the pid tells two processes on one
    # host (or a restarted container in the same pod) apart.
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{os.getpid()}"


def default_namespace(configured: str) -> str:
    if configured:
        return configured
    try:
        with open(_SA_NAMESPACE) as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


_RETRYABLE = (LeaseError, aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError)


class LeaderElector:
    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        timing: Timing | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.identity = identity
        self.timing = timing or Timing()
        self._store = store
        self._clock, self._wall, self._sleep = clock, wall_clock, sleep
        self._on_change = on_change
        self._observed: Record | None = None
        self._observed_version = ""
        self._observed_at = 0.0
        self._leader = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def observed_holder(self) -> str:
        return self._observed.holder if self._observed else ""

    def _set_leader(self, value: bool) -> None:
        if value != self._leader:
            self._leader = value
            if self._on_change:
                self._on_change(value)

    def _observe(self, record: Record, version: str, at: float) -> None:
        # any write by the holder bumps the resourceVersion: that is the sign of life
        if (record, version) != (self._observed, self._observed_version):
            self._observed, self._observed_version, self._observed_at = record, version, at

    async def try_acquire_or_renew(self) -> bool:
        """One attempt, as client-go's tryAcquireOrRenew: True when we hold the Lease now."""
        now = self._clock()
        stamp = micro_time(self._wall())
        mine = Record(
            holder=self.identity,
            lease_duration_seconds=math.ceil(self.timing.lease_duration),
            acquire_time=stamp,
            renew_time=stamp,
        )
        current = await self._store.get()
        if current is None:
            try:
                version = await self._store.create(mine)
            except Conflict:
                return False
            self._observe(mine, version, now)
            return True

        record, version = current
        self._observe(record, version, now)
        held_by_other = bool(record.holder) and record.holder != self.identity
        if held_by_other and self._observed_at + record.lease_duration_seconds > now:
            return False
        if record.holder == self.identity:
            mine = replace(mine, acquire_time=record.acquire_time, transitions=record.transitions)
        else:
            mine = replace(mine, transitions=record.transitions + 1)
        try:
            version = await self._store.update(mine, version)
        except Conflict:
            return False
        self._observe(mine, version, now)
        return True

    async def acquire(self) -> None:
        """Wait until this process holds the Lease."""
        waiting_logged = False
        while True:
            try:
                if await self.try_acquire_or_renew():
                    self._set_leader(True)
                    return
            except _RETRYABLE as e:
                log.warning("leader election: cannot read or take the Lease: %s", e)
            if not waiting_logged:
                log.info(
                    "leader election: standing by, the Lease is held by %s",
                    self.observed_holder or "(nobody yet)",
                )
                waiting_logged = True
            # jitter keeps candidates that started together from racing in lockstep
            await self._sleep(self.timing.retry_period * random.uniform(1.0, 1.2))

    async def hold(self) -> str:
        """Renew until leadership is lost; returns why. The caller must stop reconciling."""
        last_renewed = self._clock()
        while True:
            await self._sleep(self.timing.retry_period)
            left = last_renewed + self.timing.renew_deadline - self._clock()
            try:
                ok = await asyncio.wait_for(self.try_acquire_or_renew(), timeout=max(left, 0.1))
            except _RETRYABLE as e:
                log.warning("leader election: renewing the Lease failed: %s", e)
                ok = False
            if ok:
                last_renewed = self._clock()
                continue
            holder = self.observed_holder
            if holder and holder != self.identity:
                self._set_leader(False)
                return f"the Lease is now held by {holder}"
            if self._clock() - last_renewed >= self.timing.renew_deadline:
                self._set_leader(False)
                return f"could not renew the Lease for {self.timing.renew_deadline:.0f}s"

    async def release(self) -> None:
        """Hand the Lease back on a clean stop, so a standby need not wait for it to expire."""
        if not self._leader:
            return
        self._set_leader(False)
        try:
            current = await self._store.get()
            if current is None or current[0].holder != self.identity:
                return
            stamp = micro_time(self._wall())
            # client-go's ReleaseOnCancel writes the same: no holder, a 1 s lease
            await self._store.update(
                Record(
                    holder="",
                    lease_duration_seconds=1,
                    acquire_time=stamp,
                    renew_time=stamp,
                    transitions=current[0].transitions,
                ),
                current[1],
            )
            log.info("leader election: released the Lease")
        except (*_RETRYABLE, Conflict) as e:
            log.warning("leader election: could not release the Lease: %s", e)
