"""PURE: the promotion gate. One writer of aliases (the operator), one rule for moving them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
        if self.message:
            wire["message"] = self.message[:1000]
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


@dataclass(frozen=True)
class Bounds:
    """What spec.promotion.checks asks of the check step's report (None / False: not asked)."""

    latency_p99_ms: float | None = None
    max_changed_share: float | None = None  # robustness
    out_of_range: bool = False
    missing: bool = False
    slice_max_gap: float | None = None
    max_demographic_parity: float | None = None
    max_equalized_odds: float | None = None
    signature: bool = False
    allow_breaking_signature: bool = False

    def asked(self) -> list[str]:
        named = [
            (self.latency_p99_ms is not None, Check.LATENCY),
            (self.max_changed_share is not None, Check.NOISE),
            (self.out_of_range, Check.OUT_OF_RANGE),
            (self.missing, Check.MISSING),
            (self.slice_max_gap is not None, Check.SLICES),
            (self.max_demographic_parity is not None, Check.DEMOGRAPHIC_PARITY),
            (self.max_equalized_odds is not None, Check.EQUALIZED_ODDS),
            (self.signature, Check.SIGNATURE),
        ]
        return [name for on, name in named if on]


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def judge_report(
    report: Mapping[str, Any] | None,
    bounds: Bounds,
    greater_is_better: bool,
    holder_version: str | None,
) -> list[CheckResult]:
    """Each check `bounds` asks for, judged on the check step's report (modelchecks.py).

    What the report lacks or could not measure fails its check, with the reason: a candidate
    is promoted on measurements, never on their absence.
    """
    asked = bounds.asked()
    if not asked:
        return []
    if report is None or report.get("error"):
        why = (
            f"the check step reported no measurement: {report['error']}"
            if report
            else "no report from the pipeline's check step (its version has no checks tag)"
        )
        return [CheckResult(c, None, _bound_of(bounds, c), False, f"{c}: {why}") for c in asked]
    out: list[CheckResult] = []
    for check in asked:
        out.append(_judge(check, report, bounds, greater_is_better, holder_version))
    return out


def _bound_of(b: Bounds, check: str) -> float:
    return {
        Check.LATENCY: b.latency_p99_ms,
        Check.NOISE: b.max_changed_share,
        Check.SLICES: b.slice_max_gap,
        Check.DEMOGRAPHIC_PARITY: b.max_demographic_parity,
        Check.EQUALIZED_ODDS: b.max_equalized_odds,
    }.get(check) or 0.0


def _missing(check: str, section: Mapping[str, Any] | None, bound: float) -> CheckResult | None:
    if section is None:
        return CheckResult(check, None, bound, False, f"{check}: not in the check step's report")
    if section.get("error"):
        return CheckResult(check, None, bound, False, f"{check}: not measured: {section['error']}")
    return None


