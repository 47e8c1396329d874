"""ModelDeployment (mlops.dev/v1alpha1): a registered MLflow model served as a Deployment.

These models are the source of crds/modeldeployments.yaml (`make crds`): every field's
description becomes what `kubectl explain` shows, and the CEL rules live beside the fields
they constrain.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from mlops_operator.api.common import (
    PRESERVE,
    ApiModel,
    Condition,
    ResourceRequirements,
    Toleration,
    cel,
)
from mlops_operator.api.cron import CRON
from mlops_operator.api.k8s_types import AFFINITY, ENV_VAR, MARKER, METRIC_SPEC
from mlops_operator.api.retrain_job import RetrainJobSpec
from mlops_operator.api.rollout import Rollout, RolloutStatus
from mlops_operator.api.slo import Slo
from mlops_operator.contract import MODEL_DEPLOYMENT_KIND, MODEL_DEPLOYMENT_PLURAL

KIND = MODEL_DEPLOYMENT_KIND
PLURAL = MODEL_DEPLOYMENT_PLURAL

# An extended resource name is a qualified name outside the kubernetes.io domain, e.g.
# nvidia.com/gpu or nvidia.com/mig-1g.10gb (core/v1 validation of resource names).
EXTENDED_RESOURCE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


class ModelRef(ApiModel):
    """Which registered model and which version of it to serve."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.alias) != has(self.version)",
                    "set exactly one of model.alias (follow an alias such as champion) or "
                    "model.version (pin one version)",
                ),
            ]
        }
    )

    name: str = Field(
        min_length=1,
        max_length=256,
        description="Name of the registered model in the MLflow registry.",
    )
    alias: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="Registry alias to follow, e.g. champion. The operator resolves it to a "
        "version and pins the pods to that version; when the alias moves, the next resync "
        "rolls the Deployment forward. Exclusive with version.",
    )
    version: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]*$",
        description='A version number to pin, e.g. "7". Exclusive with alias.',
    )


class Probes(ApiModel):
    liveness_path: str = Field(
        default="/v2/health/live", pattern=r"^/", description="HTTP path of the liveness probe."
    )
    readiness_path: str = Field(
        default="/v2/health/ready", pattern=r"^/", description="HTTP path of the readiness probe."
    )


