"""The typed status models (api/), what status/ builds from them, and the CRD schema agree.

The API server prunes a status key its schema does not know, without an error: a misspelt key
would simply never arrive. These tests make that a failing test instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from mlops_operator.api.common import ApiModel
from mlops_operator.api.model_deployment import ModelDeploymentStatus, ServedModel
from mlops_operator.api.retrain_job import ResultStatus, RetrainJobStatus, RunStatus
from mlops_operator.contract import Reason, ResolvedModel
from mlops_operator.gate import Decision
from mlops_operator.reconcilers.status_write import checked
from mlops_operator.status import retrain_job as rs
from mlops_operator.status.conditions import wire
from mlops_operator.status.model_deployment import (
    DeploymentState,
    Resolution,
    StatusInput,
    compute,
    stalled_status,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def status_schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / f"{plural}.yaml").read_text())
    [version] = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


def unknown_keys(value: Any, schema: dict[str, Any], path: str = "status") -> list[str]:
    """Paths in `value` that `schema` does not declare (and so the API server would prune)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is None:  # a map: additionalProperties describes every value
            extra = schema.get("additionalProperties") or {}
            return [p for k, v in value.items() for p in unknown_keys(v, extra, f"{path}.{k}")]
        out = []
        for k, v in value.items():
            if k not in props:
                out.append(f"{path}.{k}")
            else:
                out += unknown_keys(v, props[k], f"{path}.{k}")
        return out
    if isinstance(value, list):
        items = schema.get("items") or {}
        return [p for i, v in enumerate(value) for p in unknown_keys(v, items, f"{path}[{i}]")]
    return []


def model_keys(model: type[ApiModel], path: str = "status") -> dict[str, type[ApiModel] | None]:
    """Every wire path of `model`, with the sub-model at that path (None for a leaf)."""
    out: dict[str, type[ApiModel] | None] = {}
    for name, field in model.model_fields.items():
        key = f"{path}.{field.alias or name}"
        ann = field.annotation
        subs = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type)]
        sub = next((a for a in subs if issubclass(a, ApiModel)), None)
        inner = [a for a in getattr(ann, "__args__", ()) if hasattr(a, "__args__")]
        listed = next((a.__args__[0] for a in inner if a.__args__), None)
        if sub is None and isinstance(listed, type) and issubclass(listed, ApiModel):
            sub = listed
        out[key] = sub
        if sub is not None:
            out.update(model_keys(sub, key + ("[]" if listed is sub else "")))
    return out


def schema_keys(schema: dict[str, Any], path: str = "status") -> set[str]:
    out: set[str] = set()
    for k, sub in (schema.get("properties") or {}).items():
        key = f"{path}.{k}"
        out.add(key)
        if sub.get("type") == "array":
            out |= schema_keys(sub.get("items") or {}, key + "[]")
        else:
            out |= schema_keys(sub, key)
    return out


@pytest.mark.parametrize(
    ("model", "plural"),
    [(ModelDeploymentStatus, "modeldeployments"), (RetrainJobStatus, "retrainjobs")],
)
def test_every_field_of_the_status_model_is_in_the_crd_and_back(
    model: type[ApiModel], plural: str
) -> None:
    assert set(model_keys(model)) == schema_keys(status_schema(plural))


def test_the_key_walkers_see_nested_models() -> None:
    keys = model_keys(RetrainJobStatus)
    assert keys["status.run"] is RunStatus and keys["status.result"] is ResultStatus
    assert "status.run.startedAt" in keys and "status.conditions[].lastTransitionTime" in keys
    assert model_keys(ModelDeploymentStatus)["status.model"] is ServedModel


M7 = ResolvedModel("fraud-detector", "7", alias="champion", source="s3://m/7", run_id="r7")
STATES = [
    DeploymentState(),
    DeploymentState(True, 2, 2, 2, 2, 2, 2, 2, "7"),
    DeploymentState(True, 2, 2, 2, 3, 1, 1, 1, "7", failing=["pod p container c: crash"]),
    DeploymentState(True, 2, 2, 2, 2, 0, 0, 0, "7", unschedulable=["0/3 nodes: no GPU"]),
]
RESOLUTIONS = [
    Resolution(M7),
    Resolution(None, Reason.ALIAS_NOT_SET, "no alias champion"),
    Resolution(None, Reason.REGISTRY_UNAVAILABLE, "refused"),
]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_what_status_builds_for_a_model_deployment_fits_the_crd(
    state: DeploymentState, resolution: Resolution
) -> None:
    served = M7 if state.serving_version == "7" else None
    st = compute(
        StatusInput(
            generation=4,
            name="fraud",
            alias="champion",
            resolution=resolution,
            deployment=state,
            endpoint="http://fraud.ml.svc:8080",
            selector="mlops.dev/model-deployment=fraud",
            served=served,
        )
    )
    schema = status_schema("modeldeployments")
    assert unknown_keys(st.to_wire(), schema) == []
    stalled = stalled_status(4, Reason.INVALID_SPEC, "bad", "http://x")
    assert unknown_keys(stalled.to_wire(), schema) == []


def test_what_status_builds_for_a_retrain_job_fits_the_crd() -> None:
    schema = status_schema("retrainjobs")
    decision = Decision(True, Reason.BETTER, "better")
    for conditions in (
        rs.pending(2, Reason.QUEUED, "busy"),
        rs.running(2, "run submitted"),
        rs.failed(2, Reason.NO_VERSION, "none"),
        rs.succeeded(2, "8", decision),
    ):
        assert unknown_keys({"conditions": [wire(c) for c in conditions]}, schema) == []


def test_a_misspelt_status_key_is_found() -> None:
    # the walker itself: without this, an empty answer above could mean a blind walker
    schema = status_schema("retrainjobs")
    assert unknown_keys({"run": {"stat": "x"}, "reslt": {}}, schema) == [
        "status.run.stat",
        "status.reslt",
    ]
    # and the writer refuses it before it reaches the API server
    with pytest.raises(pydantic.ValidationError, match="stat"):
        checked(RetrainJobStatus, {"run": {"id": "r1", "stat": "Running"}})
    ok = {"run": {"id": "r1", "state": "Running", "startedAt": "2026-01-01T00:00:00Z"}}
    assert checked(RetrainJobStatus, ok) is ok
