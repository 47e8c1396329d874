"""spec.slo: the service level of a ModelDeployment's endpoint, in the runtime's own metrics."""

from __future__ import annotations

import re

from pydantic import Field

from mlops_operator.api.common import ApiModel

LATENCY = r"^[0-9]+(\.[0-9]+)?(ms|s)$"
WINDOW = r"^[0-9]+(s|m|h)$"


def seconds(duration: str) -> float:
    """A duration of the patterns above in seconds ("200ms" -> 0.2, "5m" -> 300)."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)", duration)
    if m is None:
        raise ValueError(f"not a duration: {duration!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]


class Latency(ApiModel):
    p99: str = Field(
        pattern=LATENCY,
        max_length=16,
        description="Budget of the 99th-percentile time from request to response of the "
        "prediction routes, e.g. 200ms or 1.5s.",
    )


class Slo(ApiModel):
    latency: Latency = Field(description="The latency budget.")
    error_rate: float = Field(
        ge=0,
        lt=1,
        description="Largest share of prediction requests answered with a 5xx, a fraction "
        "(0.01 = 1%).",
    )
    prediction_drift: float | None = Field(
        default=None,
        gt=0,
        le=10,
        description="Optional: largest PSI of the model's live predictions against its "
        "training baseline (mlops_prediction_drift_psi); 0.25 is the usual 'significant'.",
    )
    window: str = Field(
        default="5m",
        pattern=WINDOW,
        max_length=8,
        description="Window the rates and the p99 are measured over; an alert fires when the "
        "budget is exceeded for as long.",
    )
