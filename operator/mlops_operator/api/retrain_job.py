"""RetrainJob (mlops.dev/v1alpha1): one retraining run, like a batch Job.

It runs a pipeline from pipelines/ (kfp's local runner or a Kubeflow Pipelines server), which
registers a new model version with its lineage; then the operator's gate moves the alias
only if the new version beats the alias holder. The spec is immutable once created.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from mlops_operator.api.common import PRESERVE, ApiModel, Condition, cel
from mlops_operator.api.slo import LATENCY
from mlops_operator.contract import RETRAIN_JOB_KIND, RETRAIN_JOB_PLURAL

KIND = RETRAIN_JOB_KIND
PLURAL = RETRAIN_JOB_PLURAL


class TargetModel(ApiModel):
    name: str = Field(
        min_length=1,
        max_length=256,
        description="Registered MLflow model that receives the new version (created if "
        "it does not exist yet).",
    )


class PipelineRef(ApiModel):
    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="A pipeline shipped with the operator (pipelines/<name>/), e.g. tabular-train.",
    )
    parameters: dict[str, Any] | None = Field(
        default=None,
        description="Pipeline parameters, e.g. {data_uri: s3://bucket/train.csv, "
        "n_estimators: 200}. The operator adds mlflow_tracking_uri, model_name and "
        "retrainjob itself.",
        json_schema_extra=PRESERVE,
    )


class LatencyCheck(ApiModel):
    p99: str | None = Field(
        default=None,
        pattern=LATENCY,
        max_length=16,
        description="Budget of the 99th-percentile time of one request of batchSize held-out "
        "rows, e.g. 200ms, written as in spec.slo. The new version is loaded through the "
        "runtime's own loader and timed on its request path (parsing and predict), one request "
        "at a time. In a ModelDeployment's retraining template it defaults to that "
        "ModelDeployment's spec.slo.latency.p99; a RetrainJob of its own must set it.",
    )
    batch_size: int = Field(
        default=1,
        ge=1,
        le=10000,
        description="Rows per timed request (1 = single decisions); with more, single rows "
        "are timed too and reported beside (not judged).",
    )


class RobustnessCheck(ApiModel):
    noise: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Standard deviation of the Gaussian noise added to each numeric feature, "
        "as a share of that feature's standard deviation in the training data (the version's "
        "drift baseline; the held-out rows' when it has none).",
    )
    max_changed_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Largest share of held-out predictions the noise may change (a class "
        "that differs; for a regressor, a value that moves by more than a tenth of the "
        "predictions' standard deviation).",
    )
    out_of_range: bool = Field(
        default=True,
        description="Send values far outside each numeric feature's training range (ten "
        "ranges below the minimum and above the maximum, from the version's drift baseline; "
        "the held-out rows' range when it has none): the model must answer, or the runtime's "
        "input checks refuse the request (a 4xx); a crash (5xx) fails the check.",
    )
    missing: bool = Field(
        default=True,
        description="Send a null in each input column in turn: answered or refused (4xx), "
        "never a crash.",
    )


class SliceColumn(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.bins) || self.bins.isSorted() && "
                    "self.bins.all(b, self.bins.indexOf(b) == self.bins.lastIndexOf(b))",
                    "slices.columns[].bins must increase",
                )
            ]
        }
    )

    name: str = Field(min_length=1, max_length=250, description="A feature column.")
    bins: list[float] | None = Field(
        default=None,
        min_length=2,
        max_length=32,
        description="Edges of the bins of a numeric column, increasing: [0, 30, 60] makes "
        "(0, 30] and (30, 60]; rows outside every bin are not judged. Without bins, each "
        "value of the column is a slice.",
    )


class SlicesCheck(ApiModel):
    columns: list[SliceColumn] = Field(
        min_length=1, max_length=16, description="The columns whose values or bins are slices."
    )
    min_size: int = Field(
        default=30,
        ge=1,
        description="Slices with fewer held-out rows are reported, not judged.",
    )
    max_gap: float = Field(
        ge=0,
        description="How far the promotion metric of the worst judged slice may be from its "
        "value on all held-out rows (worse by at most this much).",
    )


class FairnessCheck(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.maxDemographicParityDifference) || "
                    "has(self.maxEqualizedOddsDifference)",
                    "fairness needs maxDemographicParityDifference or maxEqualizedOddsDifference",
                )
            ]
        }
    )

    sensitive_column: str = Field(
        min_length=1,
        max_length=250,
        description="The column of the held-out rows that names each row's group.",
    )
    max_demographic_parity_difference: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Largest difference between the groups' rates of positive predictions "
        "(fairlearn's demographic_parity_difference). Binary classifiers only.",
    )
    max_equalized_odds_difference: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Largest difference between the groups' true- or false-positive rates "
        "(fairlearn's equalized_odds_difference). Binary classifiers only.",
    )


class SignatureCheck(ApiModel):
    allow_breaking_signature: bool = Field(
        default=False,
        description="The new version's input signature is compared with the alias holder's: "
        "a removed, renamed or retyped input, or a new required one, is a breaking change "
        "for the callers and blocks promotion unless this is true.",
    )


class PromotionChecks(ApiModel):
    floor: float | None = Field(
        default=None,
        description="An absolute bound of the promotion metric: the new version must reach "
        "at least this (at most, when greaterIsBetter is false), whatever the alias holder "
        "scores; beating a weak holder is not enough. Judged even when no version holds the "
        "alias. A failed check ends Promoted=False with reason ChecksFailed.",
    )
    latency: LatencyCheck | None = Field(
        default=None, description="A latency budget of the new version's predictions."
    )
    robustness: RobustnessCheck | None = Field(
        default=None,
        description="The new version under noise, out-of-range values and nulls.",
    )
    slices: SlicesCheck | None = Field(
        default=None,
        description="The promotion metric per value or bin of named columns.",
    )
    fairness: FairnessCheck | None = Field(
        default=None,
        description="Group fairness of a binary classifier over a sensitive column.",
    )
    signature: SignatureCheck | None = Field(
        default=None,
        description="The new version's inputs against the alias holder's.",
    )

    def measured(self) -> bool:
        """Whether a check needs the pipeline's check step (all but floor do)."""
        return any(
            c is not None
            for c in (self.latency, self.robustness, self.slices, self.fairness, self.signature)
        )


