"""Feature profiles and PSI (mlops_operator.profiles): pure, no MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_operator import baselines, profiles
from mlops_operator import psi as psi_mod
from mlops_operator.profiles import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    ProfileError,
    compute_profile,
)
from mlops_operator.psi import band, overall_psi, psi, psi_from_fractions


def make_frame(n: int = 5000, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3 + shift, 1, n),
            "age": rng.integers(18, 90, n),
            "score": rng.normal(shift, 1, n),
            "country": rng.choice(["de", "fr", "us", "jp"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": rng.random(n) < 0.3,
        }
    )


def test_numeric_bins_come_from_training_quantiles() -> None:
    prof = compute_profile(pd.DataFrame({"x": np.arange(1000, dtype=float)}), bins=10)
    f = prof.features["x"]
    assert isinstance(f, NumericProfile)
    assert len(f.edges) == 9 and list(f.edges) == sorted(f.edges)
    assert f.fractions == pytest.approx([0.1] * 10, abs=0.002)
    assert f.missing == 0.0
    assert f.n_bins == 11  # 10 value bins + missing


def test_bins_are_right_closed_and_open_ended() -> None:
    f = NumericProfile(edges=(0.0, 1.0), fractions=(0.2, 0.5, 0.3), missing=0.0, count=10)
    idx = f.bin_indices(np.array([-5.0, 0.0, 0.5, 1.0, 1.01, 99.0, np.nan]))
    assert idx.tolist() == [0, 0, 1, 1, 2, 2, 3]


def test_repeated_values_give_fewer_bins_not_empty_ones() -> None:
    x = pd.Series([0] * 700 + list(range(1, 301)))
    f = compute_profile(pd.DataFrame({"x": x})).features["x"]
    assert isinstance(f, NumericProfile)
    assert f.edges[0] == 0.0 and len(set(f.edges)) == len(f.edges)
    assert f.fractions[0] == pytest.approx(0.7)


def test_missing_values_have_their_own_bin() -> None:
    f = compute_profile(pd.DataFrame({"x": [1.0, None, 3.0, np.nan]})).features["x"]
    assert f.missing == pytest.approx(0.5)
    assert sum(f.expected()) == pytest.approx(1.0)


def test_categorical_frequencies_other_and_missing() -> None:
    s = pd.Series(["a"] * 6 + ["b"] * 3 + [None])
    f = compute_profile(pd.DataFrame({"c": s}), max_categories=1).features["c"]
    assert isinstance(f, CategoricalProfile)
    assert f.categories == ("a",)
    assert f.fractions == pytest.approx((0.6,))
    assert f.other == pytest.approx(0.3)
    assert f.missing == pytest.approx(0.1)
    assert f.bin_indices(pd.Series(["a", "zzz", None])).tolist() == [0, 1, 2]


def test_booleans_are_numeric_and_strings_categorical() -> None:
    prof = compute_profile(make_frame(100))
    kinds = {k: v.kind for k, v in prof.features.items()}
    assert kinds == {
        "amount": "numeric",
        "age": "numeric",
        "score": "numeric",
        "country": "categorical",
        "flag": "numeric",
    }


def test_json_round_trip_is_exact() -> None:
    df = make_frame(500)
    prof = compute_profile(df, predictions=np.arange(500) % 3)
    again = Profile.from_json(prof.to_json())
    assert again == prof
    doc = json.loads(prof.to_json())
    assert doc["format"] == profiles.FORMAT
    assert list(doc["features"]) == list(df.columns)
    assert list(doc["predictions"]) == ["prediction"]


@pytest.mark.parametrize(
    "doc",
    [
        {"format": "something-else", "features": {}},
        {"format": profiles.FORMAT},
        {"format": profiles.FORMAT, "features": {"x": {"kind": "numeric", "edges": [1, 0]}}},
        {
            "format": profiles.FORMAT,
            "features": {"x": {"kind": "numeric", "edges": [0, 1], "fractions": [1.0]}},
        },
        {"format": profiles.FORMAT, "features": {"x": {"kind": "histogram"}}},
    ],
)
def test_malformed_documents_raise_profile_error(doc: dict[str, object]) -> None:
    with pytest.raises(ProfileError):
        Profile.from_dict(doc)
    with pytest.raises(ProfileError):
        Profile.from_json(b"[1, 2")


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi_from_fractions([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_known_value() -> None:
    # sum((a-e) ln(a/e)) for e=(.5,.5), a=(.9,.1)
    expected = 0.4 * np.log(0.9 / 0.5) + (-0.4) * np.log(0.1 / 0.5)
    assert psi_from_fractions([0.5, 0.5], [0.9, 0.1]) == pytest.approx(expected)


def test_psi_is_finite_when_a_bin_is_empty() -> None:
    value = psi_from_fractions([0.5, 0.5, 0.0], [0.4, 0.4, 0.2])
    assert np.isfinite(value) and value > 0.25


def test_same_distribution_is_stable_and_shifted_is_significant() -> None:
    baseline = compute_profile(make_frame(5000, seed=1))
    same = psi(baseline, make_frame(2000, seed=2))
    shifted = psi(baseline, make_frame(2000, seed=3, shift=1.0))
    assert overall_psi(same) < 0.1, same
    assert overall_psi(shifted) > 0.25, shifted
    # the categorical and boolean columns did not move, and PSI says so
    assert shifted["country"] < 0.1 and shifted["flag"] < 0.1


def test_unseen_category_drives_psi_up() -> None:
    baseline = compute_profile(pd.DataFrame({"c": ["a", "b"] * 500}))
    assert psi(baseline, pd.DataFrame({"c": ["a", "b", "new", "new"] * 100}))["c"] > 0.25


def test_psi_skips_columns_the_window_lacks() -> None:
    baseline = compute_profile(make_frame(200))
    assert set(psi(baseline, make_frame(200)[["age"]])) == {"age"}


def test_window_types_need_not_match_training_types() -> None:
    # ints at serving for a float feature, strings where numbers belong (counted missing)
    baseline = compute_profile(pd.DataFrame({"x": np.linspace(0, 100, 1000)}))
    f = baseline.features["x"]
    as_ints = f.bin_indices(pd.Series(np.arange(0, 100, 10)))
    as_floats = f.bin_indices(pd.Series(np.arange(0, 100, 10).astype(float)))
    assert as_ints.tolist() == as_floats.tolist()
    assert f.bin_indices(np.array(["oops", 5.0], dtype=object)).tolist()[0] == f.n_bins - 1


def test_prediction_frame_shapes() -> None:
    assert list(profiles.prediction_frame(np.zeros(3)).columns) == ["prediction"]
    assert list(profiles.prediction_frame(np.zeros((3, 2))).columns) == [
        "prediction_0",
        "prediction_1",
    ]
    assert list(profiles.prediction_frame(pd.Series([1, 2], name="p")).columns) == ["p"]
    assert list(profiles.prediction_frame([1, 2]).columns) == ["prediction"]


def test_prediction_psi() -> None:
    baseline = compute_profile(make_frame(1000), predictions=np.tile([0, 1], 500))
    assert psi_mod.prediction_psi(baseline, np.tile([0, 1], 100))["prediction"] < 0.01
    assert psi_mod.prediction_psi(baseline, np.ones(200))["prediction"] > 0.25


def test_overall_is_the_largest_feature_psi() -> None:
    assert overall_psi({"a": 0.01, "b": 0.3, "c": 0.02}) == 0.3
    assert overall_psi({}) == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "stable"),
        (0.099, "stable"),
        (0.1, "moderate"),
        (0.25, "moderate"),
        (0.26, "significant"),
    ],
)
def test_bands(value: float, expected: str) -> None:
    assert band(value) == expected


def test_load_baseline_from_a_model_directory(tmp_path: Path) -> None:
    root = tmp_path
    assert baselines.load_baseline(root) is None
    prof = compute_profile(make_frame(100))
    (root / "drift").mkdir()
    (root / "drift" / "baseline.json").write_text(prof.to_json())
    assert baselines.load_baseline(root) == prof
