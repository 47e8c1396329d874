"""Operator start and stop: clients are created once here and shared through the memo."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, cast

import kopf

from mlops_operator.builders.model_deployment import BuildContext
from mlops_operator.clients.kube import HttpKube, load_credentials
from mlops_operator.clients.registry import MlflowRegistry
from mlops_operator.reconcilers import model_deployment as mdr
from mlops_operator.settings import Settings
from mlops_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)


def post_event(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message[:1000])


@kopf.on.startup(id="startup")
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    cfg: Settings = memo.settings
    # Watch events only (see workqueue.py): kopf writes nothing into our objects.
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    memo.kube = HttpKube(load_credentials())
    memo.registry = MlflowRegistry(cfg.mlflow_tracking_uri)
    deps = mdr.Deps(
        kube=memo.kube,
        registry=memo.registry,
        build=BuildContext(runtime_image=cfg.runtime_image, mlflow_uri=cfg.pod_mlflow_uri),
        event=post_event,
    )

    async def reconcile_md(body: dict[str, Any], now: dt.datetime) -> float | None:
        return (await mdr.reconcile(body, deps, now)).retry_after

    memo.md_queue = WorkQueue("ModelDeployment", reconcile_md, cfg.resync_seconds)
    log.info(
        "mlops-operator started: MLflow %s, resync %ss, namespaces %s",
        cfg.mlflow_tracking_uri,
        cfg.resync_seconds,
        list(cfg.namespaces) or "all",
    )


@kopf.on.cleanup(id="cleanup")
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if getattr(memo, "md_queue", None):
        await memo.md_queue.stop()
    if getattr(memo, "kube", None):
        await memo.kube.close()
