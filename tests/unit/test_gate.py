from __future__ import annotations

import pytest

from mlops_operator.gate import decide, run_checks


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


@pytest.mark.parametrize(
    ("cand", "gib", "floor", "passed"),
    [
        (0.9, True, 0.8, True),
        (0.8, True, 0.8, True),  # reaching the floor is enough
        (0.7, True, 0.8, False),
        (1.0, False, 2.0, True),  # a loss: the floor is a ceiling
        (2.5, False, 2.0, False),
        (None, True, 0.8, False),  # nothing to hold against the floor
    ],
)
def test_the_floor_check(cand: float | None, gib: bool, floor: float, passed: bool) -> None:
    [c] = run_checks("accuracy", cand, gib, floor)
    assert (c.check, c.value, c.bound, c.passed) == ("floor", cand, floor, passed)
    assert f"{floor:g}" in c.message
    assert c.to_wire() == {
        "check": "floor",
        "bound": floor,
        "passed": passed,
        "message": c.message,
        **({"value": cand} if cand is not None else {}),
    }


def test_no_checks_named_none_run() -> None:
    assert run_checks("accuracy", 0.9, True, None) == []


@pytest.mark.parametrize(
    ("cand", "holder_v", "holder", "promote", "reason"),
    [
        (0.7, None, None, False, "ChecksFailed"),  # even with no holder: below the floor
        (0.7, "3", 0.5, False, "ChecksFailed"),  # beating a weak holder is not enough
        (0.9, "3", 0.5, True, "Better"),
        (0.9, None, None, True, "NoHolder"),
        (0.85, "3", 0.88, False, "NotBetter"),  # above the floor, not above the holder
    ],
)
def test_a_failed_check_keeps_the_alias_whatever_the_holder(
    cand: float, holder_v: str | None, holder: float | None, promote: bool, reason: str
) -> None:
    checks = run_checks("accuracy", cand, True, 0.8)
    d = decide("accuracy", cand, holder_v, holder, True, 0.0, checks)
    assert (d.promote, d.reason) == (promote, reason)
    if reason == "ChecksFailed":
        assert (
            d.message == "failed check floor: accuracy 0.7, must be at least 0.8; the alias stays"
        )


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
