"""PURE: one canary analysis interval judged against the model's service level.

The measurements come from Prometheus, on the canary's own pods (the runtime's metrics): the
share of 5xx answers, the p99 latency from the request histogram and, when the SLO names it,
the canary's prediction drift. A measurement that is missing (Prometheus down, no traffic yet)
makes the interval NoData: a rollout waits on that, it never promotes blind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Result = Literal["Pass", "Fail", "NoData"]


@dataclass(frozen=True)
class Slo:
    """The service level of the endpoint (spec.slo), in the runtime's own metrics."""

    p99_seconds: float
    error_rate: float  # the 5xx share, a fraction
    prediction_drift: float | None = None  # PSI of the predictions; None = not judged
    # a shadow phase's gates on the comparison with the stable version; None = not judged
    min_agreement: float | None = None
    max_relative_error: float | None = None


@dataclass(frozen=True)
class Measured:
    """One interval's numbers on the canary's pods; None where there was nothing to measure."""

    requests: float | None  # answered in the interval
    error_rate: float | None
    p99_seconds: float | None
    prediction_drift: float | None = None
    agreement: float | None = None  # shadow: share of identical predictions
    mean_absolute_error: float | None = None  # shadow: numeric predictions only
    mean_relative_error: float | None = None


@dataclass(frozen=True)
class Verdict:
    result: Result
    message: str  # the numbers beside their budgets, for status and Events


def judge(slo: Slo, m: Measured, min_requests: float = 1, subject: str = "canary") -> Verdict:
    """Pass when every measured value is within its budget; Fail when any is over it (the
    message names each one over); NoData when a value the SLO judges could not be measured.
    `subject` names what was measured (the canary, or the shadow's copies)."""
    # (name, value, budget, format, whether the budget is a floor)
    checks: list[tuple[str, float | None, float, str, bool]] = [
        ("error rate", m.error_rate, slo.error_rate, "{:.2%}", False),
        ("p99 latency", m.p99_seconds, slo.p99_seconds, "{:.3f}s", False),
    ]
    if slo.prediction_drift is not None:
        checks.append(
            ("prediction drift", m.prediction_drift, slo.prediction_drift, "{:.3f}", False)
        )
    if slo.min_agreement is not None:
        checks.append(("agreement", m.agreement, slo.min_agreement, "{:.2%}", True))
    if slo.max_relative_error is not None:
        checks.append(
            ("relative error", m.mean_relative_error, slo.max_relative_error, "{:.2%}", False)
        )
    if m.requests is None or m.requests < min_requests:
        seen = "no" if not m.requests else f"{m.requests:g}"
        return Verdict("NoData", f"{seen} requests to the {subject} in the interval: not judged")
    missing = [name for name, value, _, _, _ in checks if value is None]
    if missing:
        return Verdict("NoData", f"no measurement of {', '.join(missing)}: not judged")
    parts, over = [], []
    for name, value, budget, fmt, floor in checks:
        assert value is not None
        word = "at least" if floor else "budget"
        text = f"{name} {fmt.format(value)} ({word} {fmt.format(budget)})"
        parts.append(text)
        if (value < budget) if floor else (value > budget):
            over.append(text)
    if over:
        return Verdict("Fail", "out of bounds: " + "; ".join(over))
    return Verdict("Pass", "; ".join(parts))
