"""Kubernetes API types the CRDs embed, as controller-gen embeds them: core/v1 EnvVar and
Affinity, autoscaling/v2 MetricSpec. The source is the pinned kube-apiserver's own OpenAPI v3
(k8s_openapi.json beside this file, written by `make crds` from the local cluster through
hack/k8s_openapi.py and committed), inlined here into structural schemas, so the API server
refuses in a ModelDeployment what it would refuse in a Pod or an HPA. PURE."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

OPENAPI = Path(__file__).with_name("k8s_openapi.json")
# the OpenAPI v3 documents of the API server they come from
SOURCES = ("api/v1", "apis/autoscaling/v2")

ENV_VAR = "io.k8s.api.core.v1.EnvVar"
AFFINITY = "io.k8s.api.core.v1.Affinity"
METRIC_SPEC = "io.k8s.api.autoscaling.v2.MetricSpec"
ROOTS = (ENV_VAR, AFFINITY, METRIC_SPEC)

# The key a model's json_schema_extra sets to ask for one of them (crdgen replaces the node).
MARKER = "x-mlops-k8s-type"

# What the OpenAPI document leaves to the Go type (a Quantity is "string or number" there):
# controller-gen's schema of it, the grammar of resource.ParseQuantity.
QUANTITY_TYPE = "io.k8s.apimachinery.pkg.api.resource.Quantity"
QUANTITY: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
    "x-kubernetes-int-or-string": True,
}
INT_OR_STRING_TYPE = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"

# what a CRD's JSONSchemaProps holds of the OpenAPI (no defaults: those are the Go types')
_KEEP = frozenset(
    {
        "type",
        "description",
        "required",
        "enum",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    }
)
_FORMATS = frozenset({"int32", "int64", "double", "float", "byte", "date-time"})


def closure(components: dict[str, Any], roots: tuple[str, ...] = ROOTS) -> dict[str, Any]:
    """The schemas `roots` need, by name, from an OpenAPI v3 document's components.schemas."""
    out: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out[name] = components[name]
        todo.extend(_refs(out[name]))
    return dict(sorted(out.items()))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].split("/")[-1]] if "$ref" in node else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@functools.cache
def _committed() -> dict[str, Any]:
    schemas: dict[str, Any] = json.loads(OPENAPI.read_text())["schemas"]
    return schemas


def schema(name: str, components: dict[str, Any] | None = None) -> dict[str, Any]:
    """The structural schema of type `name`, every reference inlined."""
    return _inline({"$ref": name}, components if components is not None else _committed())


def _inline(node: dict[str, Any], comps: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].split("/")[-1]
        if name == QUANTITY_TYPE:
            out = dict(QUANTITY)
        elif name == INT_OR_STRING_TYPE:
            out = {"x-kubernetes-int-or-string": True}
        else:
            out = _inline(comps[name], comps)
        if node.get("description"):  # the field's words, not the type's
            out["description"] = node["description"]
        return out
    if "allOf" in node:  # how the OpenAPI v3 document refers to a type from a field
        (only,) = node["allOf"]
        return _inline({**only, **{k: v for k, v in node.items() if k != "allOf"}}, comps)
    out = {k: v for k, v in node.items() if k in _KEEP}
    if node.get("format") in _FORMATS:
        out["format"] = node["format"]
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {k: _inline(v, comps) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = _inline(node["items"], comps)
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _inline(node["additionalProperties"], comps)
    return out


def embed(node: Any) -> Any:
    """`node` with every MARKER node replaced by the type it names (its description kept)."""
    if isinstance(node, list):
        return [embed(v) for v in node]
    if not isinstance(node, dict):
        return node
    if MARKER in node:
        out = schema(node[MARKER])
        if node.get("description"):
            out["description"] = node["description"]
        return out
    return {k: embed(v) for k, v in node.items()}
