"""GitOps "no drift after sync": every example applied with server-side apply, as Argo CD
(`ServerSideApply=true`) or Flux (kustomize-controller) would, reconciled by the real operator,
then applied again with the same field manager: nothing changes.

That holds only if the operator never writes the fields the GitOps tool owns (it writes
status, and its own children), so a sync after reconciliation is a no-op and the app stays
Synced. examples/gitops/ itself (the Argo CD Application and the Flux Kustomization) is checked
in tests/unit/test_gitops_examples.py: those CRDs are not installed here.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic

from mlops_operator.contract import GROUP, VERSION
from tests.support.cluster import eventually
from tests.support.models import register_iris

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
MANAGER = "gitops-sync"  # one field manager, as a GitOps controller has

pytestmark = pytest.mark.usefixtures("operator")


def documents() -> list[dict[str, Any]]:
    return [d for f in EXAMPLES for d in yaml.safe_load_all(f.read_text()) if d]


def apply(
    dyn: dynamic.DynamicClient, doc: dict[str, Any], namespace: str, dry_run: bool = False
) -> dict[str, Any]:
    body = copy.deepcopy(doc)
    body["metadata"]["namespace"] = namespace
    res = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    extra = {"dry_run": "All"} if dry_run else {}
    out = res.server_side_apply(
        body=body,
        name=body["metadata"]["name"],
        namespace=namespace,
        field_manager=MANAGER,
        **extra,
    )
    return dict(out.to_dict())


def plural(dyn: dynamic.DynamicClient, doc: dict[str, Any]) -> str:
    return str(dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"]).name)


def test_examples_show_no_drift_after_sync(
    kube: client.ApiClient, namespace: str, mlflow_uri: str
) -> None:
    docs = documents()
    assert docs, "no examples"
    assert all(d["apiVersion"] == f"{GROUP}/{VERSION}" for d in docs), "only our kinds here"
    dyn = dynamic.DynamicClient(kube)
    custom = client.CustomObjectsApi(kube)
    for model in sorted({d["spec"]["model"]["name"] for d in docs if "model" in d["spec"]}):
        register_iris(mlflow_uri, model, alias="champion")

    def get(doc: dict[str, Any]) -> dict[str, Any]:
        return dict(
            custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural(dyn, doc), doc["metadata"]["name"]
            )
        )

    def ready(doc: dict[str, Any]) -> dict[str, Any] | None:
        o = get(doc)
        st = o.get("status") or {}
        conds = {c["type"]: c["status"] for c in st.get("conditions") or []}
        done = st.get("observedGeneration") == o["metadata"]["generation"]
        return o if done and conds.get("Ready") == "True" else None

    # the first sync
    for doc in docs:
        apply(dyn, doc, namespace)
    synced = {
        d["metadata"]["name"]: eventually(
            functools.partial(ready, d),
            120,
            interval=1,
            what=f"{d['kind']} {d['metadata']['name']} Ready",
        )
        for d in docs
    }
    children = {
        name: client.AppsV1Api(kube).read_namespaced_deployment(name, namespace).metadata
        for name, o in synced.items()
        if o["kind"] == "ModelDeployment"
    }

    # what a GitOps tool's diff sees: a server-side dry-run apply of the same documents
    # changes neither spec nor metadata of what the operator has reconciled
    for doc in docs:
        live = get(doc)
        dry = apply(dyn, doc, namespace, dry_run=True)
        assert dry["spec"] == live["spec"], doc["metadata"]["name"]
        assert dry["metadata"] == live["metadata"], doc["metadata"]["name"]

    # the second sync is a no-op: the API server did not even write the objects
    for doc in docs:
        before = get(doc)["metadata"]
        out = apply(dyn, doc, namespace)
        assert out["metadata"]["resourceVersion"] == before["resourceVersion"], before["name"]
        assert out["metadata"]["generation"] == before["generation"]
    for doc in docs:
        after = get(doc)
        assert (
            after["metadata"]["generation"]
            == synced[doc["metadata"]["name"]]["metadata"]["generation"]
        )
        # nothing the operator writes is owned by the GitOps field manager, nor the reverse
        owned = [m for m in after["metadata"]["managedFields"] if m["manager"] == MANAGER]
        assert [m["operation"] for m in owned] == ["Apply"], owned
        assert "f:status" not in owned[0]["fieldsV1"]
        assert ready(doc), after.get("status")
    # nor did the operator roll anything because of the second sync
    for name, meta in children.items():
        now = client.AppsV1Api(kube).read_namespaced_deployment(name, namespace).metadata
        assert (now.uid, now.generation) == (meta.uid, meta.generation), name
