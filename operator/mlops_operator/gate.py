"""PURE: the promotion gate. One writer of aliases (the operator), one rule for moving them."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_operator.contract import Reason


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str  # Reason.BETTER | NOT_BETTER | NO_METRIC | NO_HOLDER
    message: str


def decide(
    metric: str,
    candidate: float | None,
    holder_version: str | None,
    holder: float | None,
    greater_is_better: bool,
    min_delta: float,
) -> Decision:
    """Should the candidate version take the alias from its holder?

    No holder: promote (someone has to serve). A candidate without the metric never wins.
    A holder without it loses to any candidate that has it (it cannot be compared, and the
    candidate was evaluated the way the RetrainJob asks). Otherwise the candidate must beat
    the holder by at least min_delta in the right direction; a tie does not move the alias.
    """
    if candidate is None:
        return Decision(
            False, Reason.NO_METRIC, f"the new version has no metric {metric!r}; the alias stays"
        )
    if holder_version is None:
        return Decision(
            True, Reason.NO_HOLDER, f"no version held the alias; {metric}={candidate:g}"
        )
    if holder is None:
        return Decision(
            True,
            Reason.BETTER,
            f"version {holder_version} has no {metric!r}; the new version has {candidate:g}",
        )
    gain = candidate - holder if greater_is_better else holder - candidate
    better = gain > 0 and gain >= min_delta
    cmp = f"{metric} {candidate:g} vs {holder:g} of version {holder_version}"
    if better:
        return Decision(True, Reason.BETTER, f"{cmp}: better by {gain:g} (minDelta {min_delta:g})")
    return Decision(False, Reason.NOT_BETTER, f"{cmp}: not better by at least {min_delta:g}")
