"""Reconcile one ModelDeployment: resolve the model, apply the children, write the status.

Level-based: the same function runs for a new object, a changed one, a changed or deleted
child, and the periodic resync. It reads what exists, builds what should exist (builders/,
pure), applies the difference and derives the status (status/, pure).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mlops_operator.api.model_deployment import ModelDeploymentSpec, ModelDeploymentStatus
from mlops_operator.builders import model_deployment as b
from mlops_operator.builders import shadow as sh
from mlops_operator.builders import slo
from mlops_operator.builders.meta import canary_name, endpoint
from mlops_operator.clients.kube import Kube
from mlops_operator.clients.prometheus import Prometheus
from mlops_operator.clients.registry import Registry, RegistryError
from mlops_operator.contract import (
    LABEL_MODEL_DEPLOYMENT,
    PROMETHEUS_RULE_API_VERSION,
    PROMETHEUS_RULE_KIND,
    CondType,
    Owner,
    Reason,
    Requeue,
)
from mlops_operator.reconcilers import children, rollout, routing, triggers
from mlops_operator.reconcilers.status_write import (
    EventSink,
    StaleBody,
    after_api_failure,
    write_status,
)
from mlops_operator.status import conditions as cond
from mlops_operator.status import events
from mlops_operator.status.model_deployment import (
    Resolution,
    SloRules,
    StatusInput,
    compute,
    stalled_status,
)
from mlops_operator.status.observed import deployment_state, pods_worth_listing, served_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    kube: Kube
    registry: Registry
    build: b.BuildContext
    event: EventSink
    triggers: triggers.TriggerDeps | None = None
    prometheus: Prometheus | None = None  # a canary's analysis; None: Canary cannot run
    applied: children.AppliedCache = field(default_factory=children.AppliedCache)


def _slo_rules(spec: ModelDeploymentSpec, rule: dict[str, Any] | None) -> SloRules | None:
    if spec.slo is None:
        return None
    if rule is None:
        return SloRules(served=False)
    alerts = sum(len(g["rules"]) for g in rule["spec"]["groups"])
    return SloRules(served=True, name=rule["metadata"]["name"], alerts=alerts)


def owner_of(body: dict[str, Any]) -> Owner:
    m = body["metadata"]
    return Owner(name=m["name"], namespace=m["namespace"], uid=m["uid"])


def _spec_problem(spec: ModelDeploymentSpec) -> tuple[str, str] | None:
    schedule = spec.retraining.schedule if spec.retraining else None
    if schedule and (problem := triggers.schedule_problem(schedule)):
        return Reason.INVALID_SCHEDULE, f"spec.retraining.schedule: {problem}"
    return None


async def _write_status(
    deps: Deps, body: dict[str, Any], status: ModelDeploymentStatus, now: dt.datetime
) -> dict[str, Any] | None:
    old = body.get("status", {}) or {}
    new = status.to_wire()
    new.pop("conditions", None)
    # only the keys a pass writes: status.retraining (status.rollout) stays as it is when the
    # triggers did not run (the pass has no rollout); a key it writes is written whole
    mine = {k: v for k, v in old.items() if (k in new or k == "model") and k != "conditions"}
    patch = cond.merge_patch(mine, new)
    # a condition whose feature is off goes (SLORules without spec.slo)
    types = {c.type for c in status.conditions or []}
    drop = frozenset({CondType.SLO_RULES} - types) if status.conditions else frozenset()
    return await write_status(
        deps.kube, deps.event, body, patch, status.conditions, now, events.MODEL_DEPLOYMENT, drop
    )


async def _current(deps: Deps, body: dict[str, Any]) -> dict[str, Any] | None:
    """The object as the API server has it now; None when it is gone (or is another one)."""
    m = body["metadata"]
    fresh = await deps.kube.get(body["apiVersion"], body["kind"], m["namespace"], m["name"])
    if fresh is None or fresh["metadata"].get("uid") != m.get("uid"):
        return None
    return fresh


async def reconcile(body: dict[str, Any], deps: Deps, now: dt.datetime) -> Requeue | None:
    try:
        return await _reconcile_current(body, deps, now)
    except Exception as e:
        return await after_api_failure(e, deps.kube, deps.event, body, now, events.MODEL_DEPLOYMENT)


async def _reconcile_current(body: dict[str, Any], deps: Deps, now: dt.datetime) -> Requeue | None:
    spec = body.get("spec") or {}
    if (spec.get("rollout") or {}).get("strategy") == "Canary" or spec.get("retraining"):
        # A watch event can trail our own last status write. A canary planned from such a body
        # would apply the pods of a step already left (0 canary pods, all the stable ones) before
        # its status write is refused as stale; a trigger would see a firing it has just made
        # as still due (and, with historyLimit 0, make it again once the first job is pruned).
        # Plan from the object as it is.
        current = await _current(deps, body)
        if current is None:
            return None
        body = current
    try:
        return await _reconcile(body, deps, now)
    except StaleBody:
        # the watch has not caught up with our own last write yet: go on from the object
        fresh = await _current(deps, body)
        if fresh is None:
            return None
    try:
        return await _reconcile(fresh, deps, now)
    except StaleBody:
        return Requeue(1.0, "status changed meanwhile")


async def _reconcile(body: dict[str, Any], deps: Deps, now: dt.datetime) -> Requeue | None:
    owner = owner_of(body)
    gen = int(body["metadata"].get("generation", 1))
    status = body.get("status", {}) or {}
    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec", {}))
    except ValidationError as e:
        # the CRD schema refuses most of this; what slips through stalls, it does not crash
        msg = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        await _write_status(deps, body, stalled_status(gen, Reason.INVALID_SPEC, msg), now)
        return None

    try:
        resolved = await deps.registry.resolve(
            spec.model.name, spec.model.alias, spec.model.version
        )
        resolution = Resolution(resolved)
    except RegistryError as e:
        resolution = Resolution(None, e.reason, e.message)

    dep = await deps.kube.get("apps/v1", "Deployment", owner.namespace, owner.name)
    if dep and not children.is_ours(dep, owner):
        msg = f"a Deployment named {owner.name} exists and is not managed by this object"
        await _write_status(deps, body, stalled_status(gen, Reason.NAME_CONFLICT, msg), now)
        return None
    serving = served_model(dep, status)
    canary_dep = None
    if (spec.rollout and spec.rollout.strategy == "Canary") or status.get("rollout"):
        canary_dep = await deps.kube.get(
            "apps/v1", "Deployment", owner.namespace, canary_name(owner.name)
        )
        if canary_dep and not children.is_ours(canary_dep, owner):
            msg = f"a Deployment named {canary_name(owner.name)} exists and is not ours"
            await _write_status(deps, body, stalled_status(gen, Reason.NAME_CONFLICT, msg), now)
            return None
    shadow_dep = None
    if (spec.rollout and spec.rollout.shadow) or (status.get("rollout") or {}).get("shadow"):
        shadow_dep = await deps.kube.get(
            "apps/v1", "Deployment", owner.namespace, sh.shadow_name(owner.name)
        )
        if shadow_dep and not children.is_ours(shadow_dep, owner):
            msg = f"a Deployment named {sh.shadow_name(owner.name)} exists and is not ours"
            await _write_status(deps, body, stalled_status(gen, Reason.NAME_CONFLICT, msg), now)
            return None
    route = await routing.read(deps.kube, owner, spec)
    # A registry failure never touches what serves: keep applying the pinned version (so
    # edited or deleted children still come back), never roll to nothing. A canary says
    # which version the stable Deployment keeps meanwhile.
    ro = await rollout.plan(
        rollout.Inputs(
            owner=owner,
            spec=spec,
            status=status,
            annotations=body["metadata"].get("annotations") or {},
            serving=serving,
            target=resolution.model if resolution.ok else None,
            stable_dep=dep,
            canary_dep=canary_dep,
            now=now,
            route_problem=route.problem if route else "",
            shadow_dep=shadow_dep,
        ),
        deps.prometheus,
        deps.registry,
    )
    target = ro.stable
    # ask only when there are alerts to write, or a rule written before to remove
    had_rules = any(c.get("type") == CondType.SLO_RULES for c in status.get("conditions") or [])
    rules_served = (spec.slo is not None or had_rules) and await deps.kube.serves(
        PROMETHEUS_RULE_API_VERSION, PROMETHEUS_RULE_KIND
    )
    rule = slo.prometheus_rule(owner, spec.slo) if spec.slo and rules_served else None
    if target is not None:
        try:
            applied = await children.apply_children(
                deps.kube,
                deps.build,
                deps.applied,
                owner,
                spec,
                target,
                dep,
                rules_served,
                rule,
                ro,
                route is not None,
            )
        except children.ChildRefused as e:
            # the next attempt comes with the next generation (or version): no retry loop
            await _write_status(deps, body, stalled_status(gen, e.reason, e.message), now)
            return None
        if applied is not None:
            dep = applied
        if route is not None:
            await routing.write_weight(deps.kube, owner, route, rollout.routed_weight(ro))
    pods: list[dict[str, Any]] = []
    if pods_worth_listing(dep):
        pods = await deps.kube.list(
            "v1", "Pod", owner.namespace, f"{LABEL_MODEL_DEPLOYMENT}={owner.name}"
        )
    state = deployment_state(dep, pods)
    served = (
        target if target and state.serving_version == target.version else served_model(dep, status)
    )
    new = compute(
        StatusInput(
            generation=gen,
            name=owner.name,
            alias=spec.model.alias,
            resolution=resolution,
            deployment=state,
            endpoint=endpoint(owner, spec),
            selector=f"{LABEL_MODEL_DEPLOYMENT}={owner.name}",
            served=served,
            slo=_slo_rules(spec, rule) if target is not None else None,
            rollout=ro.view,
            spec_problem=_spec_problem(spec),
        )
    )
    if ro.record is not None:
        new = new.model_copy(update={"rollout": ro.record})
    # one guarded status write per pass: the triggers return their part of the status
    trigger_error: Exception | None = None
    if spec.retraining and deps.triggers:
        try:
            retraining = await triggers.reconcile_triggers(
                body, owner, spec.retraining, deps.triggers, now, spec.slo
            )
            new = new.model_copy(update={"retraining": retraining})
        except Exception as e:  # what serves is reported all the same; the queue retries
            trigger_error = e
    written = await _write_status(deps, body, new, now)
    if written is not None:
        for type_, reason, message in ro.events:
            deps.event(body, type_, reason, message)
    if ro.after is not None:  # a rollback's registry work, once its record is written
        done = await ro.after()
        await _write_status(deps, written or body, new.model_copy(update={"rollout": done}), now)
        if done.alias_reverted:
            moved = f"alias {spec.model.alias} moved back from version {done.version} to "
            deps.event(body, "Normal", Reason.ALIAS_REVERTED, moved + done.stable_version)
    if trigger_error is not None:
        raise trigger_error
    if resolution.reason == Reason.REGISTRY_UNAVAILABLE:
        return Requeue(5.0, "registry unavailable", backoff=True)
    if ro.requeue is not None:
        return Requeue(ro.requeue, "rollout")
    if spec.retraining and spec.retraining.schedule and deps.triggers:
        # woken for the next firing itself, not the first resync after it (the queue never
        # waits longer than its resync period)
        due = triggers.seconds_until_due(spec.retraining.schedule, now)
        if due is not None:
            return Requeue(due, "next scheduled firing")
    return None
