"""One Env for the integration tests: a namespace of the test cluster, what is in it, and the
MLflow registry the session shares (the `env` fixture in tests/conftest.py).

    env.apply(make_model_deployment("fraud"))      # server-side apply into env.ns
    env.md.wait_ready("fraud")                      # ModelDeployments: get, cond, wait, events
    env.rtj.finished("retrain")                     # RetrainJobs: get, list, finished, of(md)
    env.versions("fraud-detector")                  # the model's versions in MLflow

On the real node, apply_md() schedules pods there (its taint), served() waits until the
Service answers, and restrict() enforces Pod Security `restricted` on the namespace.
"""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass
from typing import Any

import requests
from kubernetes import client
from mlflow.tracking import MlflowClient

from mlops_operator.contract import (
    GROUP,
    LABEL_MODEL_DEPLOYMENT,
    LABEL_MODEL_VERSION,
    MODEL_DEPLOYMENT_KIND,
    MODEL_DEPLOYMENT_PLURAL,
    RETRAIN_JOB_KIND,
    RETRAIN_JOB_PLURAL,
    VERSION,
)
from tests.support import retrain_jobs
from tests.support.cluster import eventually
from tests.support.kube import server_side_apply
from tests.support.objects import make_model_deployment
from tests.support.realnode import RUNTIME_IMAGE, SCHEDULING

# Bit-identical predictions need the same BLAS kernels on both sides. A machine that forces
# OpenBLAS's choice in its environment (this one: OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU,
# where a pod would pick SkylakeX) passes that choice on to the model pods, which do not
# inherit the host's environment.
BLAS_ENV = [
    {"name": k, "value": v} for k, v in sorted(os.environ.items()) if k.startswith("OPENBLAS_")
]