def _judge(
    check: str,
    report: Mapping[str, Any],
    b: Bounds,
    greater_is_better: bool,
    holder_version: str | None,
) -> CheckResult:
    bound = _bound_of(b, check)
    if check == Check.LATENCY:
        lat = report.get("latency")
        if (gone := _missing(check, lat, bound)) is not None:
            return gone
        assert lat is not None
        p99 = _num(lat.get("p99Ms"))
        if p99 is None:
            return CheckResult(check, None, bound, False, f"{check}: the report has no p99")
        n, size = lat.get("requests"), lat.get("batchSize", 1)
        passed = p99 <= bound
        word = "within" if passed else "over"
        return CheckResult(
            check,
            p99,
            bound,
            passed,
            f"latency: p99 {p99:g} ms over {n} requests of {size} row(s), {word} the budget "
            f"{bound:g} ms",
        )
    if check in (Check.NOISE, Check.OUT_OF_RANGE, Check.MISSING):
        rob = report.get("robustness")
        if (gone := _missing(check, rob, bound)) is not None:
            return gone
        assert rob is not None
        if check == Check.NOISE:
            share = _num(rob.get("changedShare"))
            if share is None:
                return CheckResult(check, None, bound, False, f"{check}: no changedShare")
            passed = share <= bound
            return CheckResult(
                check,
                share,
                bound,
                passed,
                f"robustness: noise of {rob.get('noise')} std changed {share:.1%} of "
                f"{rob.get('rows')} predictions (at most {bound:.1%})",
            )
        key = "outOfRange" if check == Check.OUT_OF_RANGE else "missing"
        what = "out-of-range values" if key == "outOfRange" else "nulls"
        tally = rob.get(key)
        if (gone := _missing(check, tally, 0.0)) is not None:
            return gone
        assert tally is not None
        crashed = _num(tally.get("crashed"))
        if crashed is None:
            return CheckResult(check, None, 0.0, False, f"{check}: no count of crashes")
        message = (
            f"robustness: {int(crashed)} of {tally.get('tried')} requests with {what} "
            f"crashed the model ({tally.get('answered')} answered, {tally.get('refused')} "
            "refused)"
        )
        if tally.get("firstCrash"):
            message += f": {tally['firstCrash']}"
        return CheckResult(check, crashed, 0.0, crashed == 0, message[:1000])
    if check == Check.SLICES:
        sl = report.get("slices")
        if (gone := _missing(check, sl, bound)) is not None:
            return gone
        assert sl is not None
        overall = _num(report.get("overall"))
        if overall is None:
            why = report.get("overallError") or "no overall value"
            return CheckResult(check, None, bound, False, f"slices: not measured: {why}")
        judged = [i for i in sl.get("items") or [] if i.get("judged") and _num(i.get("value"))]
        small = len(sl.get("items") or []) - len(judged)
        if not judged:
            return CheckResult(
                check,
                None,
                bound,
                True,
                f"slices: no slice of at least {sl.get('minSize')} rows to judge ({small} smaller)",
            )

        def gap(i: Mapping[str, Any]) -> float:
            v = float(i["value"])
            return overall - v if greater_is_better else v - overall

        worst = max(judged, key=gap)
        g = max(gap(worst), 0.0)
        passed = g <= bound
        return CheckResult(
            check,
            round(g, 6),
            bound,
            passed,
            f"slices: worst {worst['column']}={worst['slice']} ({worst['rows']} rows) "
            f"{report.get('metric')} {float(worst['value']):g} against {overall:g} overall, "
            f"a gap of {g:g} (at most {bound:g}; {len(judged)} judged, {small} too small)",
        )
    if check in (Check.DEMOGRAPHIC_PARITY, Check.EQUALIZED_ODDS):
        fair = report.get("fairness")
        if (gone := _missing(check, fair, bound)) is not None:
            return gone
        assert fair is not None
        key = (
            "demographicParityDifference"
            if check == Check.DEMOGRAPHIC_PARITY
            else "equalizedOddsDifference"
        )
        value = _num(fair.get(key))
        if value is None:
            return CheckResult(check, None, bound, False, f"{check}: no {key}")
        name = "demographic parity" if check == Check.DEMOGRAPHIC_PARITY else "equalized odds"
        return CheckResult(
            check,
            value,
            bound,
            value <= bound,
            f"fairness: {name} difference {value:g} over {fair.get('groups')} groups of "
            f"{fair.get('column')!r} (at most {bound:g})",
        )
    # Check.SIGNATURE
    sig = report.get("signature")
    if (gone := _missing(check, sig, 0.0)) is not None:
        return gone
    assert sig is not None
    changes = [str(c) for c in sig.get("changes") or []]
    against = sig.get("against")
    if against != holder_version:
        return CheckResult(
            check,
            None,
            0.0,
            False,
            f"signature: compared with version {against}, but the alias now holds "
            f"{holder_version}; retrain to compare again",
        )
    if not changes:
        base = f"version {against}" if against else "no holder"
        return CheckResult(check, 0.0, 0.0, True, f"signature: no breaking change against {base}")
    allowed = b.allow_breaking_signature
    verb = "allowed" if allowed else "breaking"
    return CheckResult(
        check,
        float(len(changes)),
        0.0,
        allowed,
        f"signature: {verb} against version {against}: {'; '.join(changes)}"[:1000],
    )


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
    passed = f"; {len(checks)} check(s) passed" if checks else ""
    if holder_version is None:
        return Decision(
            True, Reason.NO_HOLDER, f"no version held the alias; {metric}={candidate:g}{passed}"
        )
    if holder is None:
        return Decision(
            True,
            Reason.BETTER,
            f"version {holder_version} has no {metric!r}; the new version has {candidate:g}"
            + passed,
        )
    gain = candidate - holder if greater_is_better else holder - candidate
    better = gain > 0 and gain >= min_delta
    cmp = f"{metric} {candidate:g} vs {holder:g} of version {holder_version}"
    if better:
        return Decision(
            True, Reason.BETTER, f"{cmp}: better by {gain:g} (minDelta {min_delta:g}){passed}"
        )
    return Decision(False, Reason.NOT_BETTER, f"{cmp}: not better by at least {min_delta:g}")
