"""One canary analysis interval against the SLO (analysis.py)."""

from __future__ import annotations

import pytest

from mlops_operator.analysis import Measured, Slo, judge

pytestmark = pytest.mark.unit

SLO = Slo(p99_seconds=0.2, error_rate=0.01)
DRIFT_SLO = Slo(p99_seconds=0.2, error_rate=0.01, prediction_drift=0.25)


@pytest.mark.parametrize(
    ("slo", "measured", "result", "words"),
    [
        (SLO, Measured(120, 0.0, 0.05), "Pass", ["error rate 0.00%", "p99 latency 0.050s"]),
        (SLO, Measured(120, 0.01, 0.2), "Pass", ["budget 1.00%"]),  # at the budget is within
        (SLO, Measured(120, 0.05, 0.05), "Fail", ["error rate 5.00% (budget 1.00%)"]),
        (SLO, Measured(120, 0.0, 0.9), "Fail", ["p99 latency 0.900s (budget 0.200s)"]),
        (SLO, Measured(120, 0.5, 0.9), "Fail", ["error rate", "p99 latency"]),
        (SLO, Measured(None, None, None), "NoData", ["no requests"]),
        (SLO, Measured(0, None, None), "NoData", ["no requests"]),
        (SLO, Measured(50, 0.0, None), "NoData", ["no measurement of p99 latency"]),
        # drift is judged only when the SLO names it
        (SLO, Measured(50, 0.0, 0.1, prediction_drift=None), "Pass", []),
        (DRIFT_SLO, Measured(50, 0.0, 0.1, prediction_drift=None), "NoData", ["prediction drift"]),
        (
            DRIFT_SLO,
            Measured(50, 0.0, 0.1, prediction_drift=0.4),
            "Fail",
            ["prediction drift 0.400"],
        ),
    ],
)
def test_judge(slo: Slo, measured: Measured, result: str, words: list[str]) -> None:
    v = judge(slo, measured)
    assert v.result == result, v
    assert all(w in v.message for w in words), v.message


def test_a_passing_verdict_is_never_given_below_the_minimum_traffic() -> None:
    assert judge(SLO, Measured(3, 0.0, 0.01), min_requests=10).result == "NoData"
    assert judge(SLO, Measured(10, 0.0, 0.01), min_requests=10).result == "Pass"