class Objects:
    """One kind of the project's custom resources in the Env's namespace."""

    def __init__(self, env: Env, kind: str, plural: str) -> None:
        self.env, self.kind, self.plural = env, kind, plural

    def get(self, name: str) -> dict[str, Any]:
        e = self.env
        return dict(e.custom.get_namespaced_custom_object(GROUP, VERSION, e.ns, self.plural, name))

    def list(self) -> list[dict[str, Any]]:
        e = self.env
        found = e.custom.list_namespaced_custom_object(GROUP, VERSION, e.ns, self.plural)
        return builtins.list(found["items"])

    def cond(self, name: str, type_: str) -> dict[str, Any]:
        """The condition `type_` of `name`, or {} while there is none."""
        st = self.get(name).get("status") or {}
        return next((dict(c) for c in st.get("conditions", []) if c["type"] == type_), {})

    def wait_cond(
        self,
        name: str,
        type_: str,
        *,
        status: str | None = None,
        reason: str | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            c = self.cond(name, type_)
            ok = c and (status is None or c["status"] == status)
            return c if ok and (reason is None or c.get("reason") == reason) else None

        return eventually(check, timeout, what=f"{name} {type_} status={status} reason={reason}")

    def event_list(self, name: str) -> builtins.list[tuple[str, str, str]]:
        """(type, reason, message) of each Event posted about `name` (an Event object repeated
        `count` times stands for that many)."""
        items = self.env.core.list_namespaced_event(
            self.env.ns,
            field_selector=f"involvedObject.kind={self.kind},involvedObject.name={name}",
        ).items
        return [(e.type, e.reason, e.message) for e in items for _ in range(e.count or 1)]

    def events(self, name: str) -> set[tuple[str, str]]:
        """(type, reason) of the Events posted about `name`."""
        return {(t, r) for t, r, _ in self.event_list(name)}

    def wait_event(self, name: str, type_: str, reason: str, timeout: float = 30) -> None:
        """Until an Event (type_, reason) about `name` is there. Events trail the status write
        they follow: kopf posts them from its own queue."""
        eventually(lambda: (type_, reason) in self.events(name), timeout, what=f"{reason} Event")


class ModelDeployments(Objects):
    def wait_ready(self, name: str, timeout: float = 60) -> dict[str, Any]:
        """The object once Ready=True for its current generation."""

        def check() -> dict[str, Any] | None:
            o = self.get(name)
            st = o.get("status", {})
            ok = any(
                c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", [])
            )
            gen_ok = st.get("observedGeneration") == o["metadata"]["generation"]
            return o if ok and gen_ok else None

        return eventually(check, timeout, what=f"{name} Ready")

    def wait_serving(self, name: str, version: str, timeout: float = 240) -> None:
        """Ready at `version` (real pods: the debug line says what the pods are doing)."""

        def ready() -> bool:
            st = self.get(name).get("status", {})
            c = {x["type"]: x for x in st.get("conditions", [])}
            ok = c.get("Ready", {}).get("status") == "True"
            return bool(ok and st.get("model", {}).get("version") == version)

        eventually(ready, timeout, 1, f"{name} Ready at version {version}: {self.env.debug(name)}")


class RetrainJobs(Objects):
    def finished(self, name: str, timeout: float = 180) -> dict[str, Any]:
        """The job once it failed, or succeeded and decided the promotion."""
        return retrain_jobs.wait_finished(self.env.kube, self.env.ns, name, timeout)

    def released(self, name: str, timeout: float = 30) -> dict[str, Any]:
        """The job once its finalizer is gone."""
        return retrain_jobs.wait_released(self.env.kube, self.env.ns, name, timeout)

    def of(self, md: str) -> builtins.list[dict[str, Any]]:
        """The jobs labelled with ModelDeployment `md` (its triggers' jobs)."""
        return [
            j
            for j in self.list()
            if (j["metadata"].get("labels") or {}).get(LABEL_MODEL_DEPLOYMENT) == md
        ]


@dataclass
class Served:
    name: str
    ns: str
    model: str
    url: str  # http://<ClusterIP>:<port>


class Env:
    def __init__(self, kube: client.ApiClient, ns: str, mlflow_uri: str) -> None:
        self.kube, self.ns, self.mlflow_uri = kube, ns, mlflow_uri
        self.custom = client.CustomObjectsApi(kube)
        self.core = client.CoreV1Api(kube)
        self.apps = client.AppsV1Api(kube)
        self.mlflow = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
        self.md = ModelDeployments(self, MODEL_DEPLOYMENT_KIND, MODEL_DEPLOYMENT_PLURAL)
        self.rtj = RetrainJobs(self, RETRAIN_JOB_KIND, RETRAIN_JOB_PLURAL)

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply `body` into this namespace."""
        body = {**body, "metadata": {**body["metadata"], "namespace": self.ns}}
        return server_side_apply(self.kube, body)

    def deployment(self, name: str) -> Any:
        return self.apps.read_namespaced_deployment(name, self.ns)

    def model_uri(self, name: str) -> str:
        env = self.deployment(name).spec.template.spec.containers[0].env
        return str(next(e.value for e in env if e.name == "MODEL_URI"))

    def versions(self, model: str) -> builtins.list[Any]:
        return builtins.list(self.mlflow.search_model_versions(f"name = '{model}'"))

    # -- the real node -----------------------------------------------------------------------
    def restrict(self) -> None:
        """Enforce Pod Security `restricted` on the namespace (admission refuses the rest)."""
        self.core.patch_namespace(
            self.ns,
            {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
        )

    def apply_md(self, name: str, registered: str, **spec: Any) -> None:
        """A ModelDeployment of `registered`@champion whose pod runs on the real node."""
        defaults: dict[str, Any] = {
            "model": {"name": registered, "alias": "champion"},
            "replicas": 1,
            "runtime": {"image": RUNTIME_IMAGE, **({"env": BLAS_ENV} if BLAS_ENV else {})},
            "scheduling": SCHEDULING,
            "resources": {"requests": {"cpu": "50m", "memory": "256Mi"}},
        }
        self.apply(make_model_deployment(name, self.ns, **{**defaults, **spec}))

    def pods(self, name: str) -> builtins.list[client.V1Pod]:
        selector = f"{LABEL_MODEL_DEPLOYMENT}={name}"
        return builtins.list(self.core.list_namespaced_pod(self.ns, label_selector=selector).items)

    def wait_pods_at(self, name: str, version: str, timeout: float = 120) -> None:
        """Every pod of `name` (stable and canary, terminating ones too) is at `version`."""
        eventually(
            lambda: all(p.metadata.labels[LABEL_MODEL_VERSION] == version for p in self.pods(name)),
            timeout,
            0.5,
            f"only version {version} pods of {name}: {self.debug(name)}",
        )

    def debug(self, name: str) -> str:
        return "; ".join(
            f"{p.metadata.name} {p.status.phase} "
            f"{[(c.name, c.state.to_dict()) for c in p.status.container_statuses or []]}"
            for p in self.pods(name)
        )

    def served(self, name: str, model: str) -> Served:
        """The Service, once it answers: Ready says the pods are; the Service's endpoints and
        kube-proxy's rules follow a moment later."""
        svc = self.core.read_namespaced_service(name, self.ns)
        url = f"http://{svc.spec.cluster_ip}:{svc.spec.ports[0].port}"

        def answers() -> bool:
            try:
                return requests.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        eventually(answers, 30, 0.2, f"{url} answering")
        return Served(name, self.ns, model, url)
