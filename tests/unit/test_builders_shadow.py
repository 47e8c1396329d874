"""builders/shadow.py and the ConfigMap volume every runtime pod mounts (PURE)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops_operator.builders import model_deployment as b
from mlops_operator.builders import shadow as sh
from mlops_operator.contract import ResolvedModel
from tests.support.objects import CTX, MODEL, OWNER, make_spec

pytestmark = pytest.mark.unit

NEW = ResolvedModel(name=MODEL.name, version="8", alias="champion", source="s3://m/8", run_id="r8")


def shadow_children(percent: int = 25, replicas: int = 4) -> dict[str, dict[str, Any]]:
    spec = make_spec(replicas=replicas)
    s = sh.Shadow(NEW, sh.replicas(replicas, percent), percent)
    children = b.get_children(OWNER, spec, MODEL, CTX, shadow=s)
    return {
        f"{o['kind']}/{o['metadata']['name']}": o
        for o in children.apply
        if "shadow" in o["metadata"]["name"]
    }


@pytest.mark.parametrize(
    ("stable", "percent", "want"), [(4, 25, 1), (4, 30, 2), (1, 10, 1), (10, 100, 10)]
)
def test_shadow_replicas_carry_the_copied_share_and_at_least_one(
    stable: int, percent: int, want: int
) -> None:
    assert sh.replicas(stable, percent) == want


def test_nothing_of_the_model_deployment_selects_the_shadow_pods() -> None:
    got = shadow_children()
    assert sorted(got) == ["Deployment/fraud-shadow", "Service/fraud-shadow"]
    dep, svc = got["Deployment/fraud-shadow"], got["Service/fraud-shadow"]
    template = dep["spec"]["template"]
    assert "mlops.dev/model-deployment" not in template["metadata"]["labels"]
    assert template["metadata"]["labels"]["mlops.dev/track"] == "shadow"
    assert template["metadata"]["labels"]["mlops.dev/model-version"] == "8"
    assert dep["spec"]["selector"] == {"matchLabels": {"mlops.dev/shadow-of": "fraud"}}
    assert svc["spec"]["selector"] == {"mlops.dev/shadow-of": "fraud"}
    assert dep["spec"]["replicas"] == 1
    env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0]["env"]}
    # its own series stay out of the ModelDeployment's alerts, drift and canary analysis
    assert env["MLOPS_MODEL_DEPLOYMENT"] == "fraud-shadow"
    assert env["MODEL_NAME"] == "fraud"  # the OIP path the stable pods copy to
    assert env["MODEL_URI"] == "models:/fraud-detector/8"
    assert dep["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid


def test_every_runtime_pod_mounts_the_shadow_config_optional_and_read_only() -> None:
    pod = b.get_deployment(OWNER, make_spec(), MODEL, CTX)["spec"]["template"]["spec"]
    assert {"name": "shadow", "configMap": {"name": "fraud-shadow", "optional": True}} in pod[
        "volumes"
    ]
    mount = {"name": "shadow", "mountPath": "/etc/mlops/shadow", "readOnly": True}
    assert mount in pod["containers"][0]["volumeMounts"]
    custom = make_spec(runtime={"kind": "custom", "image": "example.com/server:1"})
    pod = b.get_deployment(OWNER, custom, MODEL, CTX)["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]  # a custom server copies nothing


def test_the_config_names_the_service_address_the_share_and_the_version() -> None:
    cm = sh.shadow_config(OWNER, "10.96.3.4", 8080, sh.Shadow(NEW, 1, 25, mirror=True))
    assert cm["metadata"]["name"] == "fraud-shadow"
    assert cm["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    assert json.loads(cm["data"]["shadow.json"]) == {
        "target": "http://10.96.3.4:8080",
        "percent": 25,
        "version": "8",
    }
    # removed ConfigMap first: the stable pods stop copying before the target goes
    assert [k for _, k, _ in sh.children_names(OWNER)] == ["ConfigMap", "Service", "Deployment"]
