"""The arithmetic of the check step (modelchecks/arithmetic.py), on hand-made numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_operator.modelchecks.arithmetic import (
    InputSpec,
    changed_share,
    fairness_report,
    far_values,
    latency_summary,
    metric_value,
    noised,
    percentile,
    signature_changes,
    slice_masks,
    slices_report,
    training_ranges,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("samples", "q", "expected"),
    [
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),  # nearest rank: ceil(0.5 * 4) = 2nd
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 101)], 100, 100.0),
        ([3.0, 1.0, 2.0], 99, 3.0),  # a small sample's p99 is its maximum
    ],
)
def test_percentile_is_the_nearest_rank(samples: list[float], q: float, expected: float) -> None:
    assert percentile(samples, q) == expected


def test_latency_summary_is_in_milliseconds() -> None:
    s = latency_summary([0.001, 0.002, 0.010], batch_size=4)
    assert s == {"batchSize": 4, "requests": 3, "p50Ms": 2.0, "p99Ms": 10.0, "maxMs": 10.0}


@pytest.mark.parametrize(
    ("before", "after", "task", "share"),
    [
        ([0, 1, 1, 0], [0, 1, 0, 0], "classification", 0.25),
        (["a", "b"], ["a", "b"], "classification", 0.0),
        # spread 1.0 (std of 0, 2): a move of more than 0.1 counts
        ([0.0, 2.0], [0.05, 2.5], "regression", 0.5),
        ([1.0, 1.0], [1.0, 1.0], "regression", 0.0),  # no spread: only a change counts
    ],
)
def test_changed_share(before: list[Any], after: list[Any], task: str, share: float) -> None:
    assert changed_share(before, after, task) == pytest.approx(share)


def test_changed_share_needs_as_many_predictions() -> None:
    with pytest.raises(ValueError, match="3 predictions before"):
        changed_share([1, 2, 3], [1, 2], "classification")


@pytest.mark.parametrize(
    ("lo", "hi", "low", "high"),
    [
        (0.0, 1.0, -10.0, 11.0),
        (-3.0, 3.0, -63.0, 63.0),
        (100.0, 101.0, -910.0, 1111.0),  # the span is at least the magnitude (101)
    ],
)
def test_far_values_are_ten_spans_out(lo: float, hi: float, low: float, high: float) -> None:
    assert far_values(lo, hi) == (low, high)


def test_noise_keeps_integer_columns_integers_and_leaves_others_alone() -> None:
    frame = pd.DataFrame({"x": np.linspace(0, 1, 50), "n": np.arange(50), "s": ["a"] * 50})
    out = noised(frame, 0.5, seed=1)
    assert out["n"].dtype == frame["n"].dtype and out["s"].equals(frame["s"])
    assert not np.allclose(out["x"], frame["x"])
    assert noised(frame, 0.5, seed=1).equals(out)  # seeded


@pytest.mark.parametrize(
    ("metric", "task", "truth", "pred", "value"),
    [
        ("accuracy", "classification", [0, 1, 1, 0], [0, 1, 0, 0], 0.75),
        ("recall", "classification", [0, 1, 1, 0], [0, 1, 0, 0], 0.5),
        ("precision", "classification", [0, 1, 1, 0], [1, 1, 0, 0], 0.5),
        ("f1", "classification", [0, 1, 1, 0], [0, 1, 0, 0], 2 / 3),
        ("accuracy", "classification", [0, 1, 2], [0, 1, 1], 2 / 3),
        ("mae", "regression", [1.0, 2.0], [2.0, 2.0], 0.5),
        ("rmse", "regression", [0.0, 0.0], [3.0, 4.0], (12.5) ** 0.5),
    ],
)
def test_metric_value(
    metric: str, task: str, truth: list[Any], pred: list[Any], value: float
) -> None:
    assert metric_value(metric, truth, pred, task) == pytest.approx(value)


def test_a_score_metric_cannot_come_from_predictions() -> None:
    with pytest.raises(ValueError, match="'roc_auc' cannot be computed"):
        metric_value("roc_auc", [0, 1], [0, 1], "classification")


def test_slices_by_value_and_by_bin() -> None:
    col = pd.Series([1.0, 5.0, 5.0, 12.0, None])
    assert [(label, m.tolist()) for label, m in slice_masks(col, [0, 5, 10])] == [
        ("(0, 5]", [True, True, True, False, False]),
        ("(5, 10]", [False, False, False, False, False]),
    ]
    assert [label for label, _ in slice_masks(pd.Series(["b", "a", "b"]), None)] == ["a", "b"]


def test_slices_report_judges_only_slices_of_min_size() -> None:
    frame = pd.DataFrame({"g": ["x"] * 6 + ["y"] * 2})
    truth = [1, 1, 1, 1, 0, 0, 1, 1]
    pred = [1, 1, 1, 1, 0, 1, 0, 0]
    r = slices_report(frame, truth, pred, "classification", "accuracy", [{"name": "g"}], 3)
    assert r == {
        "minSize": 3,
        "items": [
            {"column": "g", "slice": "x", "rows": 6, "value": pytest.approx(5 / 6), "judged": True},
            {"column": "g", "slice": "y", "rows": 2, "value": 0.0, "judged": False},
        ],
    }
    missing = slices_report(frame, truth, pred, "classification", "accuracy", [{"name": "h"}], 3)
    assert "no column 'h'" in missing["error"]


def test_fairness_differences_as_fairlearn_defines_them() -> None:
    # group a: selection 3/4, TPR 2/2, FPR 1/2; group b: selection 1/4, TPR 1/2, FPR 0/2
    truth = [1, 1, 0, 0, 1, 1, 0, 0]
    pred = [1, 1, 1, 0, 1, 0, 0, 0]
    groups = pd.Series(["a"] * 4 + ["b"] * 4, name="sex")
    r = fairness_report(truth, pred, groups)
    assert r["column"] == "sex" and r["groups"] == 2
    assert r["demographicParityDifference"] == pytest.approx(0.5)
    assert r["equalizedOddsDifference"] == pytest.approx(0.5)  # the larger of 0.5 and 0.5


def test_fairness_needs_a_binary_classifier() -> None:
    r = fairness_report([0, 1, 2], [0, 1, 2], pd.Series(["a", "b", "a"]))
    assert "binary" in r["error"]


@pytest.mark.parametrize(
    ("new", "changes"),
    [
        ([InputSpec("a", "double"), InputSpec("b", "long")], []),
        ([InputSpec("a", "double"), InputSpec("b", "long"), InputSpec("c", "double", False)], []),
        (
            [InputSpec("a", "double"), InputSpec("b", "long"), InputSpec("c", "double")],
            ["new required input 'c'"],
        ),
        ([InputSpec("a", "double")], ["input 'b' removed"]),
        (
            [InputSpec("a", "string"), InputSpec("b", "long")],
            ["input 'a' retyped double -> string"],
        ),
        (
            [InputSpec("a_score", "double"), InputSpec("b", "long")],
            ["input 'a' removed", "new required input 'a_score'"],
        ),
    ],
)
def test_signature_changes_that_break_callers(new: list[InputSpec], changes: list[str]) -> None:
    old = [InputSpec("a", "double"), InputSpec("b", "long")]
    assert signature_changes(old, new) == changes


def test_the_training_range_and_spread_come_from_the_drift_baseline() -> None:
    from mlops_operator.profiles import compute_profile

    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 10.0], "n": [1, 2, 3, 4], "s": ["a", "b", "a", "b"]})
    ranges, spreads = training_ranges(compute_profile(train))
    assert ranges == {"x": (1.0, 10.0), "n": (1.0, 4.0)}
    assert spreads["x"] == pytest.approx(float(np.std(train["x"], ddof=0)), rel=0.2)
    assert training_ranges(None) == ({}, {})


def test_noise_is_scaled_by_the_training_spread_when_known() -> None:
    frame = pd.DataFrame({"x": np.zeros(2000)})  # no spread of its own: no noise without one
    assert noised(frame, 0.5, seed=1).equals(frame)
    moved = noised(frame, 0.5, seed=1, spreads={"x": 2.0})
    assert float(moved["x"].std()) == pytest.approx(1.0, rel=0.1)
