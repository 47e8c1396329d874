"""Reconcile one ModelDeployment: resolve the model, apply the children, write the status.

Level-based: the same function runs for a new object, a changed one, a changed or deleted
child, and the periodic resync. It reads what exists, builds what should exist (builders/,
pure), applies the difference and derives the status (status/, pure).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mlops_operator.api.model_deployment import ModelDeploymentSpec, ModelDeploymentStatus
from mlops_operator.builders import model_deployment as b
from mlops_operator.builders import shadow as sh
from mlops_operator.builders import slo, traffic
from mlops_operator.builders.meta import canary_name, endpoint, serving_port
from mlops_operator.clients.kube import ApiError, Kube, describe, transient
from mlops_operator.clients.prometheus import Prometheus
from mlops_operator.clients.registry import Registry, RegistryError
from mlops_operator.contract import (
    HANDOVER_MANAGER,
    LABEL_MODEL_DEPLOYMENT,
    MANAGER,
    PROMETHEUS_RULE_API_VERSION,
    PROMETHEUS_RULE_KIND,
    CondType,
    Owner,
    Reason,
    Requeue,
    ResolvedModel,
)
from mlops_operator.reconcilers import rollout, routing, triggers
from mlops_operator.reconcilers.status_write import (
    EventSink,
    StaleBody,
    report_api_outage,
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


@dataclass
class AppliedCache:
    """What this process last applied per object, and which objects' children changed since
    (filled by the child watch). In memory only: a restarted operator applies everything once."""

    last: dict[tuple[str, str], str] = field(default_factory=dict)
    dirty: set[tuple[str, str]] = field(default_factory=set)
    # children the API server refused: (fingerprint, reason, message). The same children are
    # not sent again (the answer would be the same); a new generation or version is.
    refused: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)

    def forget(self, namespace: str, name: str) -> None:
        self.last.pop((namespace, name), None)
        self.dirty.discard((namespace, name))
        self.refused.pop((namespace, name), None)


class ChildRefused(Exception):
    """The API server refused a child for what it is (invalid, forbidden): a spec problem."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Deps:
    kube: Kube
    registry: Registry
    build: b.BuildContext
    event: EventSink
    triggers: triggers.TriggerDeps | None = None
    prometheus: Prometheus | None = None  # a canary's analysis; None: Canary cannot run
    applied: AppliedCache = field(default_factory=AppliedCache)


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


def _owns_replicas(dep: dict[str, Any]) -> bool:
    for mf in dep.get("metadata", {}).get("managedFields", []) or []:
        ours = mf.get("manager") == MANAGER and mf.get("operation") == "Apply"
        if ours and "f:replicas" in (mf.get("fieldsV1", {}).get("f:spec", {}) or {}):
            return True
    return False


async def _apply_children(
    deps: Deps,
    owner: Owner,
    spec: ModelDeploymentSpec,
    model: ResolvedModel,
    existing_dep: dict[str, Any] | None,
    rules_served: bool,
    rule: dict[str, Any] | None,
    ro: rollout.Plan,
    routed: bool,
) -> bool:
    """Apply what differs from the last apply; True when anything was written."""
    children = b.get_children(owner, spec, model, deps.build, ro.canary, ro.shadow)
    if routed:  # what trafficRouting.gatewayAPI's route weighs
        children.apply.extend(traffic.services(owner, spec, model.version))
    # spec.slo's alerts; where the kind is not served there is nothing to write or remove
    if rule is not None:
        children.apply.append(rule)
    elif rules_served:
        children.absent.append((PROMETHEUS_RULE_API_VERSION, PROMETHEUS_RULE_KIND, owner.name))
    if ro.remove_canary:
        children.absent.append(("apps/v1", "Deployment", canary_name(owner.name)))
    if ro.remove_shadow:
        children.absent.extend(sh.children_names(owner))
    elif ro.shadow is not None and not ro.shadow.mirror:
        # no copies before the shadow's pods run: they would count as its errors
        children.absent.append(sh.children_names(owner)[0])
    key = (owner.namespace, owner.name)
    fingerprint = hashlib.sha256(
        json.dumps([children.apply, children.absent, owner.uid], sort_keys=True).encode()
    ).hexdigest()
    refused = deps.applied.refused.get(key)
    if refused is not None and refused[0] == fingerprint:
        raise ChildRefused(refused[1], refused[2])  # the same children: the same answer
    # A periodic resync with the same desired state and no child event since the last apply
    # has nothing to correct: skip the writes (500 objects would otherwise mean thousands of
    # no-op applies per resync). A child edited or deleted marks its owner dirty.
    dirty = key in deps.applied.dirty
    deps.applied.dirty.discard(key)
    if not dirty and existing_dep and deps.applied.last.get(key) == fingerprint:
        return False
    try:
        await _write_children(deps, owner, spec, existing_dep, children, ro)
    except ApiError as e:
        if not (e.invalid or e.forbidden):
            raise
        reason = Reason.FORBIDDEN if e.forbidden else Reason.INVALID_SPEC
        message = f"the API server refused a child: {describe(e)}"
        deps.applied.refused[key] = (fingerprint, reason, message)
        raise ChildRefused(reason, message) from None
    deps.applied.refused.pop(key, None)
    deps.applied.last[key] = fingerprint
    return True


