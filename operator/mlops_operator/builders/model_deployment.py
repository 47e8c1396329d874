"""PURE: a ModelDeployment and the model version it resolved to -> its desired children.

Every function returns whole objects as plain dicts, ready for server-side apply. Nothing here
reads settings or talks to a server: what varies comes in as arguments (see BuildContext).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.builders import policies
from mlops_operator.builders import shadow as sh
from mlops_operator.builders.meta import (
    canary_name,
    labels,
    meta,
    selector,
    service,
    serving_port,
)
from mlops_operator.contract import (
    ANNOTATION_MODEL_URI,
    ENV_MLFLOW_TRACKING_URI,
    ENV_MODEL_DEPLOYMENT,
    ENV_MODEL_NAME,
    ENV_MODEL_URI,
    ENV_MODEL_VERSION,
    ENV_POD_NAMESPACE,
    ENV_PORT,
    ENV_WORKERS,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    LABEL_MODEL_VERSION,
    LABEL_TRACK,
    ROUTE_DRAIN,
    TRACK_CANARY,
    Owner,
    ResolvedModel,
)

TMP_VOLUME = "tmp"
# a pod's worker processes at most, however many cores it requests: past this, more replicas
# serve better than bigger pods (and every worker holds a copy of the model)
MAX_WORKERS = 8


@dataclass(frozen=True)
class Canary:
    """spec.rollout Canary in progress: the new version beside the stable one."""

    model: ResolvedModel
    replicas: int  # pods of <name>-canary
    stable_replicas: int  # pods the stable Deployment keeps meanwhile


@dataclass(frozen=True)
class BuildContext:
    runtime_image: str
    mlflow_uri: str


def get_env(
    owner: Owner, spec: ModelDeploymentSpec, model: ResolvedModel, ctx: BuildContext
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": ENV_MODEL_URI, "value": model.uri},
        {"name": ENV_MODEL_NAME, "value": owner.name},
        {"name": ENV_MLFLOW_TRACKING_URI, "value": ctx.mlflow_uri},
        {"name": ENV_MODEL_DEPLOYMENT, "value": owner.name},
        {"name": ENV_MODEL_VERSION, "value": model.version},
        {"name": ENV_POD_NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        # model downloads and caches go to the writable emptyDir, the root fs is read-only
        {"name": "HOME", "value": "/tmp"},
    ]
    if spec.runtime.kind == "custom":
        env.append({"name": ENV_PORT, "value": str(serving_port(spec))})
    ours = {e["name"] for e in env}
    given = spec.runtime.env or []
    env.extend(e for e in given if e.get("name") not in ours)
    workers = worker_count(spec)
    # only above 1: a pod template that names the default would roll every existing pod
    if workers > 1 and not any(e.get("name") == ENV_WORKERS for e in given):
        env.append({"name": ENV_WORKERS, "value": str(workers)})
    return env


def worker_count(spec: ModelDeploymentSpec) -> int:
    """Our runtime's worker processes: one per whole core of the CPU request (the limit when
    only that is set), 1 to MAX_WORKERS; a custom runtime is not told."""
    if spec.runtime.kind != "mlflow" or not spec.resources:
        return 1
    cpu = (spec.resources.requests or {}).get("cpu") or (spec.resources.limits or {}).get("cpu")
    cores = cpu_cores(cpu) if cpu is not None else None
    return 1 if cores is None else max(1, min(MAX_WORKERS, int(cores)))


def cpu_cores(quantity: object) -> float | None:
    """A CPU quantity ("2", "1.5", "2500m", 4) in cores; None when it is not one."""
    text = str(quantity).strip()
    scale = 1.0
    if text.endswith("m"):
        text, scale = text[:-1], 0.001
    try:
        value = float(text) * scale
    except ValueError:
        return None
    return value if value >= 0 and value != float("inf") else None


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
        # where the runtime learns of a shadow phase (optional: usually absent)
        volume, mount = sh.config_volume(owner)
        pod_spec["volumes"].append(volume)
        pod_spec["containers"][0]["volumeMounts"].append(mount)
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
    owner: Owner,
    spec: ModelDeploymentSpec,
    model: ResolvedModel,
    ctx: BuildContext,
    replicas: int | None = None,
) -> dict[str, Any]:
    """The stable Deployment; `replicas` is its share while a canary runs."""
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
        dspec["replicas"] = spec.replicas if replicas is None else replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**meta(owner), "annotations": {ANNOTATION_MODEL_URI: model.uri}},
        "spec": dspec,
    }


def get_canary_deployment(
    owner: Owner, spec: ModelDeploymentSpec, canary: Canary, ctx: BuildContext
) -> dict[str, Any]:
    """<name>-canary: the new version's pods, behind the same Service (its selector matches
    them too). Their extra track label keeps the two Deployments' selectors apart, and the
    controllerRef their ReplicaSets."""
    dep = get_deployment(owner, spec, canary.model, ctx)
    track = {LABEL_TRACK: TRACK_CANARY}
    dep["metadata"]["name"] = canary_name(owner.name)
    dep["metadata"]["labels"] = {**dep["metadata"]["labels"], **track}
    dep["spec"]["selector"] = {"matchLabels": {**selector(owner.name), **track}}
    template = dep["spec"]["template"]["metadata"]
    template["labels"] = {**template["labels"], **track}
    dep["spec"]["replicas"] = canary.replicas
    return dep


def get_service(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    return service(owner, spec, owner.name, selector(owner.name))


@dataclass(frozen=True)
class Children:
    """What should exist (apply) and which optional kinds should not (delete if ours)."""

    apply: list[dict[str, Any]]
    absent: list[tuple[str, str, str]]  # (apiVersion, kind, name)


def get_children(
    owner: Owner,
    spec: ModelDeploymentSpec,
    model: ResolvedModel,
    ctx: BuildContext,
    canary: Canary | None = None,
    shadow: sh.Shadow | None = None,
) -> Children:
    """`model` is what the stable Deployment serves; `canary` the new version beside it, and
    `shadow` the new version getting copies of requests (its ConfigMap, which needs the
    Service's address, is the reconciler's to write)."""
    stable_replicas = canary.stable_replicas if canary else None
    apply = [
        get_deployment(owner, spec, model, ctx, stable_replicas),
        get_service(owner, spec),
        policies.get_network_policy(owner, spec),
    ]
    absent: list[tuple[str, str, str]] = []
    if canary is not None:
        apply.append(get_canary_deployment(owner, spec, canary, ctx))
    if shadow is not None:
        new = get_deployment(owner, spec, shadow.model, ctx)
        apply += [sh.shadow_deployment(new, owner, shadow), sh.shadow_service(owner, spec)]
    for obj, kind in (
        (policies.get_hpa(owner, spec), ("autoscaling/v2", "HorizontalPodAutoscaler")),
        (policies.get_pdb(owner, spec), ("policy/v1", "PodDisruptionBudget")),
    ):
        if obj is None:
            absent.append((*kind, owner.name))
        else:
            apply.append(obj)
    return Children(apply=apply, absent=absent)
