"""kopf registration only: thin handlers that hand work to the reconcilers."""

from __future__ import annotations

import kopf

from mlops_operator.settings import Settings


def register(settings: Settings) -> None:
    """Import the handler modules, which register themselves with kopf."""
    from mlops_operator.handlers import lifecycle, model_deployment, retrain_job  # noqa: F401

    del settings


def make_memo(settings: Settings) -> kopf.Memo:
    return kopf.Memo(settings=settings)
