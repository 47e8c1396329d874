"""PURE: spec.promotion.checks as the pipeline's `checks` parameter (what its check step
measures) and as the gate's Bounds (what the report must show); the report read from its tag."""

from __future__ import annotations

import json
from typing import Any

from mlops_operator.api.retrain_job import Promotion, PromotionChecks
from mlops_operator.api.slo import seconds
from mlops_operator.contract import TAG_CHECKS
from mlops_operator.gate import Bounds, CheckResult, judge_report

# the pipeline parameter that carries the checks to the check step
CHECKS_PARAMETER = "checks"


def checks_parameter(promotion: Promotion) -> dict[str, Any] | None:
    """What the check step is asked to measure; None when no check needs it (floor is judged
    on the evaluate step's metrics)."""
    checks = promotion.checks
    if checks is None or not checks.measured():
        return None
    wire = checks.to_wire()
    wire.pop("floor", None)
    return {**wire, "metric": promotion.metric, "alias": promotion.alias}


def bounds(checks: PromotionChecks | None) -> Bounds:
    if checks is None:
        return Bounds()
    lat, rob, fair = checks.latency, checks.robustness, checks.fairness
    return Bounds(
        latency_p99_ms=seconds(lat.p99) * 1000.0 if lat is not None and lat.p99 else None,
        max_changed_share=rob.max_changed_share if rob is not None else None,
        out_of_range=rob is not None and rob.out_of_range,
        missing=rob is not None and rob.missing,
        slice_max_gap=checks.slices.max_gap if checks.slices is not None else None,
        max_demographic_parity=fair.max_demographic_parity_difference if fair else None,
        max_equalized_odds=fair.max_equalized_odds_difference if fair else None,
        signature=checks.signature is not None,
        allow_breaking_signature=bool(
            checks.signature and checks.signature.allow_breaking_signature
        ),
    )


def report_of(tags: dict[str, str]) -> dict[str, Any] | None:
    """The check step's report from the version's tags; None when there is none, and a report
    with an error when the tag is not one."""
    text = tags.get(TAG_CHECKS)
    if text is None:
        return None
    try:
        report = json.loads(text)
    except ValueError as e:
        return {"error": f"the {TAG_CHECKS} tag is not JSON: {e}"}
    if not isinstance(report, dict):
        return {"error": f"the {TAG_CHECKS} tag is not a JSON object"}
    return report


def judge(
    tags: dict[str, str],
    checks: PromotionChecks | None,
    greater_is_better: bool,
    holder: str | None,
) -> list[CheckResult]:
    """The measured checks, judged on the report in the candidate's tags."""
    b = bounds(checks)
    if not b.asked():
        return []
    return judge_report(report_of(tags), b, greater_is_better, holder)
