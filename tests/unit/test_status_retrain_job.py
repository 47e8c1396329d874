"""status/retrain_job.py: what a finished job's verdict reads like on its ModelDeployment."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.gate import Decision
from mlops_operator.status import retrain_job as rs


def job(conditions: list[Any], **result: Any) -> dict[str, Any]:
    wire = [c.to_wire() if hasattr(c, "to_wire") else c for c in conditions]
    return {"metadata": {"name": "j"}, "status": {"conditions": wire, "result": result}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (job(rs.running(1, "run r submitted")), None),
        (job(rs.pending(1, "Queued", "2 local runs already running")), None),
        (
            job(
                rs.succeeded(1, "4", Decision(True, "Better", "accuracy 0.97 vs 0.9")),
                version="4",
                promoted=True,
            ),
            {
                "name": "j",
                "succeeded": True,
                "promoted": True,
                "reason": "Better",
                "message": "accuracy 0.97 vs 0.9",
                "version": "4",
            },
        ),
        (
            job(
                rs.succeeded(1, "5", Decision(False, "ChecksFailed", "failed check floor: ...")),
                version="5",
                promoted=False,
                checks=[{"check": "floor", "value": 0.7, "bound": 0.8, "passed": False}],
            ),
            {
                "name": "j",
                "succeeded": True,
                "promoted": False,
                "reason": "ChecksFailed",
                "message": "failed check floor: ...",
                "version": "5",
                "checks": [{"check": "floor", "value": 0.7, "bound": 0.8, "passed": False}],
            },
        ),
        (
            job(rs.failed(1, "ValidationFailed", "data validation failed: nulls in a")),
            {
                "name": "j",
                "succeeded": False,
                "promoted": False,
                "reason": "ValidationFailed",
                "message": "data validation failed: nulls in a",
            },
        ),
    ],
)
def test_the_verdict_of_a_finished_job(body: dict[str, Any], expected: Any) -> None:
    assert rs.verdict(body) == expected
