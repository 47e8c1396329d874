from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.builders import meta, policies
from mlops_operator.builders import model_deployment as b
from tests.support.objects import CTX, MODEL, OWNER, make_spec


def container(spec_overrides: dict[str, Any]) -> dict[str, Any]:
    dep = b.get_deployment(OWNER, make_spec(**spec_overrides), MODEL, CTX)
    return dict(dep["spec"]["template"]["spec"]["containers"][0])


def pod_spec(spec_overrides: dict[str, Any]) -> dict[str, Any]:
    dep = b.get_deployment(OWNER, make_spec(**spec_overrides), MODEL, CTX)
    return dict(dep["spec"]["template"]["spec"])


def test_names_labels_owner_and_selector() -> None:
    children = b.get_children(OWNER, make_spec(replicas=2), MODEL, CTX)
    kinds = sorted(o["kind"] for o in children.apply)
    assert kinds == ["Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service"]
    for o in children.apply:
        assert o["metadata"]["name"] == "fraud"
        assert o["metadata"]["labels"] == {
            "mlops.dev/model-deployment": "fraud",
            "app.kubernetes.io/name": "fraud",
            "app.kubernetes.io/managed-by": "mlops-operator",
        }
        ref = o["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"], ref["controller"]) == (
            "ModelDeployment",
            "1111-2222",
            True,
        )
    dep = children.apply[0]
    assert dep["spec"]["selector"] == {"matchLabels": {"mlops.dev/model-deployment": "fraud"}}
    assert dep["spec"]["template"]["metadata"]["labels"]["mlops.dev/model-version"] == "7"


def test_pins_the_exact_version_never_the_alias() -> None:
    env = {e["name"]: e for e in container({})["env"]}
    assert env["MODEL_URI"]["value"] == "models:/fraud-detector/7"
    assert env["MODEL_NAME"]["value"] == "fraud"
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"
    assert env["MLOPS_MODEL_DEPLOYMENT"]["value"] == "fraud"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


