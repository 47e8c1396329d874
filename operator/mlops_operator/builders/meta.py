"""PURE: what every child of a ModelDeployment shares: its labels, the pod selector, the
owner reference, the serving port and the in-cluster endpoint."""

from __future__ import annotations

from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.contract import (
    API_VERSION,
    LABEL_MANAGED_BY,
    LABEL_MODEL_DEPLOYMENT,
    LABEL_NAME,
    MANAGER,
    MODEL_DEPLOYMENT_KIND,
    SERVING_PORT,
    Owner,
)

CANARY_SUFFIX = "-canary"


def canary_name(name: str) -> str:
    """The canary's Deployment (and, with Gateway API routing, its Service)."""
    return f"{name}{CANARY_SUFFIX}"


def labels(name: str) -> dict[str, str]:
    return {LABEL_MODEL_DEPLOYMENT: name, LABEL_NAME: name, LABEL_MANAGED_BY: MANAGER}


def selector(name: str) -> dict[str, str]:
    # selectors are immutable: never put the version here
    return {LABEL_MODEL_DEPLOYMENT: name}


def endpoint(owner: Owner, spec: ModelDeploymentSpec) -> str:
    return f"http://{owner.name}.{owner.namespace}.svc:{serving_port(spec)}"


def serving_port(spec: ModelDeploymentSpec) -> int:
    if spec.runtime.kind == "custom" and spec.runtime.port:
        return spec.runtime.port
    return SERVING_PORT


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": MODEL_DEPLOYMENT_KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def meta(owner: Owner) -> dict[str, Any]:
    return {
        "name": owner.name,
        "namespace": owner.namespace,
        "labels": labels(owner.name),
        "ownerReferences": [owner_reference(owner)],
    }


def service(
    owner: Owner, spec: ModelDeploymentSpec, name: str, pods: dict[str, str]
) -> dict[str, Any]:
    """A ClusterIP Service `name` of the ModelDeployment in front of the pods `pods` selects,
    on the serving port (the main one, <name>-stable/-canary, <name>-shadow)."""
    m = meta(owner)
    m["name"] = name
    port = serving_port(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": m,
        "spec": {
            "type": "ClusterIP",
            "selector": pods,
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
