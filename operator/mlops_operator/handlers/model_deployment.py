"""ModelDeployment: watch events feed the per-object work queue (see workqueue.py)."""

from __future__ import annotations

import copy
from typing import Any

import kopf

from mlops_operator.api.common import GROUP, VERSION
from mlops_operator.api.model_deployment import PLURAL
from mlops_operator.builders.model_deployment import LABEL_MANAGED_BY, LABEL_MD, MANAGER

CHILDREN = [
    "apps/v1/deployments",
    "v1/services",
    "autoscaling/v2/horizontalpodautoscalers",
    "policy/v1/poddisruptionbudgets",
    "networking.k8s.io/v1/networkpolicies",
    "v1/pods",
]


@kopf.on.event(GROUP, VERSION, PLURAL, id="modeldeployment")
async def on_model_deployment(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    m = body.metadata
    if type == "DELETED":
        memo.md_queue.forget(m.namespace, m.name)
        memo.md_applied.forget(m.namespace, m.name)
    else:
        # a plain deep copy: kopf's Body is a live view that the next event mutates
        memo.md_queue.update(copy.deepcopy(dict(body)))


async def _on_child(
    labels: kopf.Labels,
    namespace: str | None,
    resource: kopf.Resource,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    owner = labels.get(LABEL_MD)
    if owner and namespace:
        if resource.plural != "pods":  # pods are the Deployment's, not written by us
            memo.md_applied.dirty.add((namespace, owner))
        memo.md_queue.poke(namespace, owner)


# An edited or deleted child wakes its owner at once; the resync timer is only the backstop.
for _child in CHILDREN:
    _gv, _plural = _child.rsplit("/", 1)
    kopf.on.event(
        _gv,
        _plural,
        id=f"child-{_plural}",
        labels={LABEL_MANAGED_BY: MANAGER, LABEL_MD: kopf.PRESENT},
    )(_on_child)