@pytest.mark.parametrize(
    ("gpu", "limits", "tolerations", "selector"),
    [
        (None, None, [], None),
        ({"count": 0}, None, [], None),
        ({"count": 2}, {"nvidia.com/gpu": "2"}, [("nvidia.com/gpu", "Exists", "NoSchedule")], None),
        (
            {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"},
            {"nvidia.com/gpu": "1"},
            [("nvidia.com/gpu", "Exists", "NoSchedule")],
            {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        ),
        (
            {"count": 1, "resource": "nvidia.com/mig-1g.10gb"},
            {"nvidia.com/mig-1g.10gb": "1"},
            [
                ("nvidia.com/gpu", "Exists", "NoSchedule"),
                ("nvidia.com/mig-1g.10gb", "Exists", "NoSchedule"),
            ],
            None,
        ),
    ],
)
def test_gpu_placement(
    gpu: dict[str, Any] | None,
    limits: dict[str, str] | None,
    tolerations: list[tuple[str, str, str]],
    selector: dict[str, str] | None,
) -> None:
    ps = pod_spec({"gpu": gpu} if gpu else {})
    c = ps["containers"][0]
    assert c.get("resources", {}).get("limits") == limits
    got = [(t["key"], t["operator"], t["effect"]) for t in ps.get("tolerations", [])]
    assert got == tolerations
    assert ps.get("nodeSelector") == selector


def test_user_scheduling_merges_with_gpu_placement() -> None:
    ps = pod_spec(
        {
            "gpu": {"count": 1, "product": "NVIDIA-A100-SXM4-80GB"},
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
            "scheduling": {
                "nodeSelector": {"zone": "a"},
                "tolerations": [
                    {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
                ],
                "affinity": {"podAntiAffinity": {}},
                "priorityClassName": "high",
            },
        }
    )
    assert ps["nodeSelector"] == {"zone": "a", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"} in ps[
        "tolerations"
    ]
    assert ps["affinity"] == {"podAntiAffinity": {}}
    assert ps["priorityClassName"] == "high"
    r = ps["containers"][0]["resources"]
    assert r == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "4Gi", "nvidia.com/gpu": "1"},
    }


def test_pod_passes_restricted_basics_and_has_probes() -> None:
    ps = pod_spec({"credentialsSecret": "mlflow-creds"})
    assert ps["securityContext"]["runAsNonRoot"] is True
    assert ps["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = ps["containers"][0]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert c["envFrom"] == [{"secretRef": {"name": "mlflow-creds"}}]
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert ps["terminationGracePeriodSeconds"] > 5


def test_custom_runtime_uses_its_image_args_port_and_probe_paths() -> None:
    spec = make_spec(
        runtime={
            "kind": "custom",
            "image": "me/server:2",
            "args": ["--x"],
            "port": 9000,
            "probes": {"livenessPath": "/healthz", "readinessPath": "/readyz"},
        }
    )
    dep = b.get_deployment(OWNER, spec, MODEL, CTX)
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert (c["image"], c["args"], c["ports"][0]["containerPort"]) == ("me/server:2", ["--x"], 9000)
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 9000}
    # a custom server's crash is quoted from its log tail as well
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    # a server we do not know gets the plain wait before SIGTERM
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert b.get_service(OWNER, spec)["spec"]["ports"][0]["port"] == 9000
    assert meta.endpoint(OWNER, spec) == "http://fraud.ml.svc:9000"


def test_autoscaling_leaves_replicas_to_the_hpa() -> None:
    spec = make_spec(autoscaling={"minReplicas": 2, "maxReplicas": 5, "targetCpuUtilization": 60})
    children = b.get_children(OWNER, spec, MODEL, CTX)
    dep = next(o for o in children.apply if o["kind"] == "Deployment")
    assert "replicas" not in dep["spec"]
    hpa = next(o for o in children.apply if o["kind"] == "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert children.absent == []


@pytest.mark.parametrize(
    ("overrides", "pdb"),
    [
        ({"replicas": 1}, False),
        ({"replicas": 3}, True),
        ({"autoscaling": {"minReplicas": 1, "maxReplicas": 1}}, False),
        ({"autoscaling": {"minReplicas": 1, "maxReplicas": 4}}, True),
    ],
)
def test_pdb_only_when_more_than_one_replica_can_run(overrides: dict[str, Any], pdb: bool) -> None:
    children = b.get_children(OWNER, make_spec(**overrides), MODEL, CTX)
    kinds = {o["kind"] for o in children.apply}
    assert ("PodDisruptionBudget" in kinds) is pdb
    assert (("policy/v1", "PodDisruptionBudget", OWNER.name) in children.absent) is (not pdb)


def test_network_policy_admits_only_the_serving_port() -> None:
    np = policies.get_network_policy(OWNER, make_spec())
    assert np["spec"]["policyTypes"] == ["Ingress"]
    assert np["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]


def test_our_runtime_drains_in_its_prestop_hook() -> None:
    # GET /-/drain: the runtime closes every connection it answers until SIGTERM comes
    c = b.get_deployment(OWNER, make_spec(), MODEL, CTX)["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert c["lifecycle"] == {"preStop": {"httpGet": {"path": "/-/drain", "port": 8080}}}


@pytest.mark.parametrize(
    ("resources", "env", "workers"),
    [
        (None, None, None),  # no CPU asked for: one worker, and no variable in the template
        ({"requests": {"cpu": "500m"}}, None, None),
        ({"requests": {"cpu": "1"}}, None, None),
        ({"requests": {"cpu": "2"}}, None, "2"),
        ({"requests": {"cpu": "3500m"}}, None, "3"),  # whole cores
        ({"requests": {"cpu": 4}}, None, "4"),
        ({"limits": {"cpu": "2"}}, None, "2"),  # the request defaults to the limit
        ({"requests": {"cpu": "1"}, "limits": {"cpu": "4"}}, None, None),  # the request counts
        ({"requests": {"cpu": "64"}}, None, "8"),  # at most MAX_WORKERS
        ({"requests": {"cpu": "4"}}, [{"name": "MLOPS_WORKERS", "value": "1"}], "1"),  # theirs
    ],
)
def test_our_runtime_gets_a_worker_per_requested_core(
    resources: dict[str, Any] | None, env: list[dict[str, str]] | None, workers: str | None
) -> None:
    overrides: dict[str, Any] = {"resources": resources} if resources else {}
    if env:
        overrides["runtime"] = {"env": env}
    got = [e["value"] for e in container(overrides)["env"] if e["name"] == "MLOPS_WORKERS"]
    assert got == ([workers] if workers else [])


def test_a_custom_runtime_is_not_told_a_worker_count() -> None:
    c = container(
        {"runtime": {"kind": "custom", "image": "me/x:1"}, "resources": {"requests": {"cpu": "4"}}}
    )
    assert not [e for e in c["env"] if e["name"] == "MLOPS_WORKERS"]


@pytest.mark.parametrize(
    ("quantity", "cores"),
    [("2", 2.0), ("1.5", 1.5), ("2500m", 2.5), (3, 3.0), ("1e1", 10.0), ("2Ki", None), ("x", None)],
)
def test_cpu_quantities_in_cores(quantity: object, cores: float | None) -> None:
    assert b.cpu_cores(quantity) == cores
