from __future__ import annotations

import datetime as dt

import pytest

from mlops_operator.reconcilers.triggers import last_due, parse_duration
from mlops_operator.status.conditions import merge_patch

T = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("since", "now", "due"),
    [
        (T, T + dt.timedelta(minutes=29), None),
        (T, T + dt.timedelta(minutes=30), T.replace(hour=3, minute=0)),
        # several missed firings collapse into the latest one
        (T, T + dt.timedelta(days=3), T.replace(hour=3, minute=0) + dt.timedelta(days=2)),
        (T.replace(hour=3, minute=0), T.replace(hour=3, minute=0), None),  # not twice
    ],
)
def test_last_due_daily(since: dt.datetime, now: dt.datetime, due: dt.datetime | None) -> None:
    assert last_due("0 3 * * *", since, now) == due


def test_last_due_every_minute() -> None:
    assert last_due("* * * * *", T, T + dt.timedelta(seconds=59)) is None
    assert last_due("* * * * *", T, T + dt.timedelta(seconds=61)) == T + dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("s", "seconds"), [("10m", 600), ("1h30m", 5400), ("45s", 45), ("2h", 7200)]
)
def test_parse_duration(s: str, seconds: int) -> None:
    assert parse_duration(s).total_seconds() == seconds


def test_merge_patch_nulls_removed_keys_at_every_depth() -> None:
    old = {"a": 1, "drift": {"psi": 0.3, "since": "x"}, "gone": True}
    new = {"a": 1, "drift": {"psi": 0.1}}
    assert merge_patch(old, new) == {"drift": {"psi": 0.1, "since": None}, "gone": None}
    assert merge_patch(new, new) == {}
