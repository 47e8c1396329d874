"""The operator's own Prometheus metrics, and the HTTP endpoint that serves them with /healthz.

Served on MLOPS_METRICS_PORT (0 = off) from the operator's event loop, so a /healthz answer
also proves that the loop is not blocked. A standby replica (leader election) serves both too:
it is alive, and `mlops_operator_leader` says it is not the one reconciling.

What feeds the metrics:
- the work queues (workqueue.py) report every reconcile (kind, result, duration) and every
  version of an object they see; from the object's own status they derive the Ready gauge
  and the spec-change-to-Ready time, so reconcilers need not call anything;
- `observe_api_request()` is for the Kubernetes clients (the operator's and the Lease's), one
  call per request with its answer's status code, and `observe_api_error()` one per failed one;
  `observe_event()` one per Event handed to kopf to post, `observe_webhook()` one per MLflow
  webhook delivery. The benchmarks count writes with them
  (client-go's rest_client_requests_total is the same idea).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

from mlops_operator.contract import CondType

log = logging.getLogger(__name__)

READY_STATES = ("True", "False", "Unknown")
RESULTS = ("success", "requeue", "error")
# webhooks.verify.Result's values (that module imports this one, not the other way round)
WEBHOOK_RESULTS = ("accepted", "ignored", "forged", "stale", "replayed", "malformed", "standby")
# A reconcile is a few API calls and a registry lookup: milliseconds, seconds when MLflow is slow.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Spec change to Ready includes the rollout (image pull, model download): seconds to an hour.
SPEC_TO_READY_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)

Key = tuple[str, str, str]  # (kind, namespace, name)


@dataclass
class _Tracked:
    ready: str
    generation: int
    uid: str | None
    # wall-clock seconds since when the current generation waits to become Ready; None when
    # it is Ready already (or became Ready before this process saw it change)
    since: float | None


def ready_of(status: dict[str, Any]) -> bool | None:
    """The Ready condition of a status as True / False / None (absent or Unknown)."""
    for c in status.get("conditions") or []:
        if c.get("type") == CondType.READY:
            return {"True": True, "False": False}.get(c.get("status", ""))
    return None


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        self.reconciles = Counter(
            "mlops_operator_reconcile",
            "Reconciles by kind and result: success, requeue (will retry soon, e.g. registry "
            "unavailable) or error (an exception; retried with backoff).",
            ["kind", "result"],
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            "mlops_operator_reconcile_duration_seconds",
            "Time one reconcile of one object took, by kind.",
            ["kind"],
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.api_errors = Counter(
            "mlops_operator_api_errors",
            "Failed Kubernetes API requests by verb, resource and HTTP status code "
            "(or `connection` / `timeout`).",
            ["verb", "resource", "code"],
            registry=r,
        )
        self.api_requests = Counter(
            "mlops_operator_api_requests",
            "Kubernetes API requests by verb, resource and HTTP status code (or `connection` / "
            "`timeout`); kopf's own watch streams and Event posts are not among them.",
            ["verb", "resource", "code"],
            registry=r,
        )
        self.events = Counter(
            "mlops_operator_events",
            "Kubernetes Events handed to kopf to post, by type (Normal, Warning).",
            ["type"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "mlops_operator_webhook_deliveries",
            "MLflow registry webhook deliveries by result: accepted (an alias event: its "
            "ModelDeployments reconcile now), ignored (another event), forged (no or a wrong "
            "signature), stale (timestamp outside the tolerance), replayed (a delivery id seen "
            "before), malformed, standby (not the leader; MLflow retries).",
            ["result"],
            registry=r,
        )
        for result in WEBHOOK_RESULTS:  # every result at 0 from the start, for rate() and alerts
            self.webhook_deliveries.labels(result)
        self.objects = Gauge(
            "mlops_operator_objects",
            "Objects the operator tracks, by kind and the status of their Ready condition.",
            ["kind", "ready"],
            registry=r,
        )
        self.spec_to_ready = Histogram(
            "mlops_operator_spec_to_ready_seconds",
            "Time from a spec change (a new generation; creation for a new object) until the "
            "object reports Ready=True for that generation.",
            ["kind"],
            buckets=SPEC_TO_READY_BUCKETS,
            registry=r,
        )
        self.leader = Gauge(
            "mlops_operator_leader",
            "1 while this replica reconciles (the leader, or leader election is off), "
            "0 while it stands by.",
            registry=r,
        )
        self._tracked: dict[Key, _Tracked] = {}

    # -- what reconcilers and clients call ---------------------------------------------------

    def observe_status(
        self,
        kind: str,
        namespace: str,
        name: str,
        generation: int,
        ready: bool | None,
        *,
        observed_generation: int | None = None,
        created_at: float | None = None,
        uid: str | None = None,
        now: float | None = None,
    ) -> None:
        """The object's Ready condition is now `ready` (None: absent or Unknown).

        `observed_generation` is status.observedGeneration when it is not `generation`
        (a status that describes an older spec does not stop the spec-to-Ready clock);
        `created_at` (epoch seconds) starts the clock of a new object at its creation;
        `uid` tells a re-created object of the same name from the old one.
        """
        t = time.time() if now is None else now
        key = (kind, namespace, name)
        state = {True: "True", False: "False", None: "Unknown"}[ready]
        ready_here = ready is True and observed_generation in (None, generation)
        cur = self._tracked.get(key)
        if cur is not None and uid and cur.uid and uid != cur.uid:
            self.forget(kind, namespace, name)
            cur = None
        if cur is None:
            for s in READY_STATES:  # every series exists from the first object on
                self.objects.labels(kind, s).inc(0)
            self.objects.labels(kind, state).inc()
            # Already Ready when first seen (e.g. after an operator restart): nothing to time.
            # Otherwise time from creation for a new object, from now for a later spec.
            since = None if ready_here else (created_at if generation == 1 and created_at else t)
            cur = self._tracked[key] = _Tracked(state, generation, uid, since)
        else:
            if state != cur.ready:
                self.objects.labels(kind, cur.ready).dec()
                self.objects.labels(kind, state).inc()
                cur.ready = state
            if generation > cur.generation:
                cur.generation, cur.since = generation, t
        if ready_here and cur.since is not None and generation == cur.generation:
            self.spec_to_ready.labels(kind).observe(max(0.0, t - cur.since))
            cur.since = None

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """The object is gone: it no longer counts in the Ready gauge."""
        cur = self._tracked.pop((kind, namespace, name), None)
        if cur is not None:
            self.objects.labels(kind, cur.ready).dec()

    def observe_api_error(self, verb: str, resource: str, code: int | str) -> None:
        self.api_errors.labels(verb.upper(), resource, str(code)).inc()

    def observe_api_request(self, verb: str, resource: str, code: int | str) -> None:
        self.api_requests.labels(verb.upper(), resource, str(code)).inc()

    def observe_event(self, type_: str) -> None:
        self.events.labels(type_).inc()

    def observe_webhook(self, result: str) -> None:
        self.webhook_deliveries.labels(result).inc()

    def set_leader(self, leading: bool) -> None:
        self.leader.set(1 if leading else 0)

    # -- workqueue.QueueObserver ------------------------------------------------------------

    def updated(self, queue: str, body: dict[str, Any]) -> None:
        m = body.get("metadata") or {}
        status = body.get("status") or {}
        generation = int(m.get("generation") or 1)
        observed = status.get("observedGeneration")
        self.observe_status(
            queue,
            m.get("namespace", ""),
            m.get("name", ""),
            generation,
            ready_of(status),
            # no observedGeneration: the status (if any) cannot vouch for this generation
            observed_generation=int(observed) if observed is not None else -1,
            created_at=_timestamp(m.get("creationTimestamp")),
            uid=m.get("uid"),
        )

    def reconciled(self, queue: str, seconds: float, outcome: str) -> None:
        self.reconciles.labels(queue, outcome).inc()
        self.reconcile_seconds.labels(queue).observe(seconds)

    def forgotten(self, queue: str, namespace: str, name: str) -> None:
        self.forget(queue, namespace, name)

    # -- exposition ---------------------------------------------------------------------------

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


def _default_registry() -> CollectorRegistry:
    r = CollectorRegistry()
    # process_* (CPU, memory, open fds) and python_* series next to ours, as the global
    # registry would have them; a registry of our own keeps imports from adding series.
    process_collector.ProcessCollector(registry=r)
    platform_collector.PlatformCollector(registry=r)
    gc_collector.GCCollector(registry=r)
    return r


METRICS = OperatorMetrics(_default_registry())


def observe_api_error(verb: str, resource: str, code: int | str) -> None:
    """One failed Kubernetes API request. `resource` is a plural (`deployments`) or the
    request path, of which only the resource (and subresource) is kept, so that object names
    never become label values."""
    METRICS.observe_api_error(verb, resource_of(resource), code)


def observe_api_request(verb: str, resource: str, code: int | str) -> None:
    """One Kubernetes API request and its answer (`resource` as for observe_api_error)."""
    METRICS.observe_api_request(verb, resource_of(resource), code)


def observe_event(type_: str) -> None:
    METRICS.observe_event(type_)


def observe_webhook(result: str) -> None:
    """One MLflow webhook delivery and what became of it (webhooks/receiver.py)."""
    METRICS.observe_webhook(result)


def resource_of(path: str) -> str:
    """`/apis/apps/v1/namespaces/ml/deployments/fraud/status` -> `deployments/status`."""
    if not path.startswith("/"):
        return path
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    # /api/v1/... or /apis/<group>/<version>/...
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    if not rest:
        return "namespaces" if parts[-2:-1] == ["namespaces"] else "unknown"
    return rest[0] + (f"/{rest[2]}" if len(rest) >= 3 else "")


async def serve(
    port: int, metrics: OperatorMetrics = METRICS, host: str = "0.0.0.0"
) -> web.AppRunner:
    """Start serving /metrics and /healthz; the caller cleans the runner up."""

    async def get_metrics(_: web.Request) -> web.Response:
        body = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("metrics and health on http://%s:%d (/metrics, /healthz)", host, port)
    return runner
