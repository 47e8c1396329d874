"""The gate's reading of the check step's report (gate.judge_report) and spec.promotion.checks
turned into the pipeline's parameter and the gate's bounds (reconcilers/gate_inputs.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops_operator.api.model_deployment import Retraining
from mlops_operator.api.retrain_job import Promotion, PromotionChecks
from mlops_operator.api.slo import Slo
from mlops_operator.builders.retrain_job import job_body
from mlops_operator.contract import TAG_CHECKS, Owner
from mlops_operator.gate import Bounds, decide, judge_report
from mlops_operator.reconcilers.gate_inputs import bounds, checks_parameter, judge, report_of

pytestmark = pytest.mark.unit

ALL = Bounds(
    latency_p99_ms=200.0,
    max_changed_share=0.05,
    out_of_range=True,
    missing=True,
    slice_max_gap=0.1,
    max_demographic_parity=0.1,
    max_equalized_odds=0.2,
    signature=True,
)
GOOD: dict[str, Any] = {
    "schema": 1,
    "rows": 200,
    "metric": "accuracy",
    "overall": 0.9,
    "latency": {"batchSize": 1, "requests": 200, "p50Ms": 3.0, "p99Ms": 12.5, "maxMs": 20.0},
    "robustness": {
        "noise": 0.05,
        "rows": 200,
        "changedShare": 0.01,
        "outOfRange": {"tried": 8, "answered": 6, "refused": 2, "crashed": 0},
        "missing": {"tried": 4, "answered": 0, "refused": 4, "crashed": 0},
    },
    "slices": {
        "minSize": 30,
        "items": [
            {"column": "g", "slice": "a", "rows": 100, "value": 0.85, "judged": True},
            {"column": "g", "slice": "b", "rows": 90, "value": 0.95, "judged": True},
            {"column": "g", "slice": "c", "rows": 10, "value": 0.1, "judged": False},
        ],
    },
    "fairness": {
        "column": "g",
        "groups": 3,
        "demographicParityDifference": 0.04,
        "equalizedOddsDifference": 0.06,
    },
    "signature": {"against": "3", "changes": []},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """GOOD with the value at a dotted path (a number picks a list item) replaced."""
    report: dict[str, Any] = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node: Any = report
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    node[last] = value
    return report


def test_a_sound_report_passes_every_check_with_its_numbers() -> None:
    results = judge_report(GOOD, ALL, True, "3")
    assert [(r.check, r.value, r.bound, r.passed) for r in results] == [
        ("latency", 12.5, 200.0, True),
        ("robustness.noise", 0.01, 0.05, True),
        ("robustness.outOfRange", 0.0, 0.0, True),
        ("robustness.missing", 0.0, 0.0, True),
        ("slices", pytest.approx(0.05), 0.1, True),  # the worst judged slice: a, 0.85
        ("fairness.demographicParity", 0.04, 0.1, True),
        ("fairness.equalizedOdds", 0.06, 0.2, True),
        ("signature", 0.0, 0.0, True),
    ]
    assert "g=a (100 rows)" in results[4].message and "1 too small" in results[4].message


@pytest.mark.parametrize(
    ("path", "value", "check", "words"),
    [
        ("latency.p99Ms", 250.0, "latency", "p99 250 ms over 200 requests of 1 row(s), over"),
        ("robustness.changedShare", 0.2, "robustness.noise", "changed 20.0% of 200"),
        (
            "robustness.outOfRange",
            {"tried": 8, "answered": 2, "refused": 0, "crashed": 6, "firstCrash": "Boom: x"},
            "robustness.outOfRange",
            "6 of 8 requests with out-of-range values crashed the model",
        ),
        (
            "robustness.missing",
            {"tried": 4, "answered": 0, "refused": 3, "crashed": 1},
            "robustness.missing",
            "1 of 4 requests with nulls",
        ),
        ("slices.items.0.value", 0.7, "slices", "a gap of 0.2"),
        ("fairness.demographicParityDifference", 0.3, "fairness.demographicParity", "0.3"),
        ("fairness.equalizedOddsDifference", 0.5, "fairness.equalizedOdds", "equalized odds"),
        ("signature.changes", ["input 'a' removed"], "signature", "breaking against version 3"),
        ("signature.against", "2", "signature", "the alias now holds 3"),
        ("latency", {"error": "held-out requests were refused: no"}, "latency", "not measured"),
        ("fairness", {"error": "fairness needs a binary classifier"}, "fairness.equalizedOdds", ""),
    ],
)
def test_each_check_fails_on_its_own_numbers(path: str, value: Any, check: str, words: str) -> None:
    report = _with(path, value)
    results = {r.check: r for r in judge_report(report, ALL, True, "3")}
    assert [c for c, r in results.items() if not r.passed] == (
        [check] if path != "fairness" else ["fairness.demographicParity", check]
    )
    assert words in results[check].message
    d = decide("accuracy", 0.95, "3", 0.5, True, 0.0, list(results.values()))
    assert (d.promote, d.reason) == (False, "ChecksFailed")
    assert results[check].message in d.message


def test_a_loss_metric_slices_gap_the_other_way() -> None:
    report = _with("metric", "rmse")
    report["overall"] = 10.0
    report["slices"]["items"] = [
        {"column": "g", "slice": "a", "rows": 50, "value": 8.0, "judged": True},
        {"column": "g", "slice": "b", "rows": 50, "value": 13.0, "judged": True},
    ]
    [r] = judge_report(report, Bounds(slice_max_gap=2.0), False, None)
    assert (r.value, r.passed) == (3.0, False) and "g=b" in r.message


def test_a_breaking_signature_passes_when_allowed() -> None:
    report = _with("signature.changes", ["input 'a' removed"])
    [r] = judge_report(report, Bounds(signature=True, allow_breaking_signature=True), True, "3")
    assert r.passed and r.value == 1.0 and "allowed" in r.message


def test_no_holder_means_nothing_to_break() -> None:
    report = _with("signature", {"against": None, "changes": []})
    [r] = judge_report(report, Bounds(signature=True), True, None)
    assert r.passed and "no holder" in r.message


@pytest.mark.parametrize(
    ("report", "words"),
    [
        (None, "no report from the pipeline's check step"),
        ({"schema": 1, "error": "the runtime's loader could not load"}, "could not load"),
        ({"schema": 1}, "not in the check step's report"),
    ],
)
def test_no_measurement_fails_every_check_asked(report: Any, words: str) -> None:
    results = judge_report(report, ALL, True, "3")
    assert len(results) == 8 and not any(r.passed for r in results)
    assert all(words in r.message for r in results)


def test_nothing_asked_nothing_judged() -> None:
    assert judge_report(None, Bounds(), True, "3") == []
    assert judge({}, PromotionChecks(floor=0.9), True, "3") == []


def test_slices_with_none_big_enough_pass_and_say_so() -> None:
    report = _with("slices.items", [{"column": "g", "slice": "a", "rows": 3, "value": 0.1}])
    [r] = judge_report(report, Bounds(slice_max_gap=0.1), True, None)
    assert r.passed and r.value is None and "no slice of at least 30 rows" in r.message


def test_the_report_tag() -> None:
    assert report_of({}) is None
    assert report_of({TAG_CHECKS: json.dumps(GOOD)}) == GOOD
    assert "not JSON" in (report_of({TAG_CHECKS: "{"}) or {})["error"]
    assert "not a JSON object" in (report_of({TAG_CHECKS: "[1]"}) or {})["error"]


CHECKS = PromotionChecks.model_validate(
    {
        "floor": 0.8,
        "latency": {"p99": "1.5s", "batchSize": 4},
        "robustness": {"outOfRange": False},
        "slices": {"columns": [{"name": "g"}], "maxGap": 0.1},
        "fairness": {"sensitiveColumn": "g", "maxEqualizedOddsDifference": 0.2},
        "signature": {"allowBreakingSignature": True},
    }
)


def test_the_spec_as_the_gates_bounds() -> None:
    assert bounds(CHECKS) == Bounds(
        latency_p99_ms=1500.0,
        max_changed_share=0.05,
        out_of_range=False,
        missing=True,
        slice_max_gap=0.1,
        max_demographic_parity=None,
        max_equalized_odds=0.2,
        signature=True,
        allow_breaking_signature=True,
    )
    assert bounds(None) == Bounds() and bounds(PromotionChecks(floor=1.0)).asked() == []


def test_the_spec_as_the_pipelines_checks_parameter() -> None:
    p = Promotion(metric="f1", alias="prod", checks=CHECKS)
    param = checks_parameter(p)
    assert param is not None and "floor" not in param
    assert (param["metric"], param["alias"]) == ("f1", "prod")
    assert param["latency"] == {"p99": "1.5s", "batchSize": 4}
    assert param["fairness"] == {"sensitiveColumn": "g", "maxEqualizedOddsDifference": 0.2}
    # floor alone is judged on the evaluate step's metrics: nothing to measure
    assert checks_parameter(Promotion(metric="f1", checks=PromotionChecks(floor=0.5))) is None
    assert checks_parameter(Promotion(metric="f1")) is None


@pytest.mark.parametrize(
    ("latency", "slo", "p99"),
    [
        ({"batchSize": 2}, {"latency": {"p99": "300ms"}, "errorRate": 0.01}, "300ms"),
        ({"p99": "50ms"}, {"latency": {"p99": "300ms"}, "errorRate": 0.01}, "50ms"),  # its own
        ({"batchSize": 2}, None, None),  # the CRD refuses this; nothing is invented
    ],
)
def test_a_template_latency_check_takes_the_endpoints_budget(
    latency: dict[str, Any], slo: dict[str, Any] | None, p99: str | None
) -> None:
    retraining = Retraining.model_validate(
        {
            "schedule": "0 3 * * *",
            "template": {
                "model": {"name": "m"},
                "pipeline": {"name": "tabular-train"},
                "promotion": {"metric": "accuracy", "checks": {"latency": latency}},
            },
        }
    )
    owner = Owner("md", "ns", "uid-1")
    body = job_body(
        owner,
        retraining,
        "md-schedule-1",
        "schedule",
        "due",
        Slo.model_validate(slo) if slo else None,
    )
    assert body["spec"]["promotion"]["checks"]["latency"].get("p99") == p99
    # the template itself is not changed
    assert retraining.template.promotion.checks is not None
    assert retraining.template.promotion.checks.latency is not None
    assert retraining.template.promotion.checks.latency.p99 == latency.get("p99")