class Promotion(ApiModel):
    metric: str = Field(
        min_length=1,
        max_length=250,
        description="Metric logged by the pipeline's evaluate step that decides, e.g. "
        "accuracy or roc_auc.",
    )
    greater_is_better: bool = Field(
        default=True, description="True for scores (accuracy), false for losses (rmse)."
    )
    min_delta: float = Field(
        default=0.0,
        ge=0,
        description="The new version must beat the alias holder by at least this much.",
    )
    alias: str = Field(
        default="champion",
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="Alias moved to the new version when it wins; a ModelDeployment "
        "following this alias then rolls forward.",
    )
    checks: PromotionChecks | None = Field(
        default=None,
        description="Tests of the new version beyond beating the holder; each is optional "
        "and every one must pass. status.result.checks lists each: value, bound, passed.",
    )


# On the RetrainJob's spec only (crds registry), not on the model: a ModelDeployment embeds
# RetrainJobSpec as its retraining template, which must stay editable.
IMMUTABLE_SPEC = cel(
    "self == oldSelf", "the spec of a RetrainJob is immutable: create a new RetrainJob instead"
)
# a template's latency budget may come from its ModelDeployment's spec.slo (that rule is there)
LATENCY_BUDGET_SET = cel(
    "!has(self.promotion.checks) || !has(self.promotion.checks.latency) || "
    "has(self.promotion.checks.latency.p99)",
    "promotion.checks.latency needs p99, the budget (e.g. 200ms)",
)


class RetrainJobSpec(ApiModel):
    model: TargetModel = Field(description="The registered model to retrain.")
    pipeline: PipelineRef = Field(description="What to run.")
    backend: Literal["local", "kfp"] | None = Field(
        default=None,
        description="local: kfp's local runner inside the operator; kfp: a Kubeflow "
        "Pipelines API server (MLOPS_KFP_HOST). Default: the operator setting "
        "MLOPS_PIPELINE_BACKEND.",
    )
    promotion: Promotion = Field(description="When the new version replaces the alias holder.")
    credentials_secret: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="kfp backend: a Secret whose MLflow and artifact-store keys "
        "(MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD, AWS_*, AZURE_STORAGE_*; "
        "each optional) reach every task of the pipeline as environment variables. It is "
        "read by KFP, in the namespace where KFP runs the pipeline's pods; the operator never "
        "reads it. The local backend runs with the operator's own environment.",
    )


class RunStatus(ApiModel):
    id: str | None = Field(default=None, description="Run id (KFP run id, or local run id).")
    name: str | None = Field(default=None, description="Deterministic run name (carries uid).")
    url: str | None = Field(default=None, description="Where to look at the run.")
    logs: str | None = Field(default=None, description="Log file of a local run.")
    backend: str | None = Field(default=None, description="Backend that runs it.")
    state: str | None = Field(default=None, description="Last state the backend reported.")
    attempt: int | None = Field(default=None, description="Local restarts of an orphaned run.")
    started_at: str | None = Field(default=None, description="When the run was submitted.")
    completed_at: str | None = Field(default=None, description="When it finished.")


class CheckStatus(ApiModel):
    check: str = Field(description="Which check of spec.promotion.checks, e.g. floor.")
    value: float | None = Field(default=None, description="What the new version measured.")
    bound: float = Field(description="The bound the spec sets.")
    passed: bool = Field(description="Whether the new version is within the bound.")
    message: str | None = Field(
        default=None, max_length=1000, description="What was measured, in words."
    )


class ResultStatus(ApiModel):
    version: str | None = Field(default=None, description="The version the run registered.")
    metrics: dict[str, float] | None = Field(
        default=None, description="Metrics of the evaluate step."
    )
    promoted: bool | None = Field(default=None, description="Whether the alias moved to it.")
    checks: list[CheckStatus] | None = Field(
        default=None,
        max_length=32,
        description="The verdict of each check of spec.promotion.checks on the new version.",
    )
    previous_version: str | None = Field(
        default=None, description="The alias holder before (empty when there was none)."
    )
    rolled_back: str | None = Field(
        default=None,
        description="Set when a ModelDeployment's canary rolled the promoted version back: "
        "which one and why (the version's mlops.dev/rolled-back tag).",
    )


class RetrainJobStatus(ApiModel):
    observed_generation: int | None = Field(
        default=None,
        description="The metadata.generation this status describes; -1 until the operator "
        "first reconciles the object.",
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="Succeeded, Promoted, Ready, Reconciling, Stalled.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    run: RunStatus | None = Field(default=None, description="The pipeline run.")
    result: ResultStatus | None = Field(default=None, description="What the run produced.")
