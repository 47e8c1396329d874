from __future__ import annotations

import datetime as dt
import re

import pytest

from mlops_operator.api.cron import CRON
from mlops_operator.reconcilers.triggers import (
    last_due,
    parse_duration,
    schedule_problem,
    seconds_until_due,
)
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


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("61 * * * *", "out of range"),
        ("*/0 * * * *", "step '0'"),
        ("0 3 * * 8", "out of range"),
        ("a b c d e", "not acceptable"),
        ("0 0 30 2 *", "never fire"),
        ("0 0 31 4 *", "never fire"),
    ],
)
def test_a_schedule_that_cannot_fire_is_named(schedule: str, words: str) -> None:
    problem = schedule_problem(schedule)
    assert problem is not None and schedule in problem and words in problem, problem


@pytest.mark.parametrize("schedule", ["0 3 * * *", "@daily", "0 0 29 2 *", "*/15 1-5 ? * MON-FRI"])
def test_a_valid_schedule_has_no_problem(schedule: str) -> None:
    assert schedule_problem(schedule) is None


def test_the_crd_pattern_refuses_what_the_parser_refuses_by_range() -> None:
    # the CEL rule's regular expression (RE2 there; the same syntax here, its flag moved)
    cron = re.compile(CRON.replace("(?i)", ""), re.IGNORECASE)
    for schedule in ("61 * * * *", "*/0 * * * *", "0 3 * * 8", "a b c d e", "0 3 * *"):
        assert not cron.match(schedule), schedule
    for schedule in ("0 3 * * *", "@daily", "*/15 1-5 ? JAN-MAR MON-FRI", "0,30 3 1-7 * 0"):
        assert cron.match(schedule), schedule
        assert schedule_problem(schedule) is None  # what CEL lets through, the parser takes


def test_the_queue_is_woken_at_the_next_firing() -> None:
    now = dt.datetime(2026, 12, 1, 2, 59, 30, tzinfo=dt.UTC)
    assert seconds_until_due("0 3 * * *", now) == pytest.approx(30.05)
    assert seconds_until_due("*/15 * * * *", now) == pytest.approx(30.05)
    assert seconds_until_due("0 0 30 2 *", now) is None  # never fires: nothing to wake for
