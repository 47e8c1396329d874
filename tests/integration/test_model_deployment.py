"""ModelDeployment end to end: the real operator process, the real API server and MLflow."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from mlops_operator.contract import GROUP, MODEL_DEPLOYMENT_PLURAL, VERSION
from tests.support.cluster import eventually
from tests.support.env import Env
from tests.support.mlflow_server import MlflowServer
from tests.support.models import register_iris, set_alias
from tests.support.objects import make_model_deployment, unique
from tests.support.operator_process import OperatorProcess
from tests.support.retrain_jobs import rtj

ROOT = Path(__file__).resolve().parents[2]
PLURAL = MODEL_DEPLOYMENT_PLURAL

pytestmark = pytest.mark.usefixtures("operator")


def test_create_becomes_ready_with_the_version_resolved(env: Env, mlflow_uri: str) -> None:
    model = unique("fraud")
    v = register_iris(mlflow_uri, model, alias="champion")
    env.apply(
        make_model_deployment("fraud", model={"name": model, "alias": "champion"}, replicas=2)
    )
    obj = env.md.wait_ready("fraud")
    st = obj["status"]
    assert st["model"]["name"] == model and st["model"]["version"] == v
    assert st["model"]["alias"] == "champion" and st["model"]["source"]
    assert st["endpoint"] == f"http://fraud.{env.ns}.svc:8080"
    assert (st["replicas"], st["readyReplicas"]) == (2, 2)
    conds = {c["type"]: c for c in st["conditions"]}
    assert {"Ready", "Reconciling", "Stalled", "ModelResolved", "Available"} <= set(conds)
    assert conds["Reconciling"]["status"] == "False" and conds["Stalled"]["status"] == "False"
    assert all(c["observedGeneration"] == obj["metadata"]["generation"] for c in conds.values())
    assert env.model_uri("fraud") == f"models:/{model}/{v}"
    pods = env.core.list_namespaced_pod(
        env.ns, label_selector="mlops.dev/model-deployment=fraud"
    ).items
    assert len(pods) == 2 and all(p.metadata.labels["mlops.dev/model-version"] == v for p in pods)
    for kind in ("Service", "NetworkPolicy", "PodDisruptionBudget"):
        assert _exists(env, kind, "fraud")
    # kopf's bookkeeping stays out of the object: no annotations, no finalizer, spec as given
    annotations = obj["metadata"].get("annotations") or {}
    assert not [k for k in annotations if "kopf" in k], annotations
    assert not obj["metadata"].get("finalizers")
    assert obj["spec"] == {"model": {"name": model, "alias": "champion"}, "replicas": 2}
    # kubectl describe tells the story: the model resolved, then Ready (posted after the write)
    eventually(
        lambda: {("Normal", "Resolved"), ("Normal", "Available")} <= env.md.events("fraud"),
        30,
        what="Resolved and Available Events",
    )
    assert not [e for e in env.md.events("fraud") if e[0] == "Warning"]
    # each transition once: a pass that starts from a watch event older than the operator's
    # own last write must not post it again (its status write is refused and redone)
    time.sleep(3)
    posted = env.md.event_list("fraud")
    assert len(posted) == len(set(posted)) == 2, posted


def _exists(env: Env, kind: str, name: str) -> bool:
    try:
        if kind == "Service":
            env.core.read_namespaced_service(name, env.ns)
        elif kind == "NetworkPolicy":
            client.NetworkingV1Api(env.kube).read_namespaced_network_policy(name, env.ns)
        elif kind == "PodDisruptionBudget":
            client.PolicyV1Api(env.kube).read_namespaced_pod_disruption_budget(name, env.ns)
        elif kind == "HorizontalPodAutoscaler":
            client.AutoscalingV2Api(env.kube).read_namespaced_horizontal_pod_autoscaler(
                name, env.ns
            )
        else:
            raise ValueError(kind)
        return True
    except ApiException as e:
        if e.status == 404:
            return False
        raise


def test_alias_move_rolls_forward(env: Env, mlflow_uri: str) -> None:
    model = unique("roll")
    v1 = register_iris(mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment("roll", model={"name": model, "alias": "champion"}))
    env.md.wait_ready("roll")
    v2 = register_iris(mlflow_uri, model, max_iter=300)
    assert env.model_uri("roll") == f"models:/{model}/{v1}"  # a new version alone: no change
    set_alias(mlflow_uri, model, "champion", v2)
    eventually(
        lambda: env.md.get("roll")["status"].get("model", {}).get("version") == v2,
        timeout=60,
        what="status.model.version follows the alias",
    )
    obj = env.md.wait_ready("roll")
    assert env.model_uri("roll") == f"models:/{model}/{v2}"
    assert obj["status"]["readyReplicas"] == 1


def test_pinned_version(env: Env, mlflow_uri: str) -> None:
    model = unique("pin")
    v1 = register_iris(mlflow_uri, model)
    register_iris(mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment("pin", model={"name": model, "version": v1, "alias": None}))
    obj = env.md.wait_ready("pin")
    assert obj["status"]["model"]["version"] == v1
    assert "alias" not in obj["status"]["model"]
    assert env.model_uri("pin") == f"models:/{model}/{v1}"


@pytest.mark.parametrize(
    ("gpu", "node_prefix"),
    [
        ({"count": 2, "product": "NVIDIA-A100-SXM4-80GB"}, "gpu-a100"),
        ({"count": 1, "product": "NVIDIA-H100-80GB-HBM3"}, "gpu-h100"),
        ({"count": 1, "resource": "nvidia.com/mig-1g.10gb"}, "gpu-h100-mig"),
    ],
)
def test_gpu_placement(env: Env, mlflow_uri: str, gpu: dict[str, Any], node_prefix: str) -> None:
    model = unique("gpu")
    register_iris(mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment("gpu", model={"name": model, "alias": "champion"}, gpu=gpu))
    env.md.wait_ready("gpu")
    pods = env.core.list_namespaced_pod(
        env.ns, label_selector="mlops.dev/model-deployment=gpu"
    ).items
    assert pods and all(p.spec.node_name.startswith(node_prefix) for p in pods)
    c = pods[0].spec.containers[0]
    resource = gpu.get("resource", "nvidia.com/gpu")
    assert c.resources.limits[resource] == str(gpu["count"])
    keys = {t.key for t in pods[0].spec.tolerations if t.effect == "NoSchedule"}
    assert {"nvidia.com/gpu", resource} <= keys


def test_unsatisfiable_gpu_request_is_reported(env: Env, mlflow_uri: str) -> None:
    model = unique("huge")
    register_iris(mlflow_uri, model, alias="champion")
    env.apply(
        make_model_deployment("huge", model={"name": model, "alias": "champion"}, gpu={"count": 16})
    )
    c = env.md.wait_cond("huge", "Available", reason="Unschedulable")
    assert c["status"] == "False"
    assert "Insufficient nvidia.com/gpu" in c["message"]
    assert env.md.cond("huge", "Ready")["status"] == "False"
    assert env.md.cond("huge", "Stalled")["status"] == "False"


def test_autoscaling_replicas_are_left_to_the_hpa(env: Env, mlflow_uri: str) -> None:
    model = unique("hpa")
    register_iris(mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment("hpa", model={"name": model, "alias": "champion"}, replicas=3))
    env.md.wait_ready("hpa")
    assert env.deployment("hpa").spec.replicas == 3
    # switch to autoscaling: the operator hands `replicas` over instead of resetting it
    env.apply(
        make_model_deployment(
            "hpa",
            model={"name": model, "alias": "champion"},
            autoscaling={"minReplicas": 2, "maxReplicas": 6},
        )
    )
    eventually(lambda: _exists(env, "HorizontalPodAutoscaler", "hpa"), what="HPA created")
    env.md.wait_ready("hpa")
    assert env.deployment("hpa").spec.replicas == 3
    # no metrics-server here: act as the HPA does, through the scale subresource
    env.apps.patch_namespaced_deployment_scale(
        "hpa", env.ns, {"spec": {"replicas": 5}}, field_manager="horizontal-pod-autoscaler"
    )
    for _ in range(3):  # several resyncs (MLOPS_RESYNC_SECONDS=3) must not undo it
        env.md.wait_ready("hpa")
        import time

        time.sleep(3)
    assert env.deployment("hpa").spec.replicas == 5
    assert env.md.get("hpa")["status"]["readyReplicas"] == 5


def test_deleted_child_is_restored_and_edited_one_reverted(env: Env, mlflow_uri: str) -> None:
    model = unique("heal")
    register_iris(mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment("heal", model={"name": model, "alias": "champion"}))
    env.md.wait_ready("heal")
    uid = env.core.read_namespaced_service("heal", env.ns).metadata.uid
    env.core.delete_namespaced_service("heal", env.ns)
    eventually(
        lambda: _svc_uid(env, "heal") not in (None, uid), timeout=30, what="Service recreated"
    )
    # an edit by someone else to a field the operator owns is reverted
    env.apps.patch_namespaced_deployment(
        "heal",
        env.ns,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "model", "image": "evil/image:1"}]}}
            }
        },
    )
    eventually(
        lambda: (
            env.deployment("heal").spec.template.spec.containers[0].image
            == "mlops-operator/runtime:test"
        ),
        timeout=30,
        what="image reverted",
    )
    # while an annotation another controller added stays
    env.apps.patch_namespaced_deployment(
        "heal", env.ns, {"metadata": {"annotations": {"example.com/owner": "someone"}}}
    )
    env.apply(make_model_deployment("heal", model={"name": model, "alias": "champion"}, replicas=2))
    eventually(lambda: env.deployment("heal").spec.replicas == 2, what="replicas 2")
    assert env.deployment("heal").metadata.annotations["example.com/owner"] == "someone"


def _svc_uid(env: Env, name: str) -> str | None:
    try:
        return str(env.core.read_namespaced_service(name, env.ns).metadata.uid)
    except ApiException:
        return None


def weight(w: int) -> dict[str, Any]:
    return {"setWeight": w}


CANARY: dict[str, Any] = {
    "model": {"name": "m", "alias": "a"},
    "slo": {"latency": {"p99": "200ms"}, "errorRate": 0.01},
    "rollout": {"strategy": "Canary"},
}
SHADOW = {"percent": 10, "duration": "1m", "minAgreement": 0.95}


def test_cron_schedules_out_of_range_are_refused_by_the_api_server(env: Env) -> None:
    # the findings: each was accepted, then raised in the trigger on every pass
    template = rtj("x", "m")["spec"]
    for schedule in ("61 * * * *", "*/0 * * * *", "0 3 * * 8", "a b c d e", "0 24 * * *"):
        body = make_model_deployment(
            "bad", env.ns, retraining={"schedule": schedule, "template": template}
        )
        with pytest.raises(ApiException) as e:
            env.custom.create_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, body)
        assert e.value.status == 422, schedule
        message = json.loads(e.value.body)["message"]
        assert "spec.retraining.schedule" in message and "minute 0-59" in message, message
    for schedule in ("*/15 1-5 ? JAN-MAR MON-FRI", "@daily", "0,30 3 1-7 * 0"):
        body = make_model_deployment(
            "good", env.ns, retraining={"schedule": schedule, "template": template}
        )
        env.custom.create_namespaced_custom_object(
            GROUP, VERSION, env.ns, PLURAL, body, dry_run="All"
        )


def test_a_schedule_that_never_fires_stalls_and_serving_goes_on(env: Env, mlflow_uri: str) -> None:
    model = unique("feb30")
    v = register_iris(mlflow_uri, model, alias="champion")
    env.apply(
        make_model_deployment(
            "feb30",
            model={"name": model, "alias": "champion"},
            retraining={"schedule": "0 0 30 2 *", "template": rtj("x", model)["spec"]},
        )
    )
    c = env.md.wait_cond("feb30", "Stalled", status="True")
    assert c["reason"] == "InvalidSchedule" and "0 0 30 2 *" in c["message"], c
    assert "never fire" in c["message"], c
    assert env.md.cond("feb30", "Ready")["reason"] == "InvalidSchedule"
    # the model is served all the same, and the same reason is told once, as an Event
    eventually(lambda: env.model_uri("feb30") == f"models:/{model}/{v}", what="served")
    eventually(
        lambda: ("Warning", "InvalidSchedule") in env.md.events("feb30"), 30, what="an Event"
    )
    assert env.rtj.of("feb30") == []


NODE_TERM = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        # the findings: accepted once (the CRD passed these through untyped), then refused as
        # the children they became, with a 500 and a retry loop; now the schema is Kubernetes'
        ({"runtime": {"env": [{"x": 1}]}}, "spec.runtime.env[0].name: Required value"),
        ({"autoscaling": {"maxReplicas": 3, "metrics": [{"type": 1001}]}}, "metrics[0].type"),
        (
            {
                "autoscaling": {
                    "maxReplicas": 3,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": 1e20}}],
                }
            },
            "metrics[0].resource.target",
        ),
        (
            {
                "scheduling": {
                    "affinity": {
                        "nodeAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {"weight": "abc", "preference": NODE_TERM}
                            ]
                        }
                    }
                }
            },
            "preferredDuringSchedulingIgnoredDuringExecution[0].weight",
        ),
        ({"resources": {"requests": {"cpu": "abc"}}}, "spec.resources.requests.cpu"),
        ({"resources": {"limits": {"memory": "1Zi"}}}, "spec.resources.limits.memory"),
        ({"resources": {"requests": {"cpu": ""}}}, "spec.resources.requests.cpu"),
    ],
    ids=["env", "metric-type", "metric-target", "affinity-weight", "abc", "1Zi", "empty"],
)
def test_kubernetes_typed_fields_are_refused_as_kubernetes_would(
    env: Env, spec: dict[str, Any], words: str
) -> None:
    body = make_model_deployment("typed", env.ns, **spec)
    with pytest.raises(ApiException) as e:
        env.custom.create_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, body)
    assert e.value.status == 422
    assert words in json.loads(e.value.body)["message"]


def test_valid_kubernetes_typed_fields_are_taken_and_passed_on(env: Env) -> None:
    spec: dict[str, Any] = {
        "runtime": {"env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {
            "fieldRef": {"fieldPath": "metadata.name"}}}]},
        "autoscaling": {"maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
        "scheduling": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [NODE_TERM]}
        }}},
        "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": 2}},
    }  # fmt: skip
    body = make_model_deployment("typed", env.ns, **spec)
    out = env.custom.create_namespaced_custom_object(
        GROUP, VERSION, env.ns, PLURAL, body, dry_run="All"
    )
    assert out["spec"]["runtime"]["env"] == spec["runtime"]["env"]  # nothing pruned
    assert out["spec"]["scheduling"]["affinity"] == spec["scheduling"]["affinity"]


def test_a_child_the_api_server_refuses_is_reported_once_without_a_retry_loop(
    env: Env, mlflow_uri: str, operator: OperatorProcess
) -> None:
    # a valid object name (253 characters may be) that no Service can carry (63)
    name = "refused-" + "x" * 60
    model = unique("refused")
    register_iris(mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment(name, model={"name": model, "alias": "champion"}))
    c = env.md.wait_cond(name, "Stalled", status="True")
    assert c["reason"] == "InvalidSpec" and "must be no more than 63 characters" in c["message"]
    eventually(lambda: ("Warning", "InvalidSpec") in env.md.events(name), 30, what="Event")
    time.sleep(6)  # a resync or two (3 s in the tests): nothing is tried again
    # what the work queue logs for a pass that raised (with its traceback), or a retry
    lines = [line for line in operator.logs().splitlines() if f"{env.ns}/{name}" in line]
    assert not [line for line in lines if "reconcile failed" in line or "retrying" in line]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"model": {"name": "m", "alias": "champion", "version": "3"}}, "exactly one of"),
        ({"model": {"name": "m"}}, "exactly one of"),
        (
            {"model": {"name": "m", "alias": "a"}, "gpu": {"count": 0, "product": "NVIDIA-X"}},
            "needs gpu.count > 0",
        ),
        ({"model": {"name": "m", "alias": "a"}, "gpu": {"count": -1}}, "spec.gpu.count"),
        (
            {"model": {"name": "m", "alias": "a"}, "gpu": {"count": 1, "resource": "gpu"}},
            "spec.gpu.resource",
        ),
        (
            {
                "model": {"name": "m", "alias": "a"},
                "gpu": {"count": 1, "resource": "kubernetes.io/gpu"},
            },
            "outside kubernetes.io",
        ),
        (
            {
                "model": {"name": "m", "alias": "a"},
                "autoscaling": {"minReplicas": 5, "maxReplicas": 2},
            },
            "minReplicas must not be greater than",
        ),
        (
            {"model": {"name": "m", "alias": "a"}, "runtime": {"kind": "custom"}},
            "needs runtime.image",
        ),
        (
            {"model": {"name": "m", "alias": "a"}, "runtime": {"kind": "vllm"}},
            'Unsupported value: "vllm"',
        ),
        # spec.rollout: steps that cannot work
        (
            {k: v for k, v in CANARY.items() if k != "slo"},
            "judged against spec.slo: set spec.slo",
        ),
        (
            {**CANARY, "rollout": {"strategy": "Canary", "steps": [weight(50), weight(20)]}},
            "setWeight values must increase",
        ),
        (
            {**CANARY, "rollout": {"strategy": "Canary", "steps": [weight(50), weight(50)]}},
            "setWeight values must increase",
        ),
        (
            {**CANARY, "rollout": {"strategy": "Canary", "steps": [{"pause": {}}]}},
            "spec.rollout.steps[0].pause.duration: Required value",
        ),
        (
            {
                **CANARY,
                "rollout": {
                    "strategy": "Canary",
                    "steps": [{**weight(20), "pause": {"duration": "1m"}}],
                },
            },
            "exactly one of setWeight, pause or analysis",
        ),
        (
            {**CANARY, "rollout": {"steps": [weight(20)]}},
            "apply to strategy Canary only",
        ),
        (
            {**CANARY, "rollout": {"strategy": "Canary", "steps": [weight(120)]}},
            "spec.rollout.steps[0].setWeight",
        ),
        # spec.rollout.shadow
        (
            {**CANARY, "rollout": {"shadow": SHADOW}},
            "rollout.shadow precedes a canary: it applies to strategy Canary only",
        ),
        (
            {
                **CANARY,
                "runtime": {"kind": "custom", "image": "example.com/server:1"},
                "rollout": {"strategy": "Canary", "shadow": SHADOW},
            },
            "rollout.shadow needs runtime.kind mlflow",
        ),
        (
            {**CANARY, "rollout": {"strategy": "Canary", "shadow": {"percent": 10}}},
            "spec.rollout.shadow.duration: Required value",
        ),
        (
            {**CANARY, "rollout": {"strategy": "Canary", "shadow": {**SHADOW, "percent": 0}}},
            "spec.rollout.shadow.percent",
        ),
        (
            {
                **CANARY,
                "rollout": {"strategy": "Canary", "shadow": {**SHADOW, "minAgreement": 1.5}},
            },
            "spec.rollout.shadow.minAgreement",
        ),
    ],
)
def test_invalid_specs_are_refused_by_the_api_server(
    env: Env, spec: dict[str, Any], message: str
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "bad"},
        "spec": spec,
    }
    with pytest.raises(ApiException) as e:
        env.custom.create_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, body)
    assert e.value.status == 422
    assert message in json.loads(e.value.body)["message"]


def test_missing_model_alias_and_version_stall(env: Env, mlflow_uri: str) -> None:
    model = unique("stall")
    register_iris(mlflow_uri, model)
    cases = {
        "nomodel": {"name": unique("absent"), "alias": "champion"},
        "noalias": {"name": model, "alias": "champion"},
        "noversion": {"name": model, "version": "99", "alias": None},
    }
    for name, m in cases.items():
        env.apply(make_model_deployment(name, model=m))
    expect = {"nomodel": "ModelNotFound", "noalias": "AliasNotSet", "noversion": "VersionNotFound"}
    for name, reason in expect.items():
        c = env.md.wait_cond(name, "Stalled", status="True")
        assert c["reason"] == reason
        assert env.md.cond(name, "ModelResolved")["reason"] == reason
        assert env.md.cond(name, "Ready")["status"] == "False"
        warned = functools.partial(lambda n, r: ("Warning", r) in env.md.events(n), name, reason)
        eventually(warned, 30, what=f"a {reason} Warning Event for {name}")
    # nothing was created for them, and the operator is still serving others
    assert not env.apps.list_namespaced_deployment(env.ns).items


def test_mlflow_outage_leaves_serving_untouched(
    env: Env, mlflow_uri: str, mlflow_server: MlflowServer
) -> None:
    model = unique("outage")
    v = register_iris(mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment("outage", model={"name": model, "alias": "champion"}))
    env.md.wait_ready("outage")
    rv = env.deployment("outage").metadata.resource_version
    mlflow_server.stop()
    try:
        c = env.md.wait_cond("outage", "ModelResolved", reason="RegistryUnavailable")
        assert c["status"] == "False"
        assert env.md.cond("outage", "Ready")["status"] == "True"
        assert env.md.cond("outage", "Stalled")["status"] == "False"
        assert env.model_uri("outage") == f"models:/{model}/{v}"
        assert env.deployment("outage").metadata.resource_version == rv
    finally:
        mlflow_server.restart()
    eventually(
        lambda: env.md.cond("outage", "ModelResolved").get("status") == "True",
        timeout=90,
        what="recovered after MLflow restart",
    )


def test_delete_cleans_up(env: Env, mlflow_uri: str) -> None:
    model = unique("gone")
    register_iris(mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment("gone", model={"name": model, "alias": "champion"}, replicas=2))
    env.md.wait_ready("gone")
    env.custom.delete_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, "gone")
    eventually(
        lambda: not env.apps.list_namespaced_deployment(env.ns).items,
        what="Deployment garbage-collected",
    )
    eventually(
        lambda: not env.core.list_namespaced_service(env.ns).items, what="Service garbage-collected"
    )


@pytest.mark.parametrize(
    "path", sorted((ROOT / "examples").glob("model-deployment-*.yaml")), ids=lambda p: p.name
)
def test_examples_become_ready(env: Env, mlflow_uri: str, path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    register_iris(mlflow_uri, doc["spec"]["model"]["name"], alias="champion")
    env.apply(doc)
    obj = env.md.wait_ready(doc["metadata"]["name"])
    assert obj["status"]["model"]["name"] == doc["spec"]["model"]["name"]
