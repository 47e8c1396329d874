"""A ModelDeployment's version change under spec.rollout, one pass at a time.

plan() reads status.rollout, measures the canary's last interval in Prometheus when one is
due, lets the step machine (rollout_plan, pure) say where the rollout is, and returns what the
pass applies: the stable Deployment's version and share, the canary beside it or its removal,
the new status.rollout, the Events, and the registry work of a rollback (after() runs it once
the status that records the rollback is written).

Everything needed to resume lives in status.rollout: a restarted operator goes on from there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

from mlops_operator.analysis import Verdict
from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.api.rollout import ACTION_ANNOTATION, AnalysisSpec, RolloutStatus
from mlops_operator.api.slo import seconds
from mlops_operator.builders import model_deployment as b
from mlops_operator.builders import shadow as sh
from mlops_operator.clients.prometheus import Prometheus
from mlops_operator.clients.registry import Registry
from mlops_operator.contract import (
    Owner,
    Reason,
    ResolvedModel,
    format_time,
    parse_time,
)
from mlops_operator.reconcilers import canary_analysis, rollback
from mlops_operator.reconcilers import rollout_plan as rp
from mlops_operator.reconcilers import rollout_record as rr
from mlops_operator.status.model_deployment import RolloutView
from mlops_operator.status.observed import (
    progress_deadline_exceeded,
    served_model,
)

FINISHED = rr.FINISHED
Event = tuple[str, str, str]  # (type, reason, message)


@dataclass(frozen=True)
class Plan:
    stable: ResolvedModel | None  # the version the stable Deployment is to serve
    canary: b.Canary | None = None  # apply <name>-canary so
    remove_canary: bool = False  # delete <name>-canary (when it is ours)
    shadow: sh.Shadow | None = None  # apply <name>-shadow so
    remove_shadow: bool = False  # delete the <name>-shadow objects (when ours)
    record: RolloutStatus | None = None  # status.rollout to write; None leaves it as it is
    view: RolloutView | None = None  # what the conditions say of the rollout
    events: list[Event] = field(default_factory=list)
    requeue: float | None = None  # seconds until the rollout needs another pass
    # the registry side of a rollback, run after the status recording it is written; it
    # returns status.rollout as it then is
    after: Callable[[], Awaitable[RolloutStatus]] | None = None


@dataclass(frozen=True)
class Inputs:
    owner: Owner
    spec: ModelDeploymentSpec
    status: dict[str, Any]
    annotations: dict[str, str]
    serving: ResolvedModel | None  # what the stable Deployment's pods are pinned to
    target: ResolvedModel | None  # what the registry says to serve (None: unknown now)
    stable_dep: dict[str, Any] | None
    canary_dep: dict[str, Any] | None
    now: dt.datetime
    route_problem: str = ""  # trafficRouting.gatewayAPI's route cannot carry the weight
    shadow_dep: dict[str, Any] | None = None  # <name>-shadow's Deployment


def routed_weight(p: Plan) -> int:
    """The canary's share of a routed Gateway API route: its weight while it runs beside the
    stable pods; 0 otherwise (after a promotion the stable Service selects the new version)."""
    running = p.record is not None and p.record.phase in ("Progressing", "Paused")
    return p.record.weight if running and p.canary is not None and p.record else 0


def _replicas(i: Inputs) -> int:
    if i.spec.autoscaling is None:
        return i.spec.replicas
    # the HPA owns the stable count: the canary's share is of what runs now
    return int(((i.stable_dep or {}).get("spec") or {}).get("replicas") or 1)


def _action(i: Inputs, rec: RolloutStatus | None) -> tuple[rp.Action | None, str | None]:
    """The annotation's action if not acted on yet, and the value to record as handled."""
    value = i.annotations.get(ACTION_ANNOTATION)
    if value not in ("promote", "abort"):
        return None, None
    if rec is not None and rec.handled_action == value:
        return None, value
    return cast(rp.Action, value), value


