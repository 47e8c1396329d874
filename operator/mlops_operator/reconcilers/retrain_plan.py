"""PURE: what a RetrainJob pass does once its run has been polled.

plan(observed) -> Step says which conditions and run record to write, whether the finalizer
stays, what to do next (restart an orphaned run once, or gate the registered version) and
when to look again. reconcilers/retrain_job.py gathers the observation and applies the step;
the decisions are table-tested here (tests/unit/test_retrain_plan.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlops_operator.clients.pipelines import RunState, Traits
from mlops_operator.contract import Requeue
from mlops_operator.status import retrain_job as rs
from mlops_operator.status.conditions import Condition

Action = Literal["restart", "gate"]
MAX_RESTARTS = 1  # an orphaned local run is started again once; a second loss fails the job


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
