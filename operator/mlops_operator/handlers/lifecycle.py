"""Operator start and stop: clients are created once here and shared through the memo."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator
from typing import Any, cast

import kopf

from mlops_operator.builders.model_deployment import BuildContext
from mlops_operator.clients.kfp_backend import KfpBackend
from mlops_operator.clients.kube import ApiError, HttpKube, load_credentials
from mlops_operator.clients.pipelines import LocalBackend, PipelineBackend
from mlops_operator.clients.prometheus import HttpPrometheus
from mlops_operator.clients.registry import MlflowRegistry
from mlops_operator.reconcilers import model_deployment as mdr
from mlops_operator.reconcilers import retrain_job as rjr
from mlops_operator.reconcilers.triggers import TriggerDeps
from mlops_operator.settings import Settings
from mlops_operator.workqueue import Requeue, WorkQueue

log = logging.getLogger(__name__)

# test-only: a file holding an ISO-8601 time the operator takes as "now" (docs/settings.md)
FAKE_NOW_FILE = "MLOPS_TEST_NOW_FILE"


def post_event(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message[:1000])


def requeue(outcome: mdr.Outcome) -> Requeue | None:
    if outcome.retry_after is None:
        return None
    return Requeue(outcome.retry_after, backoff=outcome.backoff)


@contextlib.contextmanager
def gone_quietly() -> Iterator[None]:
    """The object was deleted while we worked on it (404): nothing left to do or report."""
    try:
        yield
    except ApiError as e:
        if e.status != 404:
            raise


def clock() -> dt.datetime:
    """Now; tests may set it (schedules need not wait for a real minute to pass)."""
    fake = os.environ.get(FAKE_NOW_FILE)
    if fake and os.path.exists(fake):
        with open(fake) as f:
            return dt.datetime.fromisoformat(f.read().strip()).astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


@kopf.on.startup(id="startup")
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    cfg: Settings = memo.settings
    # Watch events only (see workqueue.py): kopf writes nothing into our objects.
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    memo.kube = HttpKube(load_credentials())
    memo.registry = MlflowRegistry(cfg.mlflow_tracking_uri)
    prometheus = HttpPrometheus(cfg.prometheus_url) if cfg.prometheus_url else None
    memo.md_applied = mdr.AppliedCache()
    deps = mdr.Deps(
        kube=memo.kube,
        registry=memo.registry,
        build=BuildContext(runtime_image=cfg.runtime_image, mlflow_uri=cfg.pod_mlflow_uri),
        event=post_event,
        triggers=TriggerDeps(kube=memo.kube, prometheus=prometheus),
        applied=memo.md_applied,
    )

    async def reconcile_md(body: dict[str, Any], now: dt.datetime) -> Requeue | None:
        with gone_quietly():
            return requeue(await mdr.reconcile(body, deps, now))
        return None

    memo.md_queue = WorkQueue("ModelDeployment", reconcile_md, cfg.resync_seconds, clock=clock)

    backends: dict[str, PipelineBackend] = {
        "local": LocalBackend(cfg.work_dir, cfg.local_concurrency)
    }
    if cfg.kfp_host:
        backends["kfp"] = KfpBackend(cfg.kfp_host)

    def promoted(namespace: str, owner: str | None) -> None:
        # roll the owner forward now rather than at its next resync
        if owner:
            memo.md_queue.poke(namespace, owner)

    rdeps = rjr.Deps(
        kube=memo.kube,
        registry=memo.registry,
        backends=backends,
        default_backend=cfg.pipeline_backend,
        mlflow_uri=cfg.mlflow_tracking_uri,
        event=post_event,
        promoted=promoted,
    )

    async def reconcile_rtj(body: dict[str, Any], now: dt.datetime) -> Requeue | None:
        with gone_quietly():
            return requeue(await rjr.reconcile(body, rdeps, now))
        return None

    memo.rtj_queue = WorkQueue("RetrainJob", reconcile_rtj, cfg.resync_seconds)
    log.info(
        "mlops-operator started: MLflow %s, resync %ss, namespaces %s",
        cfg.mlflow_tracking_uri,
        cfg.resync_seconds,
        list(cfg.namespaces) or "all",
    )


@kopf.on.cleanup(id="cleanup")
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for queue in ("md_queue", "rtj_queue"):
        if getattr(memo, queue, None):
            await getattr(memo, queue).stop()
    if getattr(memo, "kube", None):
        await memo.kube.close()
