"""RetrainJob: watch events feed the per-object work queue (see workqueue.py)."""

from __future__ import annotations

import copy
from typing import Any

import kopf

from mlops_operator.api.common import GROUP, VERSION
from mlops_operator.api.retrain_job import PLURAL
from mlops_operator.reconcilers.retrain_job import LABEL_MD


@kopf.on.event(GROUP, VERSION, PLURAL, id="retrainjob")
async def on_retrain_job(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    m = body.metadata
    if type == "DELETED":
        memo.rtj_queue.forget(m.namespace, m.name)
    else:
        memo.rtj_queue.update(copy.deepcopy(dict(body)))
    # the owning ModelDeployment's triggers wait for running jobs to finish
    owner = (m.labels or {}).get(LABEL_MD)
    if owner:
        memo.md_queue.poke(m.namespace, owner)
