"""RetrainJob: watch events feed the work queue (see workqueue.py)."""

from __future__ import annotations

from typing import Any

import kopf

from mlops_operator.contract import GROUP, RETRAIN_JOB_PLURAL, VERSION
from mlops_operator.wiring import Memo


@kopf.on.event(GROUP, VERSION, RETRAIN_JOB_PLURAL, id="retrainjob")
async def on_retrain_job(type: str | None, body: kopf.Body, memo: Memo, **_: Any) -> None:
    memo.retrain_job_event(type, body)
