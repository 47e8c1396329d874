"""The canary step machine (reconcilers/rollout_plan.py), table by table."""

from __future__ import annotations

import datetime as dt

import pytest

from mlops_operator.analysis import Verdict
from mlops_operator.reconcilers.rollout_plan import (
    DEFAULT_STEPS,
    Analysis,
    Outcome,
    Pause,
    SetWeight,
    State,
    Step,
    advance,
    split,
)

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
PASS, FAIL, NODATA = Verdict("Pass", "ok"), Verdict("Fail", "error rate 9%"), Verdict("NoData", "-")


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def run(
    steps: tuple[Step, ...],
    passes: list[tuple[float, Verdict | None]],
    replicas: int = 4,
    failure_limit: int = 2,
) -> list[Outcome]:
    """Each pass at its time with its verdict, feeding the recorded state forward."""
    state, outs = State(), []
    for t, verdict in passes:
        o = advance(steps, state, at(t), verdict, replicas=replicas, failure_limit=failure_limit)
        outs.append(o)
        state = o.state
    return outs


@pytest.mark.parametrize(
    ("replicas", "weight", "want"),
    [
        (4, 0, (4, 0)),
        (4, 20, (3, 1)),
        (4, 50, (2, 2)),
        (10, 25, (7, 3)),  # ceil(2.5) canary pods
        (1, 20, (1, 1)),  # at least one stable pod until 100%
        (2, 90, (1, 2)),
        (3, 100, (0, 3)),
    ],
)
def test_split(replicas: int, weight: int, want: tuple[int, int]) -> None:
    assert split(replicas, weight) == want


def test_a_good_version_goes_through_the_default_steps() -> None:
    outs = run(DEFAULT_STEPS, [(0, None), (30, PASS), (61, PASS), (90, PASS), (122, PASS)])
    weights = [o.state.weight for o in outs]
    assert weights == [20, 20, 50, 50, 100]
    assert [o.state.phase for o in outs][-1] == "Succeeded"
    assert (outs[0].stable_replicas, outs[0].canary_replicas) == (3, 1)
    assert (outs[-1].stable_replicas, outs[-1].canary_replicas) == (0, 4)
    assert [o.event[1] for o in outs if o.event] == [
        "RolloutStep",
        "RolloutStep",
        "RolloutSucceeded",
    ]


def test_failures_up_to_the_limit_roll_back() -> None:
    outs = run(DEFAULT_STEPS, [(0, None), (10, FAIL), (20, PASS), (30, FAIL)], failure_limit=2)
    assert outs[1].state.phase == "Progressing" and outs[1].state.failures == 1
    last = outs[-1]
    assert last.state.phase == "RolledBack" and last.state.weight == 0
    assert (last.stable_replicas, last.canary_replicas) == (4, 0)
    assert last.event is not None and last.event[:2] == ("Warning", "RolledBack")
    assert "error rate 9%" in last.message


def test_no_data_pauses_and_never_promotes_blind() -> None:
    # the pauses elapse while nothing is measured: the weight stays, and the phase says why
    outs = run(DEFAULT_STEPS, [(0, None), (61, NODATA), (200, NODATA), (201, None)])
    assert [o.state.weight for o in outs] == [20, 20, 20, 20]
    assert outs[1].state.phase == "Paused" and "waiting for measurements" in outs[1].message
    # a pass without a verdict holds too: the rollout waits until an interval is judged
    assert outs[3].state.phase == "Paused" and "waiting for measurements" in outs[3].message
    # measurements return and pass: it goes on from where it was
    more = advance(DEFAULT_STEPS, outs[3].state, at(202), PASS, replicas=4, failure_limit=2)
    assert more.state.weight == 50 and more.state.phase == "Progressing"
    assert not more.state.no_data


def test_an_analysis_step_waits_for_a_pass_after_it_began() -> None:
    steps: tuple[Step, ...] = (SetWeight(50), Analysis())
    outs = run(steps, [(0, None), (5, None), (10, PASS)])
    assert [o.state.phase for o in outs] == ["Progressing", "Progressing", "Succeeded"]
    assert "waiting for a passing analysis" in outs[1].message


def test_paused_holds_until_promoted() -> None:
    steps: tuple[Step, ...] = (SetWeight(20), Pause(60))
    state = run(steps, [(0, None)])[0].state
    held = advance(steps, state, at(3600), PASS, replicas=4, failure_limit=2, paused=True)
    assert held.state.phase == "Paused" and held.state.weight == 20
    done = advance(steps, held.state, at(3601), None, replicas=4, failure_limit=2, action="promote")
    assert done.state.phase == "Succeeded" and done.state.weight == 100


def test_the_step_clock_starts_once_the_pods_run() -> None:
    steps: tuple[Step, ...] = (SetWeight(20), Pause(60), SetWeight(50))
    first = run(steps, [(0, None)])[0]
    # the canary pod takes 100 s to start: the pause has not begun, whatever the clock says
    waiting = advance(steps, first.state, at(100), PASS, replicas=4, failure_limit=2, settled=False)
    assert waiting.state.weight == 20 and waiting.state.step_started is None
    assert "waiting for the pods of 20%" in waiting.message
    ready = advance(steps, waiting.state, at(101), None, replicas=4, failure_limit=2)
    assert ready.state.step_started == at(101) and ready.state.weight == 20
    assert "pause until 2026-12-01T12:02:41Z" in ready.message
    later = advance(steps, ready.state, at(162), PASS, replicas=4, failure_limit=2)
    assert later.state.weight == 50


def test_abort_and_paused_and_finished_states() -> None:
    first = run(DEFAULT_STEPS, [(0, None)])[0]
    aborted = advance(
        DEFAULT_STEPS, first.state, at(1), None, replicas=4, failure_limit=2, action="abort"
    )
    assert aborted.state.phase == "Aborted" and aborted.canary_replicas == 0
    held = advance(
        DEFAULT_STEPS, first.state, at(120), PASS, replicas=4, failure_limit=2, paused=True
    )
    assert held.state.phase == "Paused" and held.state.weight == 20
    # a finished rollout stays as it is: only a new version starts another
    again = advance(DEFAULT_STEPS, aborted.state, at(500), PASS, replicas=4, failure_limit=2)
    assert again.state == aborted.state and again.event is None
