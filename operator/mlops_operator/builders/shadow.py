"""PURE: a shadow phase's children (spec.rollout.shadow).

<name>-shadow is three objects of that name: a Deployment running the new version, a Service
in front of it, and the ConfigMap the stable pods read (mounted optional at
contract.SHADOW_CONFIG_DIR by every pod of the operator's runtime, so that starting or stopping
a shadow never changes the stable pod template).

The shadow pods carry no mlops.dev/model-deployment label: the ModelDeployment's Service, its
NetworkPolicy and its pod listing select by it, and no user request may reach them. Their
metrics carry model_deployment=<name>-shadow for the same reason: the alerts, the drift
trigger and a canary's analysis read model_deployment=<name> and must not see the copies.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.builders.meta import labels, owner_reference, service
from mlops_operator.contract import (
    ENV_MODEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    LABEL_MODEL_VERSION,
    LABEL_NAME,
    LABEL_SHADOW_OF,
    LABEL_TRACK,
    MANAGER,
    SHADOW_CONFIG_DIR,
    SHADOW_CONFIG_KEY,
    TRACK_SHADOW,
    Owner,
    ResolvedModel,
)

SHADOW_SUFFIX = "-shadow"
CONFIG_VOLUME = "shadow"


def shadow_name(name: str) -> str:
    return f"{name}{SHADOW_SUFFIX}"


@dataclass(frozen=True)
class Shadow:
    """A shadow phase in progress: the new version beside the stable one, with no traffic of
    its own; `mirror` once its pods run (the stable pods then start copying)."""

    model: ResolvedModel
    replicas: int
    percent: int
    mirror: bool = False


def replicas(stable: int, percent: int) -> int:
    """Enough pods for the copied share of what `stable` pods answer, and at least one."""
    return max(1, math.ceil(stable * percent / 100))


def pod_labels(owner: Owner) -> dict[str, str]:
    return {
        LABEL_SHADOW_OF: owner.name,
        LABEL_TRACK: TRACK_SHADOW,
        LABEL_NAME: owner.name,
        LABEL_MANAGED_BY: MANAGER,
    }


def config_volume(owner: Owner) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount) of the shadow ConfigMap for the runtime's pods; optional, so the pod
    starts, and keeps running, whether it exists or not."""
    volume = {
        "name": CONFIG_VOLUME,
        "configMap": {"name": shadow_name(owner.name), "optional": True},
    }
    return volume, {"name": CONFIG_VOLUME, "mountPath": SHADOW_CONFIG_DIR, "readOnly": True}


def shadow_deployment(stable_like: dict[str, Any], owner: Owner, shadow: Shadow) -> dict[str, Any]:
    """The shadow Deployment from a Deployment built for the new version (builders'
    get_deployment), relabelled so that nothing of the ModelDeployment selects its pods."""
    dep = copy.deepcopy(stable_like)
    dep["metadata"]["name"] = shadow_name(owner.name)
    dep["metadata"]["labels"] = {**labels(owner.name), LABEL_TRACK: TRACK_SHADOW}
    dep["spec"]["replicas"] = shadow.replicas
    dep["spec"]["selector"] = {"matchLabels": {LABEL_SHADOW_OF: owner.name}}
    template = dep["spec"]["template"]
    template["metadata"]["labels"] = {
        **pod_labels(owner),
        LABEL_MODEL_VERSION: shadow.model.version,
    }
    for c in template["spec"]["containers"]:
        for e in c.get("env") or []:
            if e["name"] == ENV_MODEL_DEPLOYMENT:
                e["value"] = shadow_name(owner.name)
    return dep


def shadow_service(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    return service(owner, spec, shadow_name(owner.name), {LABEL_SHADOW_OF: owner.name})


def shadow_config(owner: Owner, cluster_ip: str, port: int, shadow: Shadow) -> dict[str, Any]:
    """What the stable pods read: where to copy (the shadow Service's ClusterIP: a pod need
    not resolve cluster DNS names, and the local cluster runs no DNS), how much, and which
    version answers there."""
    body = {
        "target": f"http://{cluster_ip}:{port}",
        "percent": shadow.percent,
        "version": shadow.model.version,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": shadow_name(owner.name),
            "namespace": owner.namespace,
            "labels": labels(owner.name),
            "ownerReferences": [owner_reference(owner)],
        },
        "data": {SHADOW_CONFIG_KEY: json.dumps(body, sort_keys=True)},
    }


def children_names(owner: Owner) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of a shadow's children, the ConfigMap first: the stable pods
    stop copying before the target goes."""
    name = shadow_name(owner.name)
    return [("v1", "ConfigMap", name), ("v1", "Service", name), ("apps/v1", "Deployment", name)]