async def plan(i: Inputs, prom: Prometheus | None, registry: Registry) -> Plan:
    raw = i.status.get("rollout")
    rec = RolloutStatus.model_validate(raw) if raw else None
    s, t = i.serving, i.target
    if t is None and s is not None and rec is not None and rec.phase not in FINISHED:
        held = _hold(i, rec, s)
        if held is not None:
            return held
    if s is None or t is None or t.version == s.version:
        return _steady(i, rec, registry)
    if i.spec.rollout is None or i.spec.rollout.strategy != "Canary" or _replicas(i) == 0:
        # RollingUpdate: the Deployment rolls; a canary left from a Canary spec goes (and an
        # object scaled to zero has nothing to judge a canary by)
        return Plan(
            stable=t,
            remove_canary=i.canary_dep is not None,
            remove_shadow=i.shadow_dep is not None,
            record=_left(rec, t, i),
        )
    if prom is None:
        msg = (
            f"version {t.version} waits: rollout.strategy Canary needs Prometheus to judge the "
            f"canary and the operator has no MLOPS_PROMETHEUS_URL; version {s.version} serves"
        )
        view = RolloutView(s.version, Reason.ROLLOUT_UNAVAILABLE, msg, stalled=True)
        return Plan(stable=s, view=view)
    if i.route_problem:  # what serves, the canary included, stays as it is
        msg = f"version {t.version} waits: {i.route_problem}; version {s.version} serves"
        view = RolloutView(s.version, Reason.ROLLOUT_UNAVAILABLE, msg, stalled=True)
        return Plan(stable=s, view=view)
    if rec is None or rec.version != t.version or rec.superseded:
        shadow = i.spec.rollout.shadow
        rec = RolloutStatus(
            phase="Progressing",
            version=t.version,
            stable_version=s.version,
            steps=len(rr.steps_of(i.spec)),
            shadow=shadow is not None,
            started_at=format_time(i.now),
            handled_action=rec.handled_action if rec else None,
        )
        what = (
            f"shadow of version {t.version} beside {s.version}: {shadow.percent}% of requests "
            "copied"
            if shadow
            else f"canary of version {t.version} beside {s.version}"
        )
        started = ("Normal", "RolloutStarted", what)
        return await _advance(i, rec, prom, registry, [started])
    if rec.phase in ("RolledBack", "Aborted"):
        # not tried again until the alias moves on; a revert that failed is tried again
        after = (
            rollback.registry_work(i.owner, i.spec, rec, registry)
            if rollback.revert_due(rec)
            else None
        )
        return Plan(
            stable=s,
            remove_canary=i.canary_dep is not None,
            remove_shadow=i.shadow_dep is not None,
            record=rec,
            view=rr.view(rec),
            after=after,
        )
    if rec.phase == "Succeeded":  # promoted; the stable Deployment's apply is still to come
        return Plan(
            stable=t,
            canary=_full(i, t),
            remove_shadow=i.shadow_dep is not None,
            record=rec,
            requeue=2.0,
        )
    return await _advance(i, rec, prom, registry, [])


async def _advance(
    i: Inputs, rec: RolloutStatus, prom: Prometheus, registry: Registry, events: list[Event]
) -> Plan:
    assert i.serving is not None and i.target is not None and i.spec.rollout is not None
    ro = i.spec.rollout
    a = ro.analysis or AnalysisSpec()
    steps, replicas = rr.steps_of(i.spec), _replicas(i)
    state = rr.state_of(rec)
    if state.shadow and ro.shadow is None:  # spec.rollout.shadow removed meanwhile: go on
        state = replace(state, shadow=False, step_started=None)
    stable_n, canary_n = rp.split(replicas, state.weight)
    shadow_n = sh.replicas(replicas, ro.shadow.percent) if ro.shadow else 0
    if state.shadow:
        ready = rr.settled(i.shadow_dep, shadow_n)
    else:
        ready = rr.settled(i.canary_dep, canary_n) and (
            i.spec.autoscaling is not None or rr.settled(i.stable_dep, stable_n)
        )
    # an interval is judged once the current step has run that long on settled pods
    interval = seconds(a.interval)
    marks = [state.step_started]
    if rec.last_analysis is not None:
        marks.append(parse_time(rec.last_analysis.time))
    since = max((m for m in marks if m is not None), default=i.now)
    verdict, measured = None, None
    due = ready and (i.now - since).total_seconds() >= interval
    if state.shadow and due and ro.shadow is not None:
        verdict, measured = await canary_analysis.measure_shadow(
            prom, i.owner, i.spec, i.target.version, a, ro.shadow
        )
    elif state.weight > 0 and due:
        verdict, measured = await canary_analysis.measure(
            prom, i.owner, i.spec, i.target.version, a
        )
    elif stuck := progress_deadline_exceeded(i.shadow_dep if state.shadow else i.canary_dep):
        who = "shadow" if state.shadow else "canary"
        verdict = Verdict("Fail", f"the {who}'s pods did not become available: {stuck}")
    action, handled = _action(i, rec)
    out = rp.advance(
        steps,
        state,
        i.now,
        verdict,
        replicas=replicas,
        failure_limit=a.failure_limit,
        paused=ro.paused,
        action=action,
        settled=ready,
        shadow_seconds=seconds(ro.shadow.duration) if ro.shadow else 0,
    )
    new = rr.record(rec, out.state, out.message, i.now).model_copy(
        update={"handled_action": handled}
    )
    if verdict is not None:
        new = new.model_copy(
            update={"last_analysis": canary_analysis.record(verdict, measured, i.now)}
        )
    finished = out.state.phase in ("RolledBack", "Aborted")
    if out.event and not finished:  # a finished one's Event is its Stalled condition's
        events = [*events, out.event]
    if finished:
        after = (
            rollback.registry_work(i.owner, i.spec, new, registry)
            if out.state.phase == "RolledBack"
            else None
        )
        return Plan(
            stable=i.serving,
            remove_canary=True,
            remove_shadow=i.shadow_dep is not None,
            record=new,
            view=rr.view(new),
            events=events,
            after=after,
        )
    gone = i.shadow_dep is not None and not out.state.shadow
    if out.state.phase == "Succeeded":
        # the stable Deployment rolls to the new version while the canary still serves it all
        return Plan(
            stable=i.target,
            canary=_full(i, i.target),
            remove_shadow=gone,
            record=new,
            events=events,
            requeue=2.0,
        )
    if out.state.shadow and ro.shadow is not None:
        # the stable pods copy requests only once the shadow's pods run
        shadow = sh.Shadow(i.target, shadow_n, ro.shadow.percent, mirror=ready)
        return Plan(
            stable=i.serving,
            shadow=shadow,
            remove_canary=i.canary_dep is not None,
            record=new,
            view=rr.view(new),
            events=events,
            requeue=min(interval, 5.0),
        )
    canary = b.Canary(i.target, out.canary_replicas, out.stable_replicas)
    return Plan(
        stable=i.serving,
        canary=canary,
        remove_shadow=gone,
        record=new,
        view=rr.view(new),
        events=events,
        requeue=min(interval, 5.0),
    )


