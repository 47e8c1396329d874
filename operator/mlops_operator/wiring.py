"""The front door: everything the operator runs with is built here, from Settings, once.

main.py runs the process (metrics server, leader election, kopf); this module creates the
clients, the reconcilers' dependencies and the two work queues, and puts them into the typed
memo that kopf hands to every handler (handlers/ only forward watch events to it). Nothing
else in the package creates a client. Test seams (seams.py) come in as an argument, and
production passes the defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import kopf

from mlops_operator import metrics
from mlops_operator.builders.model_deployment import BuildContext
from mlops_operator.clients.kfp_backend import KfpBackend
from mlops_operator.clients.kube import ApiError, HttpKube, Kube, load_credentials
from mlops_operator.clients.pipelines import LocalBackend, PipelineBackend
from mlops_operator.clients.prometheus import HttpPrometheus
from mlops_operator.clients.registry import MlflowRegistry
from mlops_operator.contract import (
    LABEL_MODEL_DEPLOYMENT,
    MANAGER,
    MODEL_DEPLOYMENT_KIND,
    RETRAIN_JOB_KIND,
    Requeue,
)
from mlops_operator.leader import (
    HttpLeaseStore,
    LeaderElector,
    Timing,
    default_identity,
    default_namespace,
)
from mlops_operator.pipelines import catalog
from mlops_operator.reconcilers import children
from mlops_operator.reconcilers import model_deployment as mdr
from mlops_operator.reconcilers import retrain_job as rjr
from mlops_operator.reconcilers.triggers import TriggerDeps
from mlops_operator.seams import AFTER_WRITE, CrashPoint, Seams, no_crash
from mlops_operator.settings import Settings
from mlops_operator.webhooks.verify import AliasEvent
from mlops_operator.workqueue import QueueObserver, WorkQueue

log = logging.getLogger(__name__)

# well inside a pod's default 30 s terminationGracePeriodSeconds, kopf's own stop included
SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass
class Memo:
    """kopf's memo (a custom memo class, as kopf's embedding allows). kopf gives each object a
    shallow copy, so all copies share these queues. The handlers call only these methods."""

    md_queue: WorkQueue
    rtj_queue: WorkQueue
    md_applied: children.AppliedCache

    async def stop_queues(self) -> None:
        """At shutdown (kopf's cleanup activity): passes under way get SHUTDOWN_GRACE_SECONDS
        to finish; a write they could not make is made by the next process, as after a crash."""
        await asyncio.gather(
            self.md_queue.stop(SHUTDOWN_GRACE_SECONDS), self.rtj_queue.stop(SHUTDOWN_GRACE_SECONDS)
        )

    def model_deployment_event(self, type_: str | None, body: kopf.Body) -> None:
        namespace, name = _key(body)
        if type_ == "DELETED":
            self.md_queue.forget(namespace, name)
            self.md_applied.forget(namespace, name)
        else:
            # a plain deep copy: kopf's Body is a live view that the next event mutates
            self.md_queue.update(copy.deepcopy(dict(body)))

    def child_event(
        self, plural: str, namespace: str | None, type_: str | None, body: kopf.Body
    ) -> None:
        """Any change of a child wakes its owner at once (its status may follow from it; the
        resync is the backstop); its children are written again only when someone else
        changed one (children.AppliedCache.child_seen), not on every status update."""
        owner = (body.metadata.labels or {}).get(LABEL_MODEL_DEPLOYMENT)
        if owner and namespace:
            if plural != "pods":  # pods are the Deployment's, not written by us
                self.md_applied.child_seen(namespace, owner, type_, dict(body))
            self.md_queue.poke(namespace, owner)

    def retrain_job_event(self, type_: str | None, body: kopf.Body) -> None:
        namespace, name = _key(body)
        if type_ == "DELETED":
            self.rtj_queue.forget(namespace, name)
        else:
            self.rtj_queue.update(copy.deepcopy(dict(body)))
        # the owning ModelDeployment's triggers wait for running jobs to finish
        owner = (body.metadata.labels or {}).get(LABEL_MODEL_DEPLOYMENT)
        if owner:
            self.md_queue.poke(namespace, owner)


def _key(body: kopf.Body) -> tuple[str, str]:
    return str(body.metadata.namespace), str(body.metadata.name)


@dataclass
class Wired:
    memo: Memo
    kube: HttpKube
    registry: MlflowRegistry
    # the webhook receiver's sink (webhooks/receiver.py): an alias moved in the registry
    alias_moved: Callable[[AliasEvent], int]

    async def close(self) -> None:
        await self.memo.md_queue.stop()
        await self.memo.rtj_queue.stop()
        await self.kube.close()
        await self.registry.close()


def follows(body: dict[str, Any], model: str, alias: str) -> bool:
    """Whether a ModelDeployment's spec follows that registered model's alias."""
    m = (body.get("spec") or {}).get("model") or {}
    return bool(m.get("name") == model and m.get("alias") == alias)


def post_event(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    metrics.observe_event(type_)
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message[:1000])


@contextlib.contextmanager
def gone_quietly() -> Iterator[None]:
    """The object was deleted while we worked on it (404): nothing left to do or report."""
    try:
        yield
    except ApiError as e:
        if e.status != 404:
            raise


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff base (the object's essence, as its on.create/on.update/on.field handlers
    compare it) for handlers this operator does not have. kopf builds it for every watch event
    all the same, from a deep copy of the body: at 1,000 ModelDeployments that was a sixth of
    the operator's CPU (py-spy, make bench-profile). Nothing is compared, so nothing is built."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def kopf_settings() -> kopf.OperatorSettings:
    s = kopf.OperatorSettings()
    # Watch events only (see workqueue.py): kopf writes nothing into our objects.
    s.persistence.diffbase_storage = NoDiffBase()
    s.posting.level = logging.INFO
    s.watching.server_timeout = 300
    s.watching.client_timeout = 330
    return s


def build_elector(
    cfg: Settings, on_change: Callable[[bool], None]
) -> tuple[LeaderElector, HttpLeaseStore]:
    """The leader elector and its Lease store (the caller closes the store)."""
    namespace = default_namespace(cfg.leader_election_namespace)
    store = HttpLeaseStore(load_credentials(), namespace, cfg.leader_election_name)
    elector = LeaderElector(
        store,
        default_identity(),
        Timing.from_lease_duration(cfg.leader_election_lease_seconds),
        on_change=on_change,
    )
    return elector, store


class KubeThrough:
    """A Kube client that passes every call through to another; the wrappers below override
    what they add to."""

    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    async def apply(
        self, obj: dict[str, Any], manager: str = MANAGER, subresource: str | None = None
    ) -> dict[str, Any]:
        return await self._kube.apply(obj, manager, subresource)

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self._kube.create(obj)

    async def patch_merge(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        return await self._kube.patch_merge(api_version, kind, namespace, name, patch, subresource)

    async def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, uid: str | None = None
    ) -> bool:
        return await self._kube.delete(api_version, kind, namespace, name, uid)

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        return await self._kube.get(api_version, kind, namespace, name)

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._kube.list(api_version, kind, namespace, label_selector)

    async def serves(self, api_version: str, kind: str) -> bool:
        return await self._kube.serves(api_version, kind)


class OwnWrites(KubeThrough):
    """The Kube client that hands each ModelDeployment and RetrainJob as this process wrote it
    (status, finalizers: the API server's answer) to its work queue (WorkQueue.wrote)."""

    def __init__(self, kube: Kube, wrote: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(kube)
        self._wrote = wrote

    async def patch_merge(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        out = await self._kube.patch_merge(api_version, kind, namespace, name, patch, subresource)
        if kind in (MODEL_DEPLOYMENT_KIND, RETRAIN_JOB_KIND):
            self._wrote(out)
        return out


class CrashAfterWrites(KubeThrough):
    """The Kube client with the crash-point seam after each write (the tests' fault injection;
    built only when a crash point is set, never in production)."""

    def __init__(self, kube: Kube, crash_point: CrashPoint) -> None:
        super().__init__(kube)
        self._crash, self._writes = crash_point, 0

    def _wrote(self) -> None:
        self._writes += 1
        self._crash(AFTER_WRITE.format(n=self._writes))

    async def apply(
        self, obj: dict[str, Any], manager: str = MANAGER, subresource: str | None = None
    ) -> dict[str, Any]:
        out = await self._kube.apply(obj, manager, subresource)
        self._wrote()
        return out

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        out = await self._kube.create(obj)
        self._wrote()
        return out

    async def patch_merge(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        out = await self._kube.patch_merge(api_version, kind, namespace, name, patch, subresource)
        self._wrote()
        return out

    async def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, uid: str | None = None
    ) -> bool:
        out = await self._kube.delete(api_version, kind, namespace, name, uid)
        self._wrote()
        return out


def build(cfg: Settings, seams: Seams, observer: QueueObserver | None) -> Wired:
    """Everything, from the settings. Call it inside the event loop that runs kopf: the queues
    start tasks and the HTTP clients bind to that loop."""
    http_kube = HttpKube(load_credentials(), timeout=cfg.api_timeout_seconds)
    queues: dict[str, WorkQueue] = {}

    def wrote(obj: dict[str, Any]) -> None:
        queue = queues.get(str(obj.get("kind")))
        if queue is not None:
            queue.wrote(obj)

    kube: Kube = OwnWrites(
        http_kube
        if seams.crash_point is no_crash
        else CrashAfterWrites(http_kube, seams.crash_point),
        wrote,
    )
    registry = MlflowRegistry(cfg.mlflow_tracking_uri)
    prometheus = HttpPrometheus(cfg.prometheus_url) if cfg.prometheus_url else None
    applied = children.AppliedCache()
    deps = mdr.Deps(
        kube=kube,
        registry=registry,
        build=BuildContext(runtime_image=cfg.runtime_image, mlflow_uri=cfg.pod_mlflow_uri),
        event=post_event,
        triggers=TriggerDeps(kube=kube, prometheus=prometheus),
        prometheus=prometheus,
        applied=applied,
    )

    async def reconcile_md(body: dict[str, Any], now: dt.datetime) -> Requeue | None:
        with gone_quietly():
            return await mdr.reconcile(body, deps, now)
        return None

    md_queue = WorkQueue(
        "ModelDeployment",
        reconcile_md,
        cfg.resync_seconds,
        clock=seams.trigger_clock,
        observer=observer,
        max_concurrent=cfg.max_concurrent_reconciles,
    )

    backends: dict[str, PipelineBackend] = {
        "local": LocalBackend(cfg.work_dir, cfg.local_concurrency)
    }
    if cfg.kfp_host:
        backends["kfp"] = KfpBackend(cfg.kfp_host)

    def promoted(namespace: str, owner: str | None) -> None:
        # roll the owner forward now rather than at its next resync
        if owner:
            md_queue.poke(namespace, owner)

    rdeps = rjr.Deps(
        kube=kube,
        registry=registry,
        backends=backends,
        default_backend=cfg.pipeline_backend,
        mlflow_uri=cfg.mlflow_tracking_uri,
        event=post_event,
        promoted=promoted,
        pipelines=catalog.Catalog.with_extra(cfg.pipeline_packages_dir),
        crash_point=seams.crash_point,
    )

    async def reconcile_rtj(body: dict[str, Any], now: dt.datetime) -> Requeue | None:
        with gone_quietly():
            return await rjr.reconcile(body, rdeps, now)
        return None

    rtj_queue = WorkQueue(
        "RetrainJob",
        reconcile_rtj,
        cfg.resync_seconds,
        observer=observer,
        max_concurrent=cfg.max_concurrent_reconciles,
    )
    queues.update({MODEL_DEPLOYMENT_KIND: md_queue, RETRAIN_JOB_KIND: rtj_queue})

    def alias_moved(event: AliasEvent) -> int:
        # the registry's cached answer is the old one: drop it before the passes ask again
        registry.forget(event.model, event.alias)
        return md_queue.poke_where(lambda body: follows(body, event.model, event.alias))

    return Wired(Memo(md_queue, rtj_queue, applied), http_kube, registry, alias_moved)
