"""PURE: the promotion gate. One writer of aliases (the operator), one rule for moving them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlops_operator.contract import Check, Reason


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str  # Reason.BETTER | NOT_BETTER | NO_METRIC | NO_HOLDER | CHECKS_FAILED
    message: str


@dataclass(frozen=True)
class CheckResult:
    check: str  # Check.*
    value: float | None
    bound: float
    passed: bool
    message: str

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"check": self.check, "bound": self.bound, "passed": self.passed}
        if self.value is not None:
            wire["value"] = self.value
        return wire


def run_checks(
    metric: str, candidate: float | None, greater_is_better: bool, floor: float | None
) -> list[CheckResult]:
    """The checks the spec names, judged on the candidate's numbers (none named: none run)."""
    results = []
    if floor is not None:
        word = "at least" if greater_is_better else "at most"
        if candidate is None:
            passed, message = False, f"floor: no {metric!r} to hold against {floor:g}"
        else:
            passed = candidate >= floor if greater_is_better else candidate <= floor
            message = f"floor: {metric} {candidate:g}, must be {word} {floor:g}"
        results.append(CheckResult(Check.FLOOR, candidate, floor, passed, message))
    return results


def decide(
    metric: str,
    candidate: float | None,
    holder_version: str | None,
    holder: float | None,
    greater_is_better: bool,
    min_delta: float,
    checks: Sequence[CheckResult] = (),
) -> Decision:
    """Should the candidate version take the alias from its holder?

    A candidate that fails a check never wins, holder or not (`run_checks`).
    No holder: promote (someone has to serve). A candidate without the metric never wins.
    A holder without it loses to any candidate that has it (it cannot be compared, and the
    candidate was evaluated the way the RetrainJob asks). Otherwise the candidate must beat
    the holder by at least min_delta in the right direction; a tie does not move the alias.
    """
    if candidate is None:
        return Decision(
            False, Reason.NO_METRIC, f"the new version has no metric {metric!r}; the alias stays"
        )
    failed = [c.message for c in checks if not c.passed]
    if failed:
        return Decision(
            False, Reason.CHECKS_FAILED, f"failed check {'; '.join(failed)}; the alias stays"
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
