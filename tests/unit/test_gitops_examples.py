"""examples/gitops: parsed and checked against the field names of the upstream CRDs.

Argo CD and Flux are not installed here, so their CRDs cannot validate these objects. The
allowed fields below are transcribed from the upstream API types (argo-cd
pkg/apis/application/v1alpha1/types.go; fluxcd source-controller api/v1 gitrepository_types.go
and kustomize-controller api/v1 kustomization_types.go), limited to the parts these examples
use: a misspelt or invented field fails here instead of in a user's cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITOPS = ROOT / "examples" / "gitops"

# nested dict: field -> sub-schema; None = a leaf (any value); [schema] = list of schema
Schema = dict[str, Any]

META: Schema = {
    "name": None,
    "namespace": None,
    "labels": None,
    "annotations": None,
    "finalizers": None,
}
ARGO_APPLICATION: Schema = {
    "apiVersion": None,
    "kind": None,
    "metadata": META,
    "spec": {
        "project": None,
        "source": {
            "repoURL": None,
            "targetRevision": None,
            "path": None,
            "chart": None,
            "ref": None,
            "directory": {"recurse": None, "exclude": None, "include": None, "jsonnet": None},
            "helm": None,
            "kustomize": None,
            "plugin": None,
        },
        "sources": None,
        "destination": {"server": None, "namespace": None, "name": None},
        "syncPolicy": {
            "automated": {"prune": None, "selfHeal": None, "allowEmpty": None},
            "syncOptions": None,
            "retry": {
                "limit": None,
                "backoff": {"duration": None, "factor": None, "maxDuration": None},
            },
            "managedNamespaceMetadata": None,
        },
        "ignoreDifferences": None,
        "info": None,
        "revisionHistoryLimit": None,
    },
}
FLUX_GIT_REPOSITORY: Schema = {
    "apiVersion": None,
    "kind": None,
    "metadata": META,
    "spec": {
        "url": None,
        "secretRef": None,
        "provider": None,
        "interval": None,
        "timeout": None,
        "ref": {"branch": None, "tag": None, "semver": None, "name": None, "commit": None},
        "verify": None,
        "proxySecretRef": None,
        "ignore": None,
        "suspend": None,
        "recurseSubmodules": None,
        "include": None,
    },
}
FLUX_KUSTOMIZATION: Schema = {
    "apiVersion": None,
    "kind": None,
    "metadata": META,
    "spec": {
        "commonMetadata": None,
        "dependsOn": None,
        "decryption": None,
        "interval": None,
        "retryInterval": None,
        "kubeConfig": None,
        "path": None,
        "postBuild": None,
        "prune": None,
        "deletionPolicy": None,
        "healthChecks": None,
        "healthCheckExprs": None,
        "namePrefix": None,
        "nameSuffix": None,
        "patches": None,
        "images": None,
        "serviceAccountName": None,
        "sourceRef": {"apiVersion": None, "kind": None, "name": None, "namespace": None},
        "suspend": None,
        "targetNamespace": None,
        "timeout": None,
        "force": None,
        "wait": None,
        "components": None,
    },
}
SCHEMAS = {
    ("argoproj.io/v1alpha1", "Application"): ARGO_APPLICATION,
    ("source.toolkit.fluxcd.io/v1", "GitRepository"): FLUX_GIT_REPOSITORY,
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): FLUX_KUSTOMIZATION,
}
REQUIRED = {
    "Application": ["spec.project", "spec.source.repoURL", "spec.destination.namespace"],
    "GitRepository": ["spec.url", "spec.interval"],
    "Kustomization": ["spec.interval", "spec.prune", "spec.sourceRef.kind", "spec.sourceRef.name"],
}


def unknown_fields(value: Any, schema: Any, path: str = "") -> list[str]:
    if schema is None:
        return []
    if isinstance(schema, list):
        return [
            e for i, v in enumerate(value) for e in unknown_fields(v, schema[0], f"{path}[{i}]")
        ]
    assert isinstance(value, dict), f"{path}: expected an object"
    out: list[str] = []
    for k, v in value.items():
        p = f"{path}.{k}" if path else k
        out += [p] if k not in schema else unknown_fields(v, schema[k], p)
    return out


def docs() -> list[dict[str, Any]]:
    out = []
    for f in sorted(GITOPS.glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return out


def dig(o: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        o = o[part]
    return o


@pytest.mark.parametrize("doc", docs(), ids=lambda d: d["kind"])
def test_fields_exist_upstream(doc: dict[str, Any]) -> None:
    schema = SCHEMAS[(doc["apiVersion"], doc["kind"])]
    assert unknown_fields(doc, schema) == []
    for path in REQUIRED[doc["kind"]]:
        assert dig(doc, path) not in (None, ""), path


def test_both_point_at_the_examples_and_nothing_else() -> None:
    by_kind = {d["kind"]: d for d in docs()}
    assert set(by_kind) == {"Application", "GitRepository", "Kustomization"}
    app = by_kind["Application"]["spec"]
    assert app["source"]["path"] == "examples"
    assert app["source"]["directory"]["recurse"] is False  # gitops/ itself stays out
    assert "ServerSideApply=true" in app["syncPolicy"]["syncOptions"]
    ks, repo = by_kind["Kustomization"], by_kind["GitRepository"]
    assert ks["spec"]["path"] == "./examples"
    assert ks["spec"]["sourceRef"] == {"kind": "GitRepository", "name": repo["metadata"]["name"]}
    assert ks["metadata"]["namespace"] == repo["metadata"]["namespace"]
    assert "/examples/gitops/" in repo["spec"]["ignore"]
    assert app["source"]["repoURL"] == repo["spec"]["url"]
    assert app["destination"]["namespace"] == ks["spec"]["targetNamespace"]
    # what they apply is there and parses
    applied = sorted((ROOT / "examples").glob("*.yaml"))
    assert applied
    for f in applied:
        assert all(d["kind"] for d in yaml.safe_load_all(f.read_text()) if d), f.name
