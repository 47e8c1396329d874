"""PURE: the canary step machine (spec.rollout, issue "Safe rollouts").

Given the steps, what status.rollout recorded, the time, and this interval's analysis verdict,
advance() says where the rollout is now: its phase, step, weight and the replica split, what to
record and which Event to post. Weight is carried by replica ratio (no service mesh needed):
the canary Deployment gets ceil(weight x replicas) pods, the stable one the rest and at least
one until 100%.

A shadow phase (spec.rollout.shadow) may come first: the new version's pods get copies of a
share of the requests and no user traffic (weight 0) for its duration, judged like any
interval; a passing one is needed before the steps begin, and failures count as in the canary.

Analysis runs throughout the canary: every Fail counts, and failureLimit of them roll back; a
NoData interval pauses until an interval is judged again. The clock of a step starts once both
Deployments run their share of pods (settled). Nothing moves traffic up blind: a higher
weight, and the final 100%, need at least one passing interval at the current weight.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from typing import Literal

from mlops_operator.analysis import Verdict
from mlops_operator.contract import format_time

Phase = Literal["Progressing", "Paused", "Succeeded", "RolledBack", "Aborted"]
Action = Literal["promote", "abort"]


@dataclass(frozen=True)
class SetWeight:
    weight: int  # percent of the replicas on the canary


@dataclass(frozen=True)
class Pause:
    seconds: float  # to hold until a person decides there is spec.rollout.paused


@dataclass(frozen=True)
class Analysis:
    """Wait for a passing analysis interval before the next step."""


Step = SetWeight | Pause | Analysis

# Canary's default, as the issue states it: 20% -> 1m -> 50% -> 1m -> 100%, analysis throughout
DEFAULT_STEPS: tuple[Step, ...] = (SetWeight(20), Pause(60), SetWeight(50), Pause(60))


@dataclass(frozen=True)
class State:
    """What status.rollout records between passes (the operator resumes from it)."""

    phase: Phase = "Progressing"
    step: int = 0  # index of the step being worked on; len(steps) = all done
    weight: int = 0
    step_started: dt.datetime | None = None
    failures: int = 0
    passed_since_step: bool = False  # an analysis passed since the current step began
    passed_at_weight: bool = False  # an analysis passed since the weight last changed
    no_data: bool = False  # the last interval could not be judged: hold until one can
    shadow: bool = False  # in the shadow phase, before the steps


@dataclass(frozen=True)
class Outcome:
    state: State
    stable_replicas: int
    canary_replicas: int
    event: tuple[str, str, str] | None = None  # (type, reason, message) when something moved
    message: str = ""


def split(replicas: int, weight: int) -> tuple[int, int]:
    """(stable, canary) pods for `weight` percent on the canary."""
    if weight >= 100:
        return 0, replicas
    if weight <= 0:
        return replicas, 0
    canary = math.ceil(weight * replicas / 100)
    return max(1, replicas - canary), canary


def advance(
    steps: tuple[Step, ...],
    state: State,
    now: dt.datetime,
    verdict: Verdict | None,  # None: no analysis was due in this pass
    *,
    replicas: int,
    failure_limit: int,
    paused: bool = False,
    action: Action | None = None,
    settled: bool = True,  # both Deployments (in the shadow phase: the shadow's) run their pods
    shadow_seconds: float = 0,  # the shadow phase's duration
) -> Outcome:
    def out(s: State, event: tuple[str, str, str] | None = None, message: str = "") -> Outcome:
        stable, canary = split(replicas, s.weight)
        return Outcome(s, stable, canary, event, message)

    if state.phase in ("Succeeded", "RolledBack", "Aborted"):
        return out(state)  # finished: only a new version starts a new rollout
    if action == "abort":
        s = replace(state, phase="Aborted", weight=0, shadow=False)
        return out(s, ("Warning", "RolloutAborted", "aborted by request"), "aborted by request")
    if action == "promote":
        s = replace(state, phase="Succeeded", step=len(steps), weight=100, shadow=False)
        return out(s, ("Normal", "RolloutPromoted", "promoted by request"), "promoted by request")

    failures = state.failures
    if verdict is not None and verdict.result == "Fail":
        failures += 1
        if failures >= failure_limit:
            where = "shadow " if state.shadow else ""
            s = replace(state, phase="RolledBack", weight=0, failures=failures, shadow=False)
            msg = f"{where}analysis failed {failures} time(s): {verdict.message}"
            return out(s, ("Warning", "RolledBack", msg), msg)
    state = replace(state, failures=failures)
    if verdict is not None and verdict.result == "NoData":
        s = replace(state, phase="Paused", no_data=True)
        return out(s, None, f"waiting for measurements: {verdict.message}")
    if verdict is not None:
        state = replace(state, no_data=False)
    elif state.no_data:
        return out(replace(state, phase="Paused"), None, "waiting for measurements")
    if paused:
        return out(replace(state, phase="Paused"), None, "paused (spec.rollout.paused)")
    ok = verdict is not None and verdict.result == "Pass"
    event = None
    if state.shadow:
        if not settled:
            s = replace(state, phase="Progressing", step_started=None)
            return out(s, None, "waiting for the shadow pods")
        state = replace(state, phase="Progressing", passed_since_step=state.passed_since_step or ok)
        started = state.step_started or now
        if (now - started).total_seconds() < shadow_seconds:
            until = format_time(started + dt.timedelta(seconds=shadow_seconds))
            return out(replace(state, step_started=started), None, f"shadow until {until}")
        if not state.passed_since_step:
            msg = "shadow: waiting for a passing analysis"
            return out(replace(state, step_started=started), None, msg)
        # the copies agreed: the steps begin, each weight judged afresh
        state = replace(state, shadow=False, step_started=now, passed_since_step=False)
        event = ("Normal", "ShadowPassed", "shadow analysis passed: the canary steps begin")
        ok, settled = False, True  # the pass was the shadow's; the canary's pods come next
    if not settled:
        # the step's clock starts once the pods of this weight run
        s = replace(state, phase="Progressing", step_started=None)
        return out(s, None, f"waiting for the pods of {state.weight}%")

    state = replace(
        state,
        phase="Progressing",
        passed_since_step=state.passed_since_step or ok,
        passed_at_weight=state.passed_at_weight or ok,
    )
    # take every step that can be taken now (a weight change is immediate)
    while state.step < len(steps):
        step = steps[state.step]
        started = state.step_started or now
        if isinstance(step, SetWeight):
            if state.weight > 0 and step.weight > state.weight and not state.passed_at_weight:
                msg = f"waiting for a passing analysis at {state.weight}%"
                return out(replace(state, step_started=started), event, msg)
            moved = step.weight != state.weight
            state = _next(replace(state, weight=step.weight), now)
            if moved:
                state = replace(state, passed_at_weight=False)
                first = "shadow analysis passed; " if event and event[1] == "ShadowPassed" else ""
                event = ("Normal", "RolloutStep", f"{first}canary at {step.weight}%")
            continue
        if isinstance(step, Pause):
            if (now - started).total_seconds() < step.seconds:
                until = format_time(started + dt.timedelta(seconds=step.seconds))
                msg = f"canary at {state.weight}%, pause until {until}"
                return out(replace(state, step_started=started), event, msg)
            state = _next(state, now)
            continue
        if not state.passed_since_step:
            return out(
                replace(state, step_started=started), event, "waiting for a passing analysis"
            )
        state = _next(state, now)
    if state.weight < 100 and not state.passed_at_weight:
        return out(state, event, f"waiting for a passing analysis at {state.weight}% before 100%")
    s = replace(state, phase="Succeeded", weight=100)
    return out(s, ("Normal", "RolloutSucceeded", "canary at 100%: promoted"), "promoted")


def _next(state: State, now: dt.datetime) -> State:
    return replace(state, step=state.step + 1, step_started=now, passed_since_step=False)
