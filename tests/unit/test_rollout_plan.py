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


def shadow_run(
    passes: list[tuple[float, Verdict | None, bool]], failure_limit: int = 2
) -> list[Outcome]:
    """The default steps behind a 60 s shadow phase; each pass says whether its pods run."""
    state, outs = State(shadow=True), []
    for t, verdict, settled in passes:
        o = advance(
            DEFAULT_STEPS,
            state,
            at(t),
            verdict,
            replicas=4,
            failure_limit=failure_limit,
            settled=settled,
            shadow_seconds=60,
        )
        outs.append(o)
        state = o.state
    return outs


def test_a_shadow_holds_the_weight_at_zero_until_its_duration_and_a_pass() -> None:
    outs = shadow_run(
        [
            (0, None, False),  # the shadow pods start: the clock waits for them
            (10, None, True),  # they run: the shadow's clock starts
            (40, PASS, True),
            (69, None, True),  # 59 s in: still shadow
            (70, None, True),  # its duration is over, and an interval passed: 20%
        ]
    )
    assert [o.message for o in outs[:2]] == [
        "waiting for the shadow pods",
        "shadow until 2026-12-01T12:01:10Z",
    ]
    for o in outs[:4]:
        assert o.state.shadow and o.state.weight == 0 and o.canary_replicas == 0
        assert o.stable_replicas == 4
    last = outs[-1]
    assert not last.state.shadow and last.state.weight == 20 and last.canary_replicas == 1
    assert last.event == ("Normal", "RolloutStep", "shadow analysis passed; canary at 20%")
    # the canary's own weight needs its own passing interval: the shadow's does not count
    assert not last.state.passed_at_weight and not last.state.passed_since_step


def test_a_shadow_without_a_passing_interval_waits_past_its_duration() -> None:
    outs = shadow_run([(0, None, True), (30, NODATA, True), (61, None, True), (200, None, True)])
    assert outs[1].state.phase == "Paused"  # no measurements: never moves on blind
    assert all(o.state.shadow and o.state.weight == 0 for o in outs)


def test_a_failing_shadow_rolls_back_before_any_user_traffic_moves() -> None:
    outs = shadow_run([(0, None, True), (30, FAIL, True), (60, FAIL, True)])
    assert outs[1].state.phase == "Progressing" and outs[1].state.failures == 1
    done = outs[-1]
    assert done.state.phase == "RolledBack" and not done.state.shadow
    assert done.state.weight == 0 and done.canary_replicas == 0
    assert done.event is not None and done.event[1] == "RolledBack"
    assert done.message == "shadow analysis failed 2 time(s): error rate 9%"


def test_promote_and_abort_end_a_shadow_too() -> None:
    start = State(shadow=True, step_started=T0)
    promoted = advance(
        DEFAULT_STEPS, start, at(5), None, replicas=4, failure_limit=2, action="promote"
    )
    aborted = advance(
        DEFAULT_STEPS, start, at(5), None, replicas=4, failure_limit=2, action="abort"
    )
    assert promoted.state.phase == "Succeeded" and not promoted.state.shadow
    assert aborted.state.phase == "Aborted" and not aborted.state.shadow
