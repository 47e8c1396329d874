"""ModelDeployment and its children: watch events feed the work queue (see workqueue.py)."""

from __future__ import annotations

from typing import Any

import kopf

from mlops_operator.contract import (
    GROUP,
    LABEL_MANAGED_BY,
    LABEL_MODEL_DEPLOYMENT,
    MANAGER,
    MODEL_DEPLOYMENT_PLURAL,
    VERSION,
)
from mlops_operator.wiring import Memo

CHILDREN = [
    "apps/v1/deployments",
    "v1/services",
    "autoscaling/v2/horizontalpodautoscalers",
    "policy/v1/poddisruptionbudgets",
    "networking.k8s.io/v1/networkpolicies",
    "v1/pods",
    "monitoring.coreos.com/v1/prometheusrules",  # spec.slo's alerts, where the kind is served
]


@kopf.on.event(GROUP, VERSION, MODEL_DEPLOYMENT_PLURAL, id="modeldeployment")
async def on_model_deployment(type: str | None, body: kopf.Body, memo: Memo, **_: Any) -> None:
    memo.model_deployment_event(type, body)


async def on_child(
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    resource: kopf.Resource,
    memo: Memo,
    **_: Any,
) -> None:
    memo.child_event(resource.plural, namespace, type, body)


for _child in CHILDREN:
    _gv, _plural = _child.rsplit("/", 1)
    kopf.on.event(
        _gv,
        _plural,
        id=f"child-{_plural}",
        labels={LABEL_MANAGED_BY: MANAGER, LABEL_MODEL_DEPLOYMENT: kopf.PRESENT},
    )(on_child)