async def _write_children(
    deps: Deps,
    owner: Owner,
    spec: ModelDeploymentSpec,
    existing_dep: dict[str, Any] | None,
    children: b.Children,
    ro: rollout.Plan,
) -> None:
    if spec.autoscaling and existing_dep and _owns_replicas(existing_dep):
        # Server-side apply drops a field its manager stops sending (replicas would fall
        # back to 1). Hand it over first: a second manager co-owns the current value, so
        # when we stop applying it, it stays until the HPA takes it.
        await deps.kube.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": owner.name, "namespace": owner.namespace},
                "spec": {"replicas": existing_dep["spec"].get("replicas", 1)},
            },
            manager=HANDOVER_MANAGER,
        )
    # independent objects: one round trip for all of them, not one after another
    applied = await asyncio.gather(*(deps.kube.apply(obj) for obj in children.apply))
    if ro.shadow is not None and ro.shadow.mirror:
        # the stable pods learn where to copy: the shadow Service's address, known once applied
        name = sh.shadow_name(owner.name)
        svc = next(
            o for o in applied if o.get("kind") == "Service" and o["metadata"]["name"] == name
        )
        ip = (svc.get("spec") or {}).get("clusterIP") or ""
        config = sh.shadow_config(owner, ip, serving_port(spec), ro.shadow)
        await deps.kube.apply(config)
    for api_version, kind, name in children.absent:
        cur = await deps.kube.get(api_version, kind, owner.namespace, name)
        if cur and _is_ours(cur, owner):
            await deps.kube.delete(
                api_version, kind, owner.namespace, name, uid=cur["metadata"]["uid"]
            )


def _is_ours(obj: dict[str, Any], owner: Owner) -> bool:
    # delete only what this operator created for this very object
    refs = obj.get("metadata", {}).get("ownerReferences", []) or []
    return any(r.get("uid") == owner.uid and r.get("controller") for r in refs)


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
        if isinstance(e, ApiError) and e.namespace_gone:
            return None  # its namespace is going: so is the object, and its children with it
        if not transient(e):
            raise
        # the API server is overloaded or away: say so (if it takes the write) and retry
        m = body["metadata"]
        log.warning("%s/%s: %s; retrying", m["namespace"], m["name"], describe(e))
        await report_api_outage(
            deps.kube, deps.event, body, now, describe(e), events.MODEL_DEPLOYMENT
        )
        return Requeue(2.0, "API server unavailable", backoff=True)


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
    if dep and not _is_ours(dep, owner):
        msg = f"a Deployment named {owner.name} exists and is not managed by this object"
        await _write_status(deps, body, stalled_status(gen, Reason.NAME_CONFLICT, msg), now)
        return None
    serving = served_model(dep, status)
    canary_dep = None
    if (spec.rollout and spec.rollout.strategy == "Canary") or status.get("rollout"):
        canary_dep = await deps.kube.get(
            "apps/v1", "Deployment", owner.namespace, canary_name(owner.name)
        )
        if canary_dep and not _is_ours(canary_dep, owner):
            msg = f"a Deployment named {canary_name(owner.name)} exists and is not ours"
            await _write_status(deps, body, stalled_status(gen, Reason.NAME_CONFLICT, msg), now)
            return None
    shadow_dep = None
    if (spec.rollout and spec.rollout.shadow) or (status.get("rollout") or {}).get("shadow"):
        shadow_dep = await deps.kube.get(
            "apps/v1", "Deployment", owner.namespace, sh.shadow_name(owner.name)
        )
        if shadow_dep and not _is_ours(shadow_dep, owner):
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
            applied = await _apply_children(
                deps, owner, spec, target, dep, rules_served, rule, ro, route is not None
            )
        except ChildRefused as e:
            # the next attempt comes with the next generation (or version): no retry loop
            await _write_status(deps, body, stalled_status(gen, e.reason, e.message), now)
            return None
        if applied:
            dep = await deps.kube.get("apps/v1", "Deployment", owner.namespace, owner.name)
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
                body, owner, spec.retraining, deps.triggers, now
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
