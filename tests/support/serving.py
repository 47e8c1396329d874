"""Model serving on the real node, as the tests see it: ModelDeployments applied with the real
node's scheduling, their status, their Service once it answers, and kubectl."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

import requests
from kubernetes import client

from mlops_operator.contract import GROUP, MODEL_DEPLOYMENT_PLURAL, VERSION
from tests.support.cluster import eventually
from tests.support.helm import find_binary
from tests.support.kube import server_side_apply
from tests.support.objects import make_model_deployment
from tests.support.realnode import RUNTIME_IMAGE, SCHEDULING

KUBECTL = find_binary("kubectl") or "kubectl"  # the project's build, of the cluster's version
PLURAL = MODEL_DEPLOYMENT_PLURAL


@dataclass
class Served:
    name: str
    ns: str
    model: str
    url: str  # http://<ClusterIP>:<port>


class Cluster:
    def __init__(self, kube: client.ApiClient, ns: str) -> None:
        self.kube, self.ns = kube, ns
        self.custom = client.CustomObjectsApi(kube)
        self.core = client.CoreV1Api(kube)
        self.apps = client.AppsV1Api(kube)

    def restrict(self) -> None:
        """Enforce Pod Security `restricted` on the namespace (admission refuses the rest)."""
        self.core.patch_namespace(
            self.ns,
            {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
        )

    def apply_md(self, name: str, registered: str, **spec: Any) -> None:
        defaults: dict[str, Any] = {
            "model": {"name": registered, "alias": "champion"},
            "replicas": 1,
            "runtime": {"image": RUNTIME_IMAGE},
            "scheduling": SCHEDULING,
            "resources": {"requests": {"cpu": "50m", "memory": "256Mi"}},
        }
        body = make_model_deployment(name, self.ns, **{**defaults, **spec})
        server_side_apply(self.kube, body)

    def md(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name))

    def cond(self, name: str, type_: str) -> dict[str, Any]:
        for c in self.md(name).get("status", {}).get("conditions", []):
            if c["type"] == type_:
                return dict(c)
        return {}

    def wait_ready(self, name: str, version: str, timeout: float = 240) -> None:
        def ready() -> bool:
            st = self.md(name).get("status", {})
            c = {x["type"]: x for x in st.get("conditions", [])}
            ok = c.get("Ready", {}).get("status") == "True"
            return bool(ok and st.get("model", {}).get("version") == version)

        eventually(ready, timeout, 1, f"{name} Ready at version {version}: {self.debug(name)}")

    def debug(self, name: str) -> str:
        pods = self.core.list_namespaced_pod(
            self.ns, label_selector=f"mlops.dev/model-deployment={name}"
        )
        return "; ".join(
            f"{p.metadata.name} {p.status.phase} "
            f"{[(c.name, c.state.to_dict()) for c in p.status.container_statuses or []]}"
            for p in pods.items
        )

    def served(self, name: str, model: str) -> Served:
        """The Service, once it answers: Ready says the pods are; the Service's endpoints and
        kube-proxy's rules follow a moment later."""
        svc = self.core.read_namespaced_service(name, self.ns)
        port = svc.spec.ports[0].port
        url = f"http://{svc.spec.cluster_ip}:{port}"

        def answers() -> bool:
            try:
                return requests.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        eventually(answers, 30, 0.2, f"{url} answering")
        return Served(name, self.ns, model, url)

    def pods(self, name: str) -> list[client.V1Pod]:
        return list(
            self.core.list_namespaced_pod(
                self.ns, label_selector=f"mlops.dev/model-deployment={name}"
            ).items
        )


def kubectl(kubeconfig: str, *args: str) -> str:
    r = subprocess.run(
        [KUBECTL, f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
    return r.stdout
