"""Small builders of test objects: make_model_deployment(**overrides), unique names."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.builders.model_deployment import BuildContext
from mlops_operator.contract import API_VERSION, MODEL_DEPLOYMENT_KIND, Owner, ResolvedModel

OWNER = Owner(name="fraud", namespace="ml", uid="1111-2222")
MODEL = ResolvedModel(
    name="fraud-detector",
    version="7",
    alias="champion",
    source="mlflow-artifacts:/1/m-abc/artifacts",
    run_id="r1",
)
CTX = BuildContext(runtime_image="example.com/runtime:1", mlflow_uri="http://mlflow:5000")


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        elif v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def md_spec_dict(**overrides: Any) -> dict[str, Any]:
    return deep_merge({"model": {"name": "fraud-detector", "alias": "champion"}}, overrides)


def make_spec(**overrides: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(md_spec_dict(**overrides))


def make_model_deployment(
    name: str = "fraud", namespace: str = "ml", **overrides: Any
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": MODEL_DEPLOYMENT_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": md_spec_dict(**overrides),
    }


def unique(prefix: str) -> str:
    """A name no other test uses (tests share the session's cluster and MLflow)."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