def _hold(i: Inputs, rec: RolloutStatus, stable: ResolvedModel) -> Plan | None:
    """The registry cannot say what to serve mid-rollout: both Deployments stay as they are,
    and nothing is judged or moved until it can."""
    if rec.shadow:
        return _hold_shadow(i, rec, stable)
    model = served_model(i.canary_dep, {})
    if model is None or i.canary_dep is None or i.stable_dep is None:
        return None
    canary_n = int(i.canary_dep["spec"].get("replicas") or 0)
    stable_n = int(i.stable_dep["spec"].get("replicas") or 0)
    return Plan(
        stable=stable,
        canary=b.Canary(model, canary_n, stable_n),
        record=rec,
        view=rr.view(rec),
        requeue=5.0,
    )


def _hold_shadow(i: Inputs, rec: RolloutStatus, stable: ResolvedModel) -> Plan | None:
    model = served_model(i.shadow_dep, {})
    ro = i.spec.rollout
    if model is None or i.shadow_dep is None or ro is None or ro.shadow is None:
        return None
    n = int(i.shadow_dep["spec"].get("replicas") or 0)
    ready = rr.settled(i.shadow_dep, n)
    shadow = sh.Shadow(model, n, ro.shadow.percent, mirror=ready)
    return Plan(stable=stable, shadow=shadow, record=rec, view=rr.view(rec), requeue=5.0)


def _full(i: Inputs, model: ResolvedModel) -> b.Canary:
    n = _replicas(i)
    return b.Canary(model, n, n)


def _steady(i: Inputs, rec: RolloutStatus | None, registry: Registry) -> Plan:
    """Nothing to roll: the stable Deployment serves what the registry says (or, when it
    cannot say, what it serves). After a promotion the canary goes once the stable pods
    serve the promoted version."""
    stable = i.target or i.serving
    if stable is None:
        return Plan(stable=None)
    rec = _left(rec, i.target, i)
    promoted = rec is not None and rec.phase == "Succeeded" and rec.version == stable.version
    handing_over = i.canary_dep is not None and promoted
    if handing_over and not rr.settled(i.stable_dep, _replicas(i)):
        return Plan(stable=stable, canary=_full(i, stable), record=rec, requeue=2.0)
    # a rollback stays reported (Stalled) until another rollout begins, alias reverted or not
    canary = i.spec.rollout is not None and i.spec.rollout.strategy == "Canary"
    failed = (
        canary
        and rec is not None
        and rec.phase == "RolledBack"
        and rec.stable_version == stable.version
    )
    view = rr.view(rec) if failed and rec is not None else None
    after = (
        rollback.registry_work(i.owner, i.spec, rec, registry)
        if failed and rec and rollback.revert_due(rec)
        else None
    )
    return Plan(
        stable=stable,
        remove_canary=i.canary_dep is not None,
        remove_shadow=i.shadow_dep is not None,
        record=rec,
        view=view,
        after=after,
    )


def _left(
    rec: RolloutStatus | None, target: ResolvedModel | None, i: Inputs
) -> RolloutStatus | None:
    """status.rollout once the target is no longer its version: a rollout in progress ends
    (Aborted), a finished one may be tried again when the alias comes back to it."""
    if rec is None or target is None or rec.version == target.version or rec.superseded:
        return rec
    if rec.phase in FINISHED:
        return rec.model_copy(update={"superseded": True})
    return rec.model_copy(
        update={
            "phase": "Aborted",
            "superseded": True,
            "shadow": False,
            "weight": 0,
            "message": f"the model moved to version {target.version} during the rollout",
            "finished_at": format_time(i.now),
        }
    )
