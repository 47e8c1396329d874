"""Types shared by both custom resources, and the base every API model derives from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

from mlops_operator.api.k8s_types import MARKER, QUANTITY_TYPE

# what pydantic accepts as json_schema_extra (its own alias is not exported)
JsonDict = dict[str, JsonValue]

PRESERVE: JsonDict = {"x-kubernetes-preserve-unknown-fields": True}


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One x-kubernetes-validations entry: a CEL rule and the message a person sees."""
    out: JsonDict = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are refused by the
    CRD's structural schema (pruned), and ignored here so an older operator can read a
    newer object."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class Condition(ApiModel):
    type: str = Field(description="Type of the condition, e.g. Ready, Reconciling, Stalled.")
    status: Literal["True", "False", "Unknown"] = Field(
        description="Status of the condition: True, False or Unknown."
    )
    reason: str = Field(
        default="",
        description="One-word CamelCase reason for the last "
        "transition, for machines (e.g. ModelNotFound).",
    )
    message: str = Field(default="", description="Human-readable details of the last transition.")
    last_transition_time: str = Field(
        default="", description="When the status last changed (RFC 3339)."
    )
    observed_generation: int = Field(
        default=0, description="The metadata.generation this condition was computed for."
    )


class Toleration(ApiModel):
    key: str | None = Field(
        default=None,
        description="Taint key the toleration applies to; "
        "empty with operator Exists matches all taints.",
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists (any value) or Equal (the value below); default Equal."
    )
    value: str | None = Field(default=None, description="Taint value to match with Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None,
        description="With NoExecute: how long the pod stays bound after the "
        "taint appears; unset means forever.",
    )


class ResourceRequirements(ApiModel):
    requests: dict[str, int | str] | None = Field(
        default=None,
        description="Minimum resources per container, e.g. {cpu: 500m, memory: "
        "1Gi}, as in core/v1 ResourceRequirements.",
        json_schema_extra={"additionalProperties": {MARKER: QUANTITY_TYPE}},
    )
    limits: dict[str, int | str] | None = Field(
        default=None,
        description="Maximum resources per container, as in core/v1 "
        "ResourceRequirements. GPU limits come from spec.gpu, not from here.",
        json_schema_extra={"additionalProperties": {MARKER: QUANTITY_TYPE}},
    )
