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
    on_failure: OnFailure | None = Field(default=None, description="What a rollback also does.")
    traffic_routing: TrafficRouting | None = Field(
        default=None, description="Where the canary's weight is written, beyond pod counts."
    )
    paused: bool = Field(
        default=False,
        description="Hold the canary where it is (analysis and rollback go on); set false to "
        "resume. The annotation mlops.dev/rollout-action: promote|abort acts once.",
    )
