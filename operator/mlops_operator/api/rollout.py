"""spec.rollout: how a version change reaches the pods, in the vocabulary of Argo Rollouts.

RollingUpdate (the default) is the Deployment's own rolling update. Canary moves a share of the
pods to the new version in steps and judges every analysis interval against spec.slo on the
canary's own pods; a canary that fails is rolled back, one that passes every step is promoted.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from mlops_operator.api.common import ApiModel, cel

DURATION = r"^[0-9]+(s|m|h)$"
ACTION_ANNOTATION = "mlops.dev/rollout-action"  # promote | abort, handled once per value set


class PauseStep(ApiModel):
    duration: str = Field(
        pattern=DURATION,
        max_length=8,
        description="How long to hold the current weight, e.g. 30s or 1m. Analysis goes on "
        "meanwhile. To hold until a person decides, set spec.rollout.paused.",
    )


class AnalysisStep(ApiModel):
    """Hold here until one analysis interval passes at the current weight."""


class Step(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "[has(self.setWeight), has(self.pause), has(self.analysis)]"
                    ".filter(x, x).size() == 1",
                    "each rollout step is exactly one of setWeight, pause or analysis",
                ),
            ]
        }
    )

    set_weight: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Percent of the replicas to run the new version (canary replicas = "
        "ceil(weight x replicas); at least one stable pod stays until 100).",
    )
    pause: PauseStep | None = Field(default=None, description="Hold the weight for a duration.")
    analysis: AnalysisStep | None = Field(
        default=None, description="Wait for a passing analysis interval."
    )


class AnalysisSpec(ApiModel):
    interval: str = Field(
        default="30s",
        pattern=DURATION,
        max_length=8,
        description="How often the canary's metrics are judged against spec.slo, and the "
        "window each judgement measures over.",
    )
    failure_limit: int = Field(
        default=2,
        ge=1,
        le=100,
        description="Failed intervals (counted over the whole rollout) that roll it back.",
    )
    min_requests: int = Field(
        default=10,
        ge=1,
        description="Fewest prediction requests to the canary in an interval for it to be "
        "judged; fewer pauses the rollout (it never promotes blind).",
    )


class Shadow(ApiModel):
    percent: int = Field(
        ge=1,
        le=100,
        description="Share of the prediction requests the stable pods copy to the new "
        "version, asynchronously: the copy never slows or fails the caller's request, and "
        "the new version's answers are compared, then discarded.",
    )
    duration: str = Field(
        pattern=DURATION,
        max_length=8,
        description="How long the shadow phase lasts (once the shadow pods run) before the "
        "canary steps begin; at least one analysis interval must pass in it.",
    )
    min_agreement: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Fewest share of identical predictions (classifiers) for an interval to "
        "pass, e.g. 0.95. Unset: agreement is measured and shown, not judged.",
    )
    max_relative_error: float | None = Field(
        default=None,
        ge=0,
        description="Largest mean relative error |new - stable| / |stable| of numeric "
        "predictions (regressors) for an interval to pass, e.g. 0.05. Unset: not judged.",
    )


class OnFailure(ApiModel):
    revert_alias: bool | None = Field(
        default=None,
        description="On rollback, move spec.model.alias back to the stable version (only if "
        "it still points at the failed one). Default: true when the failed version was "
        "registered by a RetrainJob, false otherwise.",
    )


class GatewayApi(ApiModel):
    http_route: str = Field(
        min_length=1,
        max_length=253,
        description="Name of an HTTPRoute (gateway.networking.k8s.io/v1) in this namespace. A "
        "rule of it names the Services <name>-stable and <name>-canary (which the operator "
        "creates) as backendRefs; the operator writes their weights at every step: the "
        "canary's share, and the rest to the stable version.",
    )


class TrafficRouting(ApiModel):
    gateway_api: GatewayApi | None = Field(
        default=None,
        alias="gatewayAPI",
        description="Carry the canary's weight in a Gateway API HTTPRoute instead of by the "
        "replica ratio alone (the canary still gets ceil(weight x replicas) pods).",
    )


def _weights_rule() -> str:
    # sorted, and no weight twice: strictly increasing
    w = "self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight)"
    unique = f"{w}.all(x, {w}.indexOf(x) == {w}.lastIndexOf(x))"
    return f"!has(self.steps) || ({w}.isSorted() && {unique})"


class Rollout(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.strategy == 'Canary' || (!has(self.steps) && !has(self.analysis))",
                    "rollout.steps and rollout.analysis apply to strategy Canary only",
                ),
                cel(_weights_rule(), "rollout.steps: setWeight values must increase"),
                cel(
                    "self.strategy == 'Canary' || !has(self.shadow)",
                    "rollout.shadow precedes a canary: it applies to strategy Canary only",
                ),
            ]
        }
    )

    strategy: Literal["RollingUpdate", "Canary"] = Field(
        default="RollingUpdate",
        description="RollingUpdate: the Deployment's rolling update, as soon as the version "
        "changes. Canary: a second Deployment <name>-canary runs the new version for a share "
        "of the traffic (replica ratio behind the same Service), judged against spec.slo "
        "(needs spec.slo and the operator's MLOPS_PROMETHEUS_URL).",
    )
    steps: list[Step] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Canary steps; default setWeight 20, pause 1m, setWeight 50, pause 1m, "
        "then 100% (promotion). Analysis runs throughout, and no weight rises without a "
        "passing interval at the current one.",
    )
    analysis: AnalysisSpec | None = Field(default=None, description="How the canary is judged.")
    shadow: Shadow | None = Field(
        default=None,
        description="A shadow phase before the canary steps: the new version gets copies of "
        "a share of the requests and no user traffic, judged on its errors and latency "
        "against spec.slo and on its agreement with the stable version. Failing it rolls "
        "back before any user traffic moves.",
    )
    on_failure: OnFailure | None = Field(default=None, description="What a rollback also does.")
    traffic_routing: TrafficRouting | None = Field(
        default=None, description="Where the canary's weight is written, beyond pod counts."
    )
    paused: bool = Field(
        default=False,
        description="Hold the canary where it is (analysis and rollback go on); set false to "
        "resume. The annotation mlops.dev/rollout-action: promote|abort acts once.",
    )


# -- status.rollout ----------------------------------------------------------------------


class Analysis(ApiModel):
    time: str = Field(description="When the interval was judged (RFC 3339).")
    result: Literal["Pass", "Fail", "NoData"] = Field(description="The verdict.")
    message: str = Field(default="", description="The numbers beside their budgets.")
    requests: float | None = Field(default=None, description="Canary requests in the interval.")
    error_rate: float | None = Field(default=None, description="5xx share of them.")
    p99_seconds: float | None = Field(default=None, description="Their p99 latency.")
    prediction_drift: float | None = Field(default=None, description="The canary's PSI.")
    agreement: float | None = Field(
        default=None, description="Shadow: share of identical predictions."
    )
    mean_absolute_error: float | None = Field(
        default=None, description="Shadow: mean |new - stable| of numeric predictions."
    )
    mean_relative_error: float | None = Field(
        default=None, description="Shadow: mean |new - stable| / |stable|."
    )


class RolloutStatus(ApiModel):
    phase: Literal["Progressing", "Paused", "Succeeded", "RolledBack", "Aborted"] = Field(
        description="Progressing, Paused (spec.rollout.paused, or no measurements), Succeeded "
        "(promoted), RolledBack (analysis failed), Aborted (by request)."
    )
    version: str = Field(description="The canary's model version.")
    stable_version: str = Field(description="The version the stable pods serve.")
    shadow: bool = Field(
        default=False,
        description="In the shadow phase: the new version gets copies of requests, no user "
        "traffic (the steps begin when it passes).",
    )
    step: int = Field(default=0, description="Index of the step being worked on.")
    steps: int = Field(default=0, description="Number of steps.")
    weight: int = Field(default=0, description="Percent of the replicas on the canary.")
    step_started_at: str | None = Field(default=None, description="When the step began.")
    failures: int = Field(default=0, description="Failed analysis intervals so far.")
    passed_since_step: bool = Field(default=False, description="An interval passed this step.")
    passed_at_weight: bool = Field(default=False, description="One passed at this weight.")
    last_analysis: Analysis | None = Field(default=None, description="The last interval.")
    message: str = Field(default="", description="Where the rollout is, in words.")
    started_at: str | None = Field(default=None, description="When the rollout began.")
    finished_at: str | None = Field(default=None, description="When it finished.")
    superseded: bool = Field(
        default=False,
        description="The alias moved on since this rollout finished: its version may be "
        "tried again.",
    )
    alias_reverted: bool | None = Field(
        default=None,
        description="After a rollback: true when it moved the alias back to the stable "
        "version, false when that was not wanted or the alias had moved on; unset until the "
        "registry was asked.",
    )
    handled_action: str | None = Field(
        default=None,
        description="The mlops.dev/rollout-action value already acted on (acted on once; "
        "remove the annotation to give another).",
    )