class Runtime(ApiModel):
    """What runs in the pods."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.kind != 'custom' || has(self.image)",
                    "runtime.kind custom needs runtime.image: the container that serves the model",
                ),
                cel(
                    "self.kind == 'custom' || (!has(self.port) || self.port == 8080)",
                    "runtime.port can only be changed for runtime.kind custom; the mlflow runtime "
                    "listens on 8080",
                ),
            ]
        }
    )

    kind: Literal["mlflow", "custom"] = Field(
        default="mlflow",
        description="mlflow: the project's runtime serves the MLflow pyfunc model (Open "
        "Inference Protocol v2 and MLflow scoring on port 8080). custom: your own container "
        "(image, args, port); it gets the same placement, labels, probes and environment.",
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        description="Container image; for mlflow it overrides the "
        "operator's default runtime image.",
    )
    command: list[str] | None = Field(
        default=None, description="Entrypoint override (custom runtime)."
    )
    args: list[str] | None = Field(default=None, description="Arguments to the container.")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port the container serves on (custom; default 8080).",
    )
    probes: Probes | None = Field(
        default=None,
        description="Health-check paths; the defaults are the Open Inference Protocol's.",
    )
    env: list[dict[str, Any]] | None = Field(
        default=None,
        description="Extra environment variables (core/v1 EnvVar), added after "
        "the ones the operator sets.",
        max_length=256,
        json_schema_extra={
            "items": {MARKER: ENV_VAR},
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )


class Autoscaling(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.minReplicas <= self.maxReplicas",
                    "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas",
                ),
            ]
        }
    )

    min_replicas: int = Field(default=1, ge=1, description="Fewest replicas the HPA keeps.")
    max_replicas: int = Field(ge=1, description="Most replicas the HPA may create.")
    target_cpu_utilization: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Average CPU utilisation (percent of requests) the HPA aims for; default "
        "80 when no metrics are given.",
    )
    metrics: list[dict[str, Any]] | None = Field(
        default=None,
        description="autoscaling/v2 MetricSpecs, passed to the HPA as they are.",
        max_length=64,
        json_schema_extra={"items": {MARKER: METRIC_SPEC}, "x-kubernetes-list-type": "atomic"},
    )


class Gpu(ApiModel):
    """GPUs per replica and where they may come from."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.product) || self.count > 0",
                    "gpu.product selects a GPU model, so it needs gpu.count > 0",
                ),
                cel(
                    "!self.resource.startsWith('kubernetes.io/') && "
                    "!self.resource.contains('.kubernetes.io/')",
                    "gpu.resource must be an extended resource outside kubernetes.io, e.g. "
                    "nvidia.com/gpu or nvidia.com/mig-1g.10gb",
                ),
            ]
        }
    )

    count: int = Field(
        default=0, ge=0, le=64, description="Whole devices per replica; 0 runs on CPU nodes only."
    )
    resource: str = Field(
        default="nvidia.com/gpu",
        max_length=253,
        pattern=EXTENDED_RESOURCE,
        description="Extended resource to request: nvidia.com/gpu, or a MIG profile such as "
        "nvidia.com/mig-1g.10gb. Pods tolerate the nvidia.com/gpu taint and this one.",
    )
    product: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="GPU model, matched against the node label nvidia.com/gpu.product that "
        "GPU Feature Discovery sets, e.g. NVIDIA-H100-80GB-HBM3.",
    )


class Scheduling(ApiModel):
    node_selector: dict[str, str] | None = Field(
        default=None,
        description="Node labels the pods require (merged with the GPU product selector).",
    )
    tolerations: list[Toleration] | None = Field(
        default=None, description="Tolerations added to the GPU tolerations."
    )
    affinity: dict[str, Any] | None = Field(
        default=None,
        description="core/v1 Affinity, passed to the pods as it is.",
        json_schema_extra={MARKER: AFFINITY},
    )
    priority_class_name: str | None = Field(default=None, description="PriorityClass of the pods.")


class OnDrift(ApiModel):
    threshold: float = Field(
        gt=0,
        le=10,
        description="Overall PSI (mlops_drift_psi, the largest feature PSI) above which the "
        "model counts as drifting; 0.25 is the usual 'significant' band.",
    )
    for_: str = Field(
        default="10m",
        alias="for",
        pattern=r"^([0-9]+(s|m|h))+$",
        description="How long drift must last before retraining starts, e.g. 10m or 1h30m.",
    )


class Retraining(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.schedule) || has(self.onDrift)",
                    "retraining needs a trigger: schedule, onDrift or both",
                ),
                cel(
                    f"!has(self.schedule) || self.schedule.matches(r'{CRON}')",
                    "schedule must be 5 cron fields (UTC) or a @daily-style macro: minute 0-59, "
                    "hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-7 or "
                    "SUN-SAT; each *, a value or a range a-b, optionally /step (step 1 or "
                    "more), or a comma list of those",
                    ".schedule",
                ),
            ]
        }
    )

    schedule: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
        r"(\S+\s+){4}\S+)$",
        description='Cron schedule (5 fields, UTC), e.g. "0 3 * * *" for 03:00 every day.',
    )
    on_drift: OnDrift | None = Field(
        default=None,
        description="Retrain when the serving pods' drift stays above a threshold "
        "(needs MLOPS_PROMETHEUS_URL).",
    )
    template: RetrainJobSpec = Field(description="The spec of each RetrainJob created.")
    history_limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Finished RetrainJobs to keep; older ones are deleted.",
    )


class ModelDeploymentSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.rollout) || self.rollout.strategy != 'Canary' || has(self.slo)",
                    "rollout.strategy Canary is judged against spec.slo: set spec.slo",
                ),
                cel(
                    "!has(self.rollout) || !has(self.rollout.shadow) || !has(self.runtime) "
                    "|| self.runtime.kind == 'mlflow'",
                    "rollout.shadow needs runtime.kind mlflow: the operator's runtime copies "
                    "the requests",
                ),
                cel(
                    "!has(self.retraining) || !has(self.retraining.template.promotion.checks) "
                    "|| !has(self.retraining.template.promotion.checks.latency) "
                    "|| has(self.retraining.template.promotion.checks.latency.p99) "
                    "|| has(self.slo)",
                    "retraining.template.promotion.checks.latency needs p99, or spec.slo whose "
                    "latency budget it then takes",
                ),
            ]
        }
    )

    model: ModelRef = Field(description="The registered MLflow model to serve.")
    runtime: Runtime = Field(
        default_factory=Runtime, description="The container that serves the model."
    )
    credentials_secret: str | None = Field(
        default=None,
        max_length=253,
        description="Secret in this namespace whose keys are passed to the pods as "
        "environment variables (e.g. MLFLOW_TRACKING_TOKEN, AWS_ACCESS_KEY_ID). The "
        "operator never reads it.",
    )
    replicas: int = Field(
        default=1, ge=0, le=1000, description="Pods to run; ignored when autoscaling is set."
    )
    autoscaling: Autoscaling | None = Field(
        default=None,
        description="Run a HorizontalPodAutoscaler; the operator then leaves "
        "the replica count to it.",
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory of the serving container."
    )
    gpu: Gpu | None = Field(default=None, description="GPUs per replica.")
    scheduling: Scheduling | None = Field(default=None, description="Extra placement rules.")
    retraining: Retraining | None = Field(
        default=None,
        description="Triggers that create RetrainJobs owned by this object, the way a CronJob "
        "owns its Jobs: a schedule, drift over a threshold, or both.",
    )
    slo: Slo | None = Field(
        default=None,
        description="The endpoint's service level. Where the monitoring.coreos.com "
        "PrometheusRule kind is served, the operator writes the matching alerts (owned by "
        "this object); status condition SLORules says whether it could.",
    )
    rollout: Rollout | None = Field(
        default=None,
        description="How a version change reaches the pods: RollingUpdate (default) or a "
        "Canary judged against spec.slo, rolled back when it fails.",
    )


class ServedModel(ApiModel):
    name: str = Field(description="Registered model name.")
    version: str = Field(description="The version the pods are pinned to.")
    alias: str | None = Field(default=None, description="The alias it was resolved from.")
    source: str | None = Field(default=None, description="Artifact URI of that version.")
    run_id: str | None = Field(default=None, description="MLflow run that produced it.")


class ModelDeploymentStatus(ApiModel):
    observed_generation: int | None = Field(
        default=None,
        description="The metadata.generation this status describes; -1 until the operator "
        "first reconciles the object.",
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="Ready, Reconciling, Stalled (kstatus), ModelResolved, Available.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    model: ServedModel | None = Field(default=None, description="What the pods serve.")
    endpoint: str | None = Field(default=None, description="In-cluster URL of the model.")
    replicas: int | None = Field(default=None, description="Pods of the Deployment.")
    ready_replicas: int | None = Field(default=None, description="Pods that are ready.")
    retraining: dict[str, Any] | None = Field(
        default=None,
        description="State of the retraining triggers: lastScheduleTime, drift (psi, "
        "since), active RetrainJobs, lastTriggered, and lastResult: what the newest finished "
        "RetrainJob decided (name, succeeded, version, promoted, reason, message, checks).",
        json_schema_extra=PRESERVE,
    )
    selector: str | None = Field(
        default=None, description="Label selector of the pods, for the scale subresource."
    )
    rollout: RolloutStatus | None = Field(
        default=None, description="The last canary rollout (spec.rollout.strategy Canary)."
    )
