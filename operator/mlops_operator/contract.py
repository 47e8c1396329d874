"""PURE, and at the bottom: every name that crosses a boundary, defined once.

A label the operator writes and a watch selects on, an env var the builder sets and the runtime
reads, a metric the runtime exports and the drift trigger queries, an MLflow tag the pipeline
writes and the reconciler looks a version up by, a condition reason the status writes and the
Event policy and Argo CD's health check read: both sides import it from here, so renaming one
side alone is impossible. Also the small value types more than one layer passes around.

This module imports nothing of the project (enforced by the import-linter contract in
pyproject.toml). The pipeline's components are compiled from source and run in their own
process, so they import it inside their bodies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

# -- the API ------------------------------------------------------------------------------------
GROUP: Final = "mlops.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
# status.observedGeneration of an object the operator has not reconciled yet (the CRDs' default)
UNOBSERVED_GENERATION: Final = -1
MODEL_DEPLOYMENT_KIND: Final = "ModelDeployment"
RETRAIN_JOB_KIND: Final = "RetrainJob"
MODEL_DEPLOYMENT_PLURAL: Final = "modeldeployments"
RETRAIN_JOB_PLURAL: Final = "retrainjobs"

# -- labels, annotations, finalizers, field managers ------------------------------------------
LABEL_MODEL_DEPLOYMENT: Final = "mlops.dev/model-deployment"  # children and RetrainJobs
LABEL_MODEL_VERSION: Final = "mlops.dev/model-version"  # pod template: the version it serves
LABEL_TRACK: Final = "mlops.dev/track"  # the canary Deployment's pods: canary
TRACK_CANARY: Final = "canary"
TRACK_SHADOW: Final = "shadow"  # the shadow Deployment's pods (they carry no Service label)
LABEL_SHADOW_OF: Final = "mlops.dev/shadow-of"  # the shadow pods' selector: the owner's name
LABEL_TRIGGER: Final = "mlops.dev/trigger"  # a triggered RetrainJob: schedule | drift
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGER: Final = "mlops-operator"  # the managed-by value and the server-side-apply manager
HANDOVER_MANAGER: Final = "mlops-operator-handover"  # co-owns replicas while an HPA takes them
ANNOTATION_MODEL_URI: Final = "mlops.dev/model-uri"  # on the Deployment: the pinned models:/ URI
ANNOTATION_TRIGGER_REASON: Final = "mlops.dev/trigger-reason"
FINALIZER_STOP_RUN: Final = "mlops.dev/stop-run"  # a RetrainJob whose run must be stopped first

# the Prometheus Operator's alerting rules (written only where the kind is served)
PROMETHEUS_RULE_API_VERSION: Final = "monitoring.coreos.com/v1"
PROMETHEUS_RULE_KIND: Final = "PrometheusRule"
HTTP_ROUTE_API_VERSION: Final = "gateway.networking.k8s.io/v1"  # spec.rollout.trafficRouting
HTTP_ROUTE_KIND: Final = "HTTPRoute"

# GPU Feature Discovery and the NVIDIA device plugin, as the GPU nodes carry them
GPU_RESOURCE: Final = "nvidia.com/gpu"  # also the taint key GPU nodes carry
GPU_PRODUCT_LABEL: Final = "nvidia.com/gpu.product"

# -- MLflow tags on a model version (written by the pipeline, read by the operator) ----------
TAG_RETRAINJOB: Final = "mlops.dev/retrainjob"  # the lineage key: <namespace>/<name>/<uid>
TAG_DATA_URI: Final = "mlops.dev/data-uri"
TAG_DATA_SHA256: Final = "mlops.dev/data-sha256"
TAG_DATA_TRANSFORM: Final = "mlops.dev/data-transform"
TAG_DATA_REPO: Final = "mlops.dev/data-repo"  # a dvc:// source's repository
TAG_DATA_REV: Final = "mlops.dev/data-rev"  # and the commit it was read at
TAG_PIPELINE: Final = "mlops.dev/pipeline"
TAG_CODE_VERSION: Final = "mlops.dev/code-version"
TAG_ROLLED_BACK: Final = "mlops.dev/rolled-back"  # <ns>/<ModelDeployment>: why, on the version
TAG_METRIC_PREFIX: Final = "metric."  # metric.<name> = the evaluation metric, repr(float)
# the check step's report (JSON; the keys are modelchecks.py's, read by gate.judge_report), and
# the same report in full beside the model, in the version's run
TAG_CHECKS: Final = "mlops.dev/checks"
CHECKS_REPORT_ARTIFACT: Final = "checks/report.json"

# -- the runtime's environment (set by builders/, read by runtime/config.py) -----------------
ENV_MODEL_URI: Final = "MODEL_URI"
ENV_MODEL_NAME: Final = "MODEL_NAME"
ENV_MLFLOW_TRACKING_URI: Final = "MLFLOW_TRACKING_URI"
ENV_MODEL_DEPLOYMENT: Final = "MLOPS_MODEL_DEPLOYMENT"
ENV_MODEL_VERSION: Final = "MLOPS_MODEL_VERSION"
ENV_POD_NAMESPACE: Final = "POD_NAMESPACE"
ENV_PORT: Final = "PORT"  # a custom runtime's serving port
# worker processes of our runtime; the builder sets it from the CPU request
ENV_WORKERS: Final = "MLOPS_WORKERS"
SERVING_PORT: Final = 8080

# -- metrics the runtime exports and the operator queries ------------------------------------
METRIC_REQUESTS: Final = "mlops_runtime_requests"  # a counter: _total on the wire
METRIC_REQUEST_DURATION: Final = "mlops_runtime_request_duration_seconds"  # a histogram
# the route label of the prediction routes (the others are health, metadata and /metrics)
ROUTE_INVOCATIONS: Final = "/invocations"
ROUTE_INFER: Final = "/v2/models/{model}/infer"
# the pod's preStop hook (builders/): from then on answers close their connections, so clients
# reconnect to the pods that stay before SIGTERM closes the idle ones under them
ROUTE_DRAIN: Final = "/-/drain"
METRIC_DRIFT_PSI: Final = "mlops_drift_psi"
METRIC_FEATURE_DRIFT_PSI: Final = "mlops_feature_drift_psi"
METRIC_PREDICTION_DRIFT_PSI: Final = "mlops_prediction_drift_psi"
METRIC_DRIFT_WINDOW_ROWS: Final = "mlops_drift_window_rows"
METRIC_LABEL_NAMESPACE: Final = "namespace"
METRIC_LABEL_MODEL_DEPLOYMENT: Final = "model_deployment"
METRIC_LABEL_MODEL_VERSION: Final = "model_version"  # a canary's analysis reads its own version
# shadow traffic: what the stable pods measure of the candidate they copy requests to
METRIC_LABEL_SHADOW_VERSION: Final = "shadow_version"
METRIC_SHADOW_REQUESTS: Final = "mlops_shadow_requests"  # counter; outcome ok|error|timeout|dropped
METRIC_SHADOW_DURATION: Final = "mlops_shadow_request_duration_seconds"  # histogram
METRIC_SHADOW_PREDICTIONS: Final = "mlops_shadow_predictions"  # counter: predictions compared
METRIC_SHADOW_AGREEMENTS: Final = "mlops_shadow_agreements"  # counter: identical ones
METRIC_SHADOW_NUMERIC: Final = "mlops_shadow_numeric_predictions"  # counter: numeric pairs
METRIC_SHADOW_ABS_ERROR: Final = "mlops_shadow_absolute_error"  # counter: sum of |c - s|
METRIC_SHADOW_REL_ERROR: Final = "mlops_shadow_relative_error"  # counter: sum of |c - s| / |s|
# where the stable pods read the shadow's target (a ConfigMap <name>-shadow, mounted optional)
SHADOW_CONFIG_DIR: Final = "/etc/mlops/shadow"
SHADOW_CONFIG_KEY: Final = "shadow.json"


class CondType:
    """Condition types. Ready / Reconciling / Stalled are kstatus's; the rest say why."""

    READY: Final = "Ready"
    RECONCILING: Final = "Reconciling"
    STALLED: Final = "Stalled"
    MODEL_RESOLVED: Final = "ModelResolved"
    AVAILABLE: Final = "Available"
    SUCCEEDED: Final = "Succeeded"
    PROMOTED: Final = "Promoted"
    SLO_RULES: Final = "SLORules"  # whether spec.slo's alerting rules are written


