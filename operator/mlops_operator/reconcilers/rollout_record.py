"""status.rollout and the step machine (rollout_plan) in both directions: the steps a spec
names, the State a record resumes from, the record of an Outcome, and what the conditions say
of it (RolloutView)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.api.rollout import RolloutStatus
from mlops_operator.api.slo import seconds
from mlops_operator.contract import Reason, format_time, parse_time
from mlops_operator.reconcilers import rollout_plan as rp
from mlops_operator.status.model_deployment import RolloutView
from mlops_operator.status.observed import deployment_state

FINISHED = ("Succeeded", "RolledBack", "Aborted")


def steps_of(spec: ModelDeploymentSpec) -> tuple[rp.Step, ...]:
    if spec.rollout is None or not spec.rollout.steps:
        return rp.DEFAULT_STEPS
    out: list[rp.Step] = []
    for s in spec.rollout.steps:
        if s.set_weight is not None:
            out.append(rp.SetWeight(s.set_weight))
        elif s.pause is not None:
            out.append(rp.Pause(seconds(s.pause.duration)))
        else:
            out.append(rp.Analysis())
    return tuple(out)


def settled(dep: dict[str, Any] | None, replicas: int) -> bool:
    """The Deployment runs `replicas` available pods of its current template, and no others."""
    if replicas == 0:
        return True
    return dep is not None and deployment_state(dep, []).settled_at(replicas)


def state_of(rec: RolloutStatus) -> rp.State:
    return rp.State(
        phase=rec.phase,
        step=rec.step,
        weight=rec.weight,
        step_started=parse_time(rec.step_started_at) if rec.step_started_at else None,
        failures=rec.failures,
        passed_since_step=rec.passed_since_step,
        passed_at_weight=rec.passed_at_weight,
        no_data=bool(rec.last_analysis and rec.last_analysis.result == "NoData"),
        shadow=rec.shadow,
    )


def record(rec: RolloutStatus, st: rp.State, message: str, now: dt.datetime) -> RolloutStatus:
    return rec.model_copy(
        update={
            "phase": st.phase,
            "step": st.step,
            "weight": st.weight,
            "step_started_at": format_time(st.step_started) if st.step_started else None,
            "failures": st.failures,
            "passed_since_step": st.passed_since_step,
            "passed_at_weight": st.passed_at_weight,
            "shadow": st.shadow,
            "message": message,
            "finished_at": format_time(now) if st.phase in FINISHED else None,
        }
    )


def view(rec: RolloutStatus) -> RolloutView:
    if rec.phase in ("RolledBack", "Aborted"):
        reason = Reason.ROLLED_BACK if rec.phase == "RolledBack" else Reason.ROLLOUT_ABORTED
        done = "rolled back" if rec.phase == "RolledBack" else "aborted"
        text = f"version {rec.version} {done}, version {rec.stable_version} serves: {rec.message}"
        return RolloutView(rec.stable_version, reason, text, stalled=True)
    reason = Reason.ROLLOUT_PAUSED if rec.phase == "Paused" else Reason.ROLLOUT_PROGRESSING
    text = f"canary version {rec.version} at {rec.weight}%: {rec.message}"
    if rec.shadow:
        text = f"shadow of version {rec.version}, no user traffic yet: {rec.message}"
    return RolloutView(rec.stable_version, reason, text)
