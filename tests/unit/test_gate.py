from __future__ import annotations

import pytest

from mlops_operator.gate import decide


@pytest.mark.parametrize(
    ("cand", "holder_v", "holder", "gib", "delta", "promote", "reason"),
    [
        (0.9, None, None, True, 0.0, True, "NoHolder"),
        (None, "3", 0.8, True, 0.0, False, "NoMetric"),
        (None, None, None, True, 0.0, False, "NoMetric"),
        (0.9, "3", 0.8, True, 0.0, True, "Better"),
        (0.8, "3", 0.8, True, 0.0, False, "NotBetter"),  # a tie keeps the holder
        (0.7, "3", 0.8, True, 0.0, False, "NotBetter"),
        (0.85, "3", 0.8, True, 0.1, False, "NotBetter"),  # better, but not by minDelta
        (0.95, "3", 0.8, True, 0.1, True, "Better"),
        (1.0, "3", 2.0, False, 0.0, True, "Better"),  # a loss: lower wins
        (3.0, "3", 2.0, False, 0.0, False, "NotBetter"),
        (0.5, "3", None, True, 0.0, True, "Better"),  # holder cannot be compared
    ],
)
def test_gate(
    cand: float | None,
    holder_v: str | None,
    holder: float | None,
    gib: bool,
    delta: float,
    promote: bool,
    reason: str,
) -> None:
    d = decide("accuracy", cand, holder_v, holder, gib, delta)
    assert (d.promote, d.reason) == (promote, reason)
    assert d.message


def test_parameters_take_the_declared_number_types() -> None:
    from mlops_operator.pipelines.catalog import Parameter, coerce_parameters

    declared = {
        "shift_scale": Parameter("shift_scale", "NUMBER_DOUBLE", False, 0.0),
        "n_estimators": Parameter("n_estimators", "NUMBER_INTEGER", False, 100),
        "flag": Parameter("flag", "BOOLEAN", False, False),
    }
    out = coerce_parameters(
        declared, {"shift_scale": 1, "n_estimators": 200.0, "flag": True, "other": 3}
    )
    assert out == {"shift_scale": 1.0, "n_estimators": 200, "flag": True, "other": 3}
    assert isinstance(out["shift_scale"], float) and isinstance(out["n_estimators"], int)