class Reason:
    """Condition reasons read by more than the code that writes them (the Event policy, the
    stall rule, Argo CD's health check in charts/, the registry client, the gate)."""

    # ModelResolved (the registry client raises these)
    RESOLVED: Final = "Resolved"
    MODEL_NOT_FOUND: Final = "ModelNotFound"
    VERSION_NOT_FOUND: Final = "VersionNotFound"
    ALIAS_NOT_SET: Final = "AliasNotSet"
    REGISTRY_UNAVAILABLE: Final = "RegistryUnavailable"
    # Available
    PROGRESSING: Final = "Progressing"
    UNSCHEDULABLE: Final = "Unschedulable"
    MINIMUM_REPLICAS_AVAILABLE: Final = "MinimumReplicasAvailable"
    CONTAINER_FAILING: Final = "ContainerFailing"
    PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
    # Ready / Reconciling / Stalled
    AVAILABLE: Final = "Available"
    RECONCILED: Final = "Reconciled"
    NOT_STALLED: Final = "NotStalled"
    INVALID_SPEC: Final = "InvalidSpec"
    INVALID_SCHEDULE: Final = "InvalidSchedule"  # spec.retraining.schedule never fires
    NAME_CONFLICT: Final = "NameConflict"
    FORBIDDEN: Final = "Forbidden"  # the API server refused a child with 403 (RBAC, a policy)
    API_UNAVAILABLE: Final = "ApiUnavailable"  # it did not answer (timeouts, 429, 5xx): retried
    # SLORules
    ROLLOUT_PROGRESSING: Final = "RolloutProgressing"  # spec.rollout Canary: a canary runs
    ROLLOUT_PAUSED: Final = "RolloutPaused"
    ROLLED_BACK: Final = "RolledBack"  # its analysis failed: the stable version serves
    ROLLOUT_ABORTED: Final = "RolloutAborted"  # by mlops.dev/rollout-action: abort
    ROLLOUT_UNAVAILABLE: Final = "RolloutUnavailable"  # a Canary the operator cannot judge
    ALIAS_REVERTED: Final = "AliasReverted"  # an Event: a rollback moved the alias back
    RULES_WRITTEN: Final = "RulesWritten"
    PROMETHEUS_RULE_UNAVAILABLE: Final = "PrometheusRuleUnavailable"
    # RetrainJob
    RUNNING: Final = "Running"
    COMPLETED: Final = "Completed"
    QUEUED: Final = "Queued"
    BACKEND_UNAVAILABLE: Final = "BackendUnavailable"
    PIPELINE_NOT_FOUND: Final = "PipelineNotFound"
    INVALID_PARAMETERS: Final = "InvalidParameters"
    NO_VERSION: Final = "NoVersion"
    # the promotion gate
    BETTER: Final = "Better"
    NOT_BETTER: Final = "NotBetter"
    NO_METRIC: Final = "NoMetric"
    NO_HOLDER: Final = "NoHolder"
    CHECKS_FAILED: Final = "ChecksFailed"


