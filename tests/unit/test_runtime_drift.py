"""The runtime's drift window (runtime/drift.py): pure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_operator import profiles, psi
from mlops_operator.runtime.drift import DriftCounts, DriftMonitor


def data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1, n),
            "y": rng.exponential(1 + shift, n),
            "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def predict(df: pd.DataFrame) -> np.ndarray:
    out: np.ndarray = (df["x"].to_numpy() > 0).astype(np.int64)
    return out


@pytest.fixture(scope="module")
def baseline() -> profiles.Profile:
    train = data(5000, seed=0)
    return profiles.compute_profile(train, predictions=predict(train))


def feed(monitor: DriftMonitor, df: pd.DataFrame, batch: int) -> None:
    for i in range(0, len(df), batch):
        part = df.iloc[i : i + batch].reset_index(drop=True)
        monitor.observe(part, predict(part))


def test_no_psi_until_min_rows(baseline: profiles.Profile) -> None:
    m = DriftMonitor(baseline, window=1000, min_rows=100)
    feed(m, data(99, seed=1), batch=10)
    assert m.snapshot() is None
    assert m.rows == 99
    feed(m, data(1, seed=2), batch=1)
    assert m.snapshot() is not None


def test_window_psi_equals_profiles_psi_over_the_same_rows(baseline: profiles.Profile) -> None:
    # one implementation: the ring of bin indices gives what profiles.psi gives directly
    m = DriftMonitor(baseline, window=700, min_rows=10)
    df = data(1000, seed=3, shift=0.3)
    feed(m, df, batch=7)  # 1000 rows through a 700-row ring: wraps around
    snap = m.snapshot()
    assert snap is not None and snap.rows == 700
    last = df.iloc[-700:]
    assert snap.features == pytest.approx(psi.psi(baseline, last))
    expected_pred = psi.prediction_psi(baseline, predict(last))["prediction"]
    assert snap.prediction == pytest.approx(expected_pred)
    assert snap.overall == max(snap.features.values())


def test_stable_then_shifted(baseline: profiles.Profile) -> None:
    m = DriftMonitor(baseline, window=2000, min_rows=500)
    feed(m, data(2000, seed=4), batch=1)
    stable = m.snapshot()
    assert stable is not None and stable.overall < 0.1, stable
    feed(m, data(2000, seed=5, shift=1.0), batch=100)
    shifted = m.snapshot()
    assert shifted is not None and shifted.overall > 0.25, shifted
    assert shifted.prediction is not None and shifted.prediction > 0.1


def test_snapshot_is_cached_until_new_rows(baseline: profiles.Profile) -> None:
    m = DriftMonitor(baseline, window=100, min_rows=10)
    feed(m, data(50, seed=6), batch=5)
    first = m.snapshot()
    assert m.snapshot() is first
    feed(m, data(5, seed=7), batch=5)
    assert m.snapshot() is not first


def test_columns_in_another_order_or_missing(baseline: profiles.Profile) -> None:
    m = DriftMonitor(baseline, window=100, min_rows=10)
    df = data(50, seed=8)
    m.observe(df[["c", "y", "x"]], predict(df))
    m.observe(df[["x", "y"]], predict(df))  # no "c": counts as missing for c
    snap = m.snapshot()
    assert snap is not None and snap.rows == 100
    assert snap.features["c"] > 1.0  # half the window is "missing", never seen in training


def test_ignores_what_is_not_a_frame_and_odd_predictions(baseline: profiles.Profile) -> None:
    m = DriftMonitor(baseline, window=100, min_rows=10)
    m.observe(np.zeros((3, 3)), np.zeros(3))
    assert m.rows == 0
    df = data(20, seed=9)
    m.observe(df, np.zeros(5))  # prediction count does not match: inputs still counted
    snap = m.snapshot()
    assert snap is not None and snap.rows == 20 and snap.prediction is None


def test_without_prediction_profile() -> None:
    base = profiles.compute_profile(data(500, seed=10))
    m = DriftMonitor(base, window=100, min_rows=10)
    feed(m, data(50, seed=11), batch=10)
    snap = m.snapshot()
    assert snap is not None and snap.prediction is None


def test_rejects_nonsense_sizes(baseline: profiles.Profile) -> None:
    with pytest.raises(ValueError):
        DriftMonitor(baseline, window=0)


def test_memory_stays_bounded_without_scrapes(baseline: profiles.Profile) -> None:
    m = DriftMonitor(baseline, window=100, min_rows=10)
    feed(m, data(1000, seed=12), batch=7)  # never scraped meanwhile
    assert sum(len(x) for x, _ in m._pending) < 100 + 7
    snap = m.snapshot()
    assert snap is not None and snap.rows == 100
    last = data(1000, seed=12).iloc[-100:]
    assert snap.features == pytest.approx(psi.psi(baseline, last))


def test_two_workers_windows_added_up_give_the_psi_of_one_window_over_all_rows(
    baseline: profiles.Profile,
) -> None:
    # MLOPS_WORKERS=2: each worker keeps half the pod's window; what a scrape reports is PSI
    # over their counts added up, and min_rows counts the pod's rows
    one = DriftMonitor(baseline, window=1000, min_rows=300)
    a, b = (DriftMonitor(baseline, window=1000, min_rows=300, workers=2) for _ in range(2))
    assert a.window == 500
    df = data(400, seed=11, shift=0.4)
    feed(one, df, batch=8)
    feed(a, df.iloc[:200].reset_index(drop=True), batch=8)
    feed(b, df.iloc[200:].reset_index(drop=True), batch=8)
    assert a.snapshot() is None and b.snapshot() is None  # 200 rows each: under min_rows alone
    total = a.counts() + DriftCounts.from_wire(b.counts().to_wire())  # b's arrive as JSON
    merged = a.snapshot_of(total)
    expected = one.snapshot()
    assert merged is not None and expected is not None
    assert merged.rows == expected.rows == 400
    assert merged.features == pytest.approx(expected.features)
    assert merged.prediction == pytest.approx(expected.prediction)
    assert merged.overall == pytest.approx(expected.overall)


def test_each_worker_keeps_its_share_of_the_window(baseline: profiles.Profile) -> None:
    w = DriftMonitor(baseline, window=1001, min_rows=10, workers=2)
    feed(w, data(800, seed=12), batch=10)
    assert w.rows == 501  # the share rounds up: never fewer rows than asked for in all
    assert w.counts().input_rows == 501
    assert int(w.counts().inputs[0].sum()) == 501


def test_counts_of_another_baseline_are_refused(baseline: profiles.Profile) -> None:
    other = profiles.compute_profile(data(500, seed=13)[["x"]])
    mine = DriftMonitor(baseline, window=100, min_rows=10)
    theirs = DriftMonitor(other, window=100, min_rows=10)
    feed(mine, data(50, seed=14), batch=10)
    feed(theirs, data(50, seed=15)[["x"]], batch=10)
    with pytest.raises(ValueError, match="different baselines"):
        mine.counts() + theirs.counts()
    with pytest.raises(ValueError, match="do not match"):
        mine.snapshot_of(theirs.counts())
