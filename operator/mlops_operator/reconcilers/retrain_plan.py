"""PURE: what a RetrainJob pass does, before its run is touched and once it has been polled.

plan_start(start) -> Step decides whether the pass goes on to the run at all (a deleted, a
finished, an invalid job, or one for a backend this operator lacks, does not). plan(observed)
-> Step says, after a poll, which conditions and run record to write, whether the finalizer
stays, what to do next (restart an orphaned run once, or gate the registered version) and
when to look again. reconcilers/retrain_job.py gathers the observation and applies the step;
the decisions are table-tested here (tests/unit/test_retrain_plan.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlops_operator.clients.pipelines import RunState, Traits
from mlops_operator.contract import Reason, Requeue
from mlops_operator.status import retrain_job as rs
from mlops_operator.status.conditions import Condition

Action = Literal["stop", "run", "restart", "gate"]
MAX_RESTARTS = 1  # an orphaned local run is started again once; a second loss fails the job


@dataclass(frozen=True)
class Start:
    generation: int
    deleting: bool  # metadata.deletionTimestamp is set
    finished: bool  # Succeeded decided (and, on success, Promoted)
    spec_error: str | None  # what the typed model refused, or None
    backend: str  # the backend the job asks for (or the operator's default)
    configured: bool  # this operator has that backend


@dataclass(frozen=True)
class Observed:
    generation: int
    run: dict[str, Any]  # status.run as recorded
    state: RunState  # what the backend says now
    traits: Traits
    now: str  # RFC 3339, for completedAt


@dataclass(frozen=True)
class Step:
    conditions: list[Condition] | None = None  # None: leave the conditions as they are
    run: dict[str, Any] | None = None  # the whole status.run to write; None: unchanged
    release_finalizer: bool = False  # the run is over: nothing left to stop on deletion
    action: Action | None = None
    requeue: Requeue | None = None

    @property
    def writes(self) -> bool:
        return self.conditions is not None or self.run is not None


def plan_start(s: Start) -> Step:
    if s.deleting:
        return Step(action="stop")  # stop the run if it still goes, then let the object go
    if s.finished:
        return Step(release_finalizer=True)  # nothing left to stop
    gen = s.generation
    if s.spec_error is not None:
        return Step(rs.failed(gen, Reason.INVALID_SPEC, s.spec_error))
    if not s.configured:
        message = (
            f"backend {s.backend!r} is not configured in this operator (MLOPS_KFP_HOST unset?)"
        )
        return Step(rs.failed(gen, Reason.BACKEND_UNAVAILABLE, message))
    return Step(action="run")


def plan(o: Observed) -> Step:
    run, state, gen = dict(o.run), o.state, o.generation
    shown = state.backend_state or state.phase
    if state.phase in ("Pending", "Running"):
        requeue = Requeue(o.traits.poll_seconds, "running", backoff=o.traits.poll_backoff)
        if run.get("state") == shown:
            return Step(requeue=requeue)
        run["state"] = shown
        name = run.get("name", "")
        return Step(rs.running(gen, f"run {name} is {shown.lower()}"), run, requeue=requeue)
    if state.phase == "Lost":
        attempt = int(run.get("attempt") or 0)
        if attempt < MAX_RESTARTS and o.traits.can_restart:
            run.update(attempt=attempt + 1, state="Restarted")
            message = "the worker was lost (operator restart?); the run was restarted"
            return Step(
                rs.running(gen, message), run, action="restart", requeue=Requeue(2.0, "restarted")
            )
        run.update(state="Lost", completedAt=o.now)
        return Step(rs.failed(gen, state.reason, state.message), run, release_finalizer=True)
    run.update(state=shown, completedAt=run.get("completedAt") or o.now)
    if state.phase == "Failed":
        return Step(rs.failed(gen, state.reason, state.message), run, release_finalizer=True)
    # Succeeded: the gate looks the version up and writes the outcome (with this run record)
    return Step(run=run, action="gate")
