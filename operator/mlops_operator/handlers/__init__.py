"""kopf registration only: each handler forwards a watch event to the memo's queues, and the
cleanup activity stops them.

Importing the package registers the handlers with kopf's default registry (main.py does).
"""

from __future__ import annotations

from typing import Any

import kopf

from mlops_operator.handlers import model_deployment, retrain_job
from mlops_operator.wiring import Memo

__all__ = ["model_deployment", "retrain_job"]


@kopf.on.cleanup(id="stop-queues")
async def on_cleanup(memo: Memo, **_: Any) -> None:
    await memo.stop_queues()
