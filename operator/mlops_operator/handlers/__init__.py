"""kopf registration only: each handler forwards a watch event to the memo's queues.

Importing the package registers the handlers with kopf's default registry (main.py does).
"""

from __future__ import annotations

from mlops_operator.handlers import model_deployment, retrain_job

__all__ = ["model_deployment", "retrain_job"]
