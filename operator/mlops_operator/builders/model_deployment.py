"""PURE: a ModelDeployment and the model version it resolved to -> its desired children.

Every function returns whole objects as plain dicts, ready for server-side apply. Nothing here
reads settings or talks to a server: what varies comes in as arguments (see BuildContext).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.contract import (
    ANNOTATION_MODEL_URI,
    API_VERSION,
    ENV_MLFLOW_TRACKING_URI,
    ENV_MODEL_DEPLOYMENT,
    ENV_MODEL_NAME,
    ENV_MODEL_URI,
    ENV_POD_NAMESPACE,
    ENV_PORT,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    LABEL_MANAGED_BY,
    LABEL_MODEL_DEPLOYMENT,
    LABEL_MODEL_VERSION,
    LABEL_NAME,
    MANAGER,
    MODEL_DEPLOYMENT_KIND,
    ROUTE_DRAIN,
    SERVING_PORT,
    Owner,
    ResolvedModel,
)

TMP_VOLUME = "tmp"


@dataclass(frozen=True)
class BuildContext:
    runtime_image: str
    mlflow_uri: str


def labels(name: str) -> dict[str, str]:
    return {LABEL_MODEL_DEPLOYMENT: name, LABEL_NAME: name, LABEL_MANAGED_BY: MANAGER}


def selector(name: str) -> dict[str, str]:
    # selectors are immutable: never put the version here
    return {LABEL_MODEL_DEPLOYMENT: name}


def endpoint(owner: Owner, spec: ModelDeploymentSpec) -> str:
    return f"http://{owner.name}.{owner.namespace}.svc:{serving_port(spec)}"


def serving_port(spec: ModelDeploymentSpec) -> int:
    if spec.runtime.kind == "custom" and spec.runtime.port:
        return spec.runtime.port
    return SERVING_PORT


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": MODEL_DEPLOYMENT_KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _meta(owner: Owner) -> dict[str, Any]:
    return {
        "name": owner.name,
        "namespace": owner.namespace,
        "labels": labels(owner.name),
        "ownerReferences": [owner_reference(owner)],
    }


def pdb_wanted(spec: ModelDeploymentSpec) -> bool:
    most = spec.autoscaling.max_replicas if spec.autoscaling else spec.replicas
    return most > 1


def get_env(
    owner: Owner, spec: ModelDeploymentSpec, model: ResolvedModel, ctx: BuildContext
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": ENV_MODEL_URI, "value": model.uri},
        {"name": ENV_MODEL_NAME, "value": owner.name},
        {"name": ENV_MLFLOW_TRACKING_URI, "value": ctx.mlflow_uri},
        {"name": ENV_MODEL_DEPLOYMENT, "value": owner.name},
        {"name": ENV_POD_NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        # model downloads and caches go to the writable emptyDir, the root fs is read-only
        {"name": "HOME", "value": "/tmp"},
    ]
    if spec.runtime.kind == "custom":
        env.append({"name": ENV_PORT, "value": str(serving_port(spec))})
    ours = {e["name"] for e in env}
    env.extend(e for e in (spec.runtime.env or []) if e.get("name") not in ours)
    return env


def get_resources(spec: ModelDeploymentSpec) -> dict[str, Any]:
    requests = dict((spec.resources.requests or {}) if spec.resources else {})
    limits = dict((spec.resources.limits or {}) if spec.resources else {})
    if spec.gpu and spec.gpu.count > 0:
        # extended resources may only be set in limits (requests default to them)
        limits[spec.gpu.resource] = spec.gpu.count
        requests.pop(spec.gpu.resource, None)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = {k: str(v) for k, v in requests.items()}
    if limits:
        out["limits"] = {k: str(v) for k, v in limits.items()}
    return out


def get_tolerations(spec: ModelDeploymentSpec) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if spec.gpu and spec.gpu.count > 0:
        out.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
        if spec.gpu.resource != GPU_RESOURCE:
            out.append({"key": spec.gpu.resource, "operator": "Exists", "effect": "NoSchedule"})
    for t in (spec.scheduling.tolerations or []) if spec.scheduling else []:
        w = t.to_wire()
        if w not in out:
            out.append(w)
    return out


def get_node_selector(spec: ModelDeploymentSpec) -> dict[str, str]:
    out = dict((spec.scheduling.node_selector or {}) if spec.scheduling else {})
    if spec.gpu and spec.gpu.count > 0 and spec.gpu.product:
        out[GPU_PRODUCT_LABEL] = spec.gpu.product
    return out


def _probe(path: str, port: int, **timing: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, **timing}


def get_container(
    owner: Owner, spec: ModelDeploymentSpec, model: ResolvedModel, ctx: BuildContext
) -> dict[str, Any]:
    rt = spec.runtime
    port = serving_port(spec)
    live = rt.probes.liveness_path if rt.probes else "/v2/health/live"
    ready = rt.probes.readiness_path if rt.probes else "/v2/health/ready"
    c: dict[str, Any] = {
        "name": "model",
        "image": rt.image or ctx.runtime_image,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": get_env(owner, spec, model, ctx),
        # loading a model can take minutes; the startup probe holds liveness off until then
        "startupProbe": _probe(live, port, periodSeconds=5, failureThreshold=120),
        "livenessProbe": _probe(live, port, periodSeconds=10, failureThreshold=3),
        "readinessProbe": _probe(ready, port, periodSeconds=5, failureThreshold=2),
        # let endpoints drop the pod before SIGTERM; the runtime then drains in-flight work
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        # a crash without a termination message leaves the log tail in lastState, which the
        # operator quotes in Available=False/ContainerFailing
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": "/tmp"}],
    }
    if rt.kind == "mlflow":
        c["args"] = rt.args or []
        # ours closes every connection it answers in those seconds, so that no client keeps an
        # idle one to this pod for SIGTERM to close under its next request
        c["lifecycle"] = {"preStop": {"httpGet": {"path": ROUTE_DRAIN, "port": port}}}
    else:
        if rt.command:
            c["command"] = rt.command
        if rt.args:
            c["args"] = rt.args
    if not c.get("args"):
        c.pop("args", None)
    if spec.credentials_secret:
        c["envFrom"] = [{"secretRef": {"name": spec.credentials_secret}}]
    resources = get_resources(spec)
    if resources:
        c["resources"] = resources
    return c


def get_pod_template(
    owner: Owner, spec: ModelDeploymentSpec, model: ResolvedModel, ctx: BuildContext
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "containers": [get_container(owner, spec, model, ctx)],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        # the model server never talks to the Kubernetes API
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 45,
        "volumes": [{"name": TMP_VOLUME, "emptyDir": {}}],
    }
    if spec.runtime.kind == "mlflow":
        pod_spec["securityContext"].update(runAsUser=1000, runAsGroup=1000, fsGroup=1000)
    if tol := get_tolerations(spec):
        pod_spec["tolerations"] = tol
    if ns := get_node_selector(spec):
        pod_spec["nodeSelector"] = ns
    if spec.scheduling and spec.scheduling.affinity:
        pod_spec["affinity"] = spec.scheduling.affinity
    if spec.scheduling and spec.scheduling.priority_class_name:
        pod_spec["priorityClassName"] = spec.scheduling.priority_class_name
    return {
        "metadata": {
            "labels": {**labels(owner.name), LABEL_MODEL_VERSION: model.version},
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(serving_port(spec)),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": pod_spec,
    }


def get_deployment(
    owner: Owner, spec: ModelDeploymentSpec, model: ResolvedModel, ctx: BuildContext
) -> dict[str, Any]:
    dspec: dict[str, Any] = {
        "selector": {"matchLabels": selector(owner.name)},
        "revisionHistoryLimit": 5,
        # never dip below the serving capacity while rolling to a new version
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": get_pod_template(owner, spec, model, ctx),
    }
    if spec.autoscaling is None:
        dspec["replicas"] = spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**_meta(owner), "annotations": {ANNOTATION_MODEL_URI: model.uri}},
        "spec": dspec,
    }


def get_service(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    port = serving_port(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(owner),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(owner.name),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def get_hpa(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any] | None:
    a = spec.autoscaling
    if a is None:
        return None
    metrics = a.metrics or [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {
                    "type": "Utilization",
                    "averageUtilization": a.target_cpu_utilization or 80,
                },
            },
        }
    ]
    if a.metrics and a.target_cpu_utilization:
        metrics = [
            *a.metrics,
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": a.target_cpu_utilization,
                    },
                },
            },
        ]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(owner),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner.name},
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": metrics,
        },
    }


def get_pdb(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any] | None:
    if not pdb_wanted(spec):
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(owner),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(owner.name)}},
    }


def get_network_policy(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(owner),
        "spec": {
            "podSelector": {"matchLabels": selector(owner.name)},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": serving_port(spec)}]}],
        },
    }


@dataclass(frozen=True)
class Children:
    """What should exist (apply) and which optional kinds should not (delete if ours)."""

    apply: list[dict[str, Any]]
    absent: list[tuple[str, str]]  # (apiVersion, kind)


def get_children(
    owner: Owner, spec: ModelDeploymentSpec, model: ResolvedModel, ctx: BuildContext
) -> Children:
    apply = [
        get_deployment(owner, spec, model, ctx),
        get_service(owner, spec),
        get_network_policy(owner, spec),
    ]
    absent: list[tuple[str, str]] = []
    for obj, kind in (
        (get_hpa(owner, spec), ("autoscaling/v2", "HorizontalPodAutoscaler")),
        (get_pdb(owner, spec), ("policy/v1", "PodDisruptionBudget")),
    ):
        if obj is None:
            absent.append(kind)
        else:
            apply.append(obj)
    return Children(apply=apply, absent=absent)
