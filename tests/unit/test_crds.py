"""The committed CRDs match the typed models, and every example fits both."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.api import crdgen, k8s_types
from mlops_operator.api.common import ApiModel
from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.api.retrain_job import RetrainJobSpec

ROOT = Path(__file__).resolve().parents[2]
MODELS: dict[str, type[ApiModel]] = {
    "ModelDeployment": ModelDeploymentSpec,
    "RetrainJob": RetrainJobSpec,
}


def test_committed_crds_are_fresh() -> None:
    assert crdgen.main(["--check", str(ROOT / "crds")]) == 0, "run `make crds`"


def _walk(schema: dict[str, Any], path: str) -> list[str]:
    missing = []
    for name, sub in (schema.get("properties") or {}).items():
        p = f"{path}.{name}"
        if name not in ("apiVersion", "kind", "metadata") and not sub.get("description"):
            missing.append(p)
        missing += _walk(sub, p)
        if "items" in sub:
            missing += _walk(sub["items"], p + "[]")
    return missing


@pytest.mark.parametrize("path", sorted((ROOT / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_every_field_has_a_description(path: Path) -> None:
    crd = yaml.safe_load(path.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema, "") == []


def _empty_maps(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        here = [path] if not node and path.endswith(".properties") else []
        return here + [p for k, v in node.items() for p in _empty_maps(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _empty_maps(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("path", sorted((ROOT / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_no_schema_has_empty_properties(path: Path) -> None:
    """The API server stores a CRD without them; an apply of the file by a second field
    manager (helm, kubectl) then conflicts with the stored object on .spec.versions."""
    assert _empty_maps(yaml.safe_load(path.read_text())) == []


def examples() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and doc.get("apiVersion", "").startswith("mlops.dev/"):
                out.append((f.name, doc))
    return out


@pytest.mark.parametrize(("name", "doc"), examples(), ids=[n for n, _ in examples()])
def test_examples_round_trip_through_the_models(name: str, doc: dict[str, Any]) -> None:
    wire = MODELS[doc["kind"]].model_validate(doc["spec"]).to_wire()

    # what the user wrote survives parsing; the model may only add defaults around it
    def contains(big: Any, small: Any) -> bool:
        if isinstance(small, dict):
            return isinstance(big, dict) and all(
                k in big and contains(big[k], v) for k, v in small.items()
            )
        return bool(big == small)

    assert contains(wire, doc["spec"]), name


def test_the_embedded_kubernetes_types_come_whole_from_the_committed_openapi() -> None:
    doc = json.loads(k8s_types.OPENAPI.read_text())
    assert doc["source"].startswith("kube-apiserver v")
    assert k8s_types.closure(doc["schemas"]) == doc["schemas"]  # all they need, nothing more
    crd = yaml.safe_load((ROOT / "crds" / "modeldeployments.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    env = spec["properties"]["runtime"]["properties"]["env"]
    assert env["items"]["required"] == ["name"] and env["x-kubernetes-list-map-keys"] == ["name"]
    assert "valueFrom" in env["items"]["properties"]
    affinity = spec["properties"]["scheduling"]["properties"]["affinity"]
    assert {"nodeAffinity", "podAffinity", "podAntiAffinity"} == set(affinity["properties"])
    metric = spec["properties"]["autoscaling"]["properties"]["metrics"]["items"]
    assert metric["required"] == ["type"]
    cpu = spec["properties"]["resources"]["properties"]["requests"]["additionalProperties"]
    assert cpu["x-kubernetes-int-or-string"] and cpu["pattern"] == k8s_types.QUANTITY["pattern"]
    # nothing of the OpenAPI that a CRD schema cannot hold, and no defaults of the Go types
    for embedded in (env, affinity, metric):
        keys = set(re.findall(r'"([$\w-]+)":', json.dumps(embedded)))
        assert not keys & {"$ref", "allOf", "oneOf", "default"}, keys


def test_the_crds_fit_a_client_side_apply() -> None:
    # kubectl apply without --server-side keeps the whole object in an annotation (256 KiB)
    for path in (ROOT / "crds").glob("*.yaml"):
        as_json = json.dumps(yaml.safe_load(path.read_text()))
        assert len(as_json) < 200 * 1024, (path.name, len(as_json))