class Check:
    """The checks of spec.promotion.checks, as status.result.checks names them."""

    FLOOR: Final = "floor"
    LATENCY: Final = "latency"
    NOISE: Final = "robustness.noise"
    OUT_OF_RANGE: Final = "robustness.outOfRange"
    MISSING: Final = "robustness.missing"
    SLICES: Final = "slices"
    DEMOGRAPHIC_PARITY: Final = "fairness.demographicParity"
    EQUALIZED_ODDS: Final = "fairness.equalizedOdds"
    SIGNATURE: Final = "signature"


# ModelResolved=False reasons that waiting will not fix (kstatus: Stalled)
STALLING_REASONS: Final = frozenset(
    {Reason.MODEL_NOT_FOUND, Reason.VERSION_NOT_FOUND, Reason.ALIAS_NOT_SET, Reason.INVALID_SPEC}
)

# -- time on the wire (conditions, status timestamps) ---------------------------------------
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


def format_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime(TIME_FORMAT)


def parse_time(s: str | None) -> dt.datetime | None:
    if not s:
        return None
    return dt.datetime.strptime(s, TIME_FORMAT).replace(tzinfo=dt.UTC)


# -- value types shared by layers --------------------------------------------------------------
@dataclass(frozen=True)
class Owner:
    """The object whose children are built: enough for ownerReferences and names."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class ResolvedModel:
    """A registry version the operator decided to serve (or found served)."""

    name: str
    version: str
    alias: str | None = None
    source: str | None = None
    run_id: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class Requeue:
    """What a reconcile asks of its work queue: run again after `after` seconds (None from a
    reconcile means: nothing to do until the next event or resync). With backoff (an outage,
    a failing call) the delay doubles on each repeat; without (polling a run that is still
    going) it stays as asked. `forget`: the object is gone and its DELETED event may never
    come (a watch of a deleted namespace can end before it): the queue drops the object."""

    after: float
    reason: str = ""
    backoff: bool = False
    forget: bool = False
