"""The local cluster is real: upstream API server, scheduler and controllers; kwok nodes."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import eventually

ROOT = Path(__file__).resolve().parents[2]
PAUSE = "registry.k8s.io/pause:3.10"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def pod(
    name: str,
    limits: dict[str, str] | None = None,
    tolerations: list[Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "image": PAUSE}
    if limits:
        c["resources"] = {"limits": limits}
    spec: dict[str, Any] = {"containers": [c], **extra}
    if tolerations:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def scheduled(core: client.CoreV1Api, ns: str, name: str) -> dict[str, Any] | None:
    p = core.read_namespaced_pod(name, ns)
    for c in p.status.conditions or []:
        if c.type == "PodScheduled":
            return {
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "node": p.spec.node_name,
                "phase": p.status.phase,
            }
    return None


def ready(core: client.CoreV1Api, ns: str, name: str) -> str | None:
    p = core.read_namespaced_pod(name, ns)
    ok = any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    return p.spec.node_name if ok else None


def test_api_server_reports_the_pinned_upstream_version(kube: client.ApiClient) -> None:
    if not (ROOT / ".cluster").exists():
        pytest.skip("running against an external cluster")
    pinned = re.search(r"k8s.io/kubernetes (v[\d.]+)", (ROOT / "hack/k8s/go.mod").read_text())
    assert pinned
    info = client.VersionApi(kube).get_code()
    assert info.git_version == pinned.group(1)
    assert (info.major, info.minor) == ("1", pinned.group(1).split(".")[1])


def test_the_embedded_kubernetes_types_are_the_api_servers_own(
    kubeconfig: tuple[str, str | None],
) -> None:
    # the CRDs embed EnvVar, Affinity, MetricSpec from a committed copy of this API server's
    # OpenAPI v3 (hack/k8s_openapi.py); what it serves now is what was committed
    if not (ROOT / ".cluster").exists():
        pytest.skip("running against an external cluster")
    sys.path.insert(0, str(ROOT / "hack"))
    import k8s_openapi

    from mlops_operator.api import k8s_types

    live = k8s_openapi.fetch(kubeconfig[0])
    committed = json.loads(k8s_types.OPENAPI.read_text())
    assert live == committed, "run `make crds` with the local cluster up"


def test_nodes_advertise_gpus(kube: client.ApiClient) -> None:
    nodes = client.CoreV1Api(kube).list_node().items
    gpus = {n.metadata.name: n.status.allocatable.get("nvidia.com/gpu") for n in nodes}
    assert sum(1 for v in gpus.values() if v == "8") >= 3
    products = {n.metadata.labels.get("nvidia.com/gpu.product") for n in nodes} - {None}
    assert products == {"NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"}


def test_gpu_pod_lands_on_a_gpu_node_and_becomes_ready(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(namespace, pod("gpu", {"nvidia.com/gpu": "2"}, [GPU_TOLERATION]))
    node = eventually(lambda: ready(core, namespace, "gpu"), what="GPU pod Ready")
    labels = core.read_node(node).metadata.labels
    assert labels.get("nvidia.com/gpu.present") == "true"


def test_too_many_gpus_stays_pending_unschedulable(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(namespace, pod("big", {"nvidia.com/gpu": "9"}, [GPU_TOLERATION]))
    s = eventually(lambda: scheduled(core, namespace, "big"), what="scheduling decision")
    assert (s["status"], s["reason"], s["phase"]) == ("False", "Unschedulable", "Pending")
    assert "nvidia.com/gpu" in s["message"]


def test_gpu_pod_without_toleration_is_not_scheduled(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(namespace, pod("untolerated", {"nvidia.com/gpu": "1"}))
    s = eventually(lambda: scheduled(core, namespace, "untolerated"), what="scheduling decision")
    assert (s["status"], s["reason"]) == ("False", "Unschedulable")
    assert "untolerated taint" in s["message"]


def test_mig_pod_lands_on_the_mig_node(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(
        namespace,
        pod(
            "mig",
            {"nvidia.com/mig-1g.10gb": "1"},
            [
                GPU_TOLERATION,
                {"key": "nvidia.com/mig-1g.10gb", "operator": "Exists", "effect": "NoSchedule"},
            ],
        ),
    )
    node = eventually(lambda: ready(core, namespace, "mig"), what="MIG pod Ready")
    assert core.read_node(node).status.allocatable.get("nvidia.com/mig-1g.10gb") == "7"


def test_deployment_gets_replicaset_and_ready_pods_and_gc_removes_them(
    kube: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": PAUSE}]},
                },
            },
        },
    )
    eventually(
        lambda: (apps.read_namespaced_deployment("web", namespace).status.ready_replicas or 0) == 3,
        what="3 ready replicas",
    )
    rs = apps.list_namespaced_replica_set(namespace).items
    assert len(rs) == 1 and rs[0].metadata.owner_references[0].name == "web"
    # the garbage collector removes what the owner owned
    apps.delete_namespaced_deployment("web", namespace, propagation_policy="Background")
    eventually(
        lambda: not apps.list_namespaced_replica_set(namespace).items,
        what="ReplicaSet garbage-collected",
    )
    eventually(lambda: not core.list_namespaced_pod(namespace).items, what="pods garbage-collected")


def test_job_pods_complete(kube: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(kube)
    batch.create_namespaced_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": PAUSE}],
                    }
                }
            },
        },
    )
    eventually(
        lambda: batch.read_namespaced_job("once", namespace).status.succeeded == 1,
        what="Job succeeded",
    )


def test_privileged_pod_refused_under_restricted(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    bad = pod("priv")
    bad["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod(namespace, bad)
    assert e.value.status == 403
    message = json.loads(e.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message
    assert "privileged" in message


def test_token_request_and_rbac(
    kube: client.ApiClient, kubeconfig: tuple[str, str | None], namespace: str
) -> None:
    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-pods",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    tr = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}
    )
    token = tr.status.token
    cfg = client.Configuration()
    cfg.host = kube.configuration.host
    cfg.ssl_ca_cert = kube.configuration.ssl_ca_cert
    cfg.verify_ssl = kube.configuration.verify_ssl
    cfg.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(cfg) as as_reader:
        reader = client.CoreV1Api(as_reader)
        assert reader.list_namespaced_pod(namespace).items == []  # allowed: accepted token
        with pytest.raises(ApiException) as e:
            reader.list_namespaced_secret(namespace)
        assert e.value.status == 403
        with pytest.raises(ApiException) as e:
            reader.create_namespaced_pod(namespace, pod("nope"))
        assert e.value.status == 403
