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

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.builders import model_deployment as b
from mlops_operator.clients.kube import FIELD_MANAGER, ApiError, Kube
from mlops_operator.clients.registry import Registry, RegistryError
from mlops_operator.reconcilers import triggers
from mlops_operator.reconcilers.status_write import EventSink, StaleBody, write_status
from mlops_operator.status import conditions as cond
from mlops_operator.status import events
from mlops_operator.status.model_deployment import (
    DeploymentState,
    Resolution,
    StatusInput,
    compute,
    stalled_status,
)

log = logging.getLogger(__name__)

HANDOVER_MANAGER = "mlops-operator-handover"


@dataclass
class AppliedCache:
    """What this process last applied per object, and which objects' children changed since
    (filled by the child watch). In memory only: a restarted operator applies everything once."""

    last: dict[tuple[str, str], str] = field(default_factory=dict)
    dirty: set[tuple[str, str]] = field(default_factory=set)

    def forget(self, namespace: str, name: str) -> None:
        self.last.pop((namespace, name), None)
        self.dirty.discard((namespace, name))


@dataclass(frozen=True)
class Deps:
    kube: Kube
    registry: Registry
    build: b.BuildContext
    event: EventSink
    triggers: triggers.TriggerDeps | None = None
    applied: AppliedCache = field(default_factory=AppliedCache)


@dataclass(frozen=True)
class Outcome:
    """What the caller should do next: requeue after `retry_after` seconds, or wait."""

    retry_after: float | None = None
    reason: str = ""
    backoff: bool = False  # an outage: wait longer each time it repeats


def owner_of(body: dict[str, Any]) -> b.Owner:
    m = body["metadata"]
    return b.Owner(name=m["name"], namespace=m["namespace"], uid=m["uid"])


def served_model(
    deployment: dict[str, Any] | None, status: dict[str, Any]
) -> b.ResolvedModel | None:
    """The version the existing Deployment is pinned to, with what status recorded of it."""
    if not deployment:
        return None
    uri = deployment.get("metadata", {}).get("annotations", {}).get("mlops.dev/model-uri", "")
    parts = uri.removeprefix("models:/").rsplit("/", 1)
    if not uri.startswith("models:/") or len(parts) != 2:
        return None
    rec = status.get("model") or {}
    same = rec.get("name") == parts[0] and rec.get("version") == parts[1]
    return b.ResolvedModel(
        name=parts[0],
        version=parts[1],
        alias=rec.get("alias") if same else None,
        source=rec.get("source") if same else None,
        run_id=rec.get("runId") if same else None,
    )


# container waiting reasons the kubelet gives for a container that cannot start; waiting
# out ContainerCreating / PodInitializing is normal, these need a fix or a retry to clear
FAILING_WAIT_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "ImageInspectError",
        "RegistryUnavailable",
        "SignatureValidationFailed",
        "CreateContainerConfigError",
        "CreateContainerError",
        "PreCreateHookError",
        "PreStartHookError",
        "PostStartHookError",
        "RunContainerError",
    }
)
MESSAGE_LIMIT = 300  # characters of a kubelet message or error line quoted in the status


def _trim(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _last_line(text: str | None) -> str:
    # FallbackToLogsOnError puts the log tail here: its last line is the runtime's verdict
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return _trim(lines[-1]) if lines else ""


def _container_failure(pod: str, kind: str, cs: dict[str, Any]) -> str | None:
    """A message for a container that cannot start or keeps crashing, else None."""
    state, last = cs.get("state") or {}, cs.get("lastState") or {}
    waiting, now_term = state.get("waiting") or {}, state.get("terminated") or {}
    term = now_term or last.get("terminated") or {}
    exit_ = f"{term.get('reason') or 'Terminated'} (exit code {term.get('exitCode', '?')})"
    restarts = cs.get("restartCount") or 0
    if waiting.get("reason") in FAILING_WAIT_REASONS:
        detail = _trim(waiting.get("message") or "")
        what = waiting["reason"] + (f" ({detail})" if detail else "")
        what += f", last exit {exit_}" if term else ""
    elif now_term:
        # exit 0 is a finished init container (a main one that exits 0 turns CrashLoopBackOff)
        if now_term.get("exitCode", 0) == 0:
            return None
        what = f"terminated {exit_}"
    elif restarts > 0 and last.get("terminated") and not cs.get("ready"):
        # running again between crashes: still failing, or the status would flap to Progressing
        what = f"restarted {restarts} time(s), last exit {exit_}"
    else:
        return None
    line = _last_line(term.get("message"))
    return f"pod {pod} {kind} {cs.get('name', '?')}: {what}" + (
        f"; last error: {line}" if line else ""
    )


def _pod_problems(pod: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(scheduler messages, failing-container messages) of one pod."""
    unschedulable = [
        c.get("message", "Unschedulable")
        for c in pod.get("status", {}).get("conditions", []) or []
        if c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
    ]
    st, name = pod.get("status", {}), pod.get("metadata", {}).get("name", "?")
    if st.get("phase") in ("Succeeded", "Failed"):
        return unschedulable, []  # evicted or done: the ReplicaSet has replaced it
    failing = [
        msg
        for key, kind in (
            ("initContainerStatuses", "init container"),
            ("containerStatuses", "container"),
        )
        for cs in st.get(key, []) or []
        if (msg := _container_failure(name, kind, cs))
    ]
    return unschedulable, failing


def deployment_state(dep: dict[str, Any] | None, pods: list[dict[str, Any]]) -> DeploymentState:
    if not dep:
        return DeploymentState()
    spec, st = dep.get("spec", {}), dep.get("status", {})
    tpl_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    version = tpl_labels.get(b.LABEL_VERSION)
    unschedulable: list[str] = []
    failing: list[str] = []
    for p in pods:
        meta = p.get("metadata", {})
        # pods of an older version are being replaced, pods being deleted are going away
        if meta.get("labels", {}).get(b.LABEL_VERSION) != version or meta.get("deletionTimestamp"):
            continue
        sched, fail = _pod_problems(p)
        unschedulable += sched
        failing += fail
    deadline = any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in st.get("conditions", []) or []
    )
    return DeploymentState(
        exists=True,
        generation=dep.get("metadata", {}).get("generation", 0),
        observed_generation=st.get("observedGeneration", 0),
        desired=spec.get("replicas", 1) if spec.get("replicas") is not None else 1,
        replicas=st.get("replicas", 0) or 0,
        updated=st.get("updatedReplicas", 0) or 0,
        ready=st.get("readyReplicas", 0) or 0,
        available=st.get("availableReplicas", 0) or 0,
        serving_version=version,
        progress_deadline_exceeded=deadline,
        unschedulable=unschedulable,
        failing=failing,
    )


def _pods_worth_listing(dep: dict[str, Any] | None) -> bool:
    """Whether a wanted pod is not ready or a rollout is under way: the pods then say why."""
    if not dep:
        return False
    want = dep.get("spec", {}).get("replicas") or 0
    st = dep.get("status", {})
    # maxUnavailable 0 keeps the old pods ready during a rollout: a new pod that cannot
    # start shows only as fewer updated replicas than wanted, or one replica too many
    return (
        (st.get("readyReplicas", 0) or 0) < want
        or (st.get("updatedReplicas", 0) or 0) < want
        or (st.get("replicas", 0) or 0) > want
    )


def _owns_replicas(dep: dict[str, Any]) -> bool:
    for mf in dep.get("metadata", {}).get("managedFields", []) or []:
        ours = mf.get("manager") == FIELD_MANAGER and mf.get("operation") == "Apply"
        if ours and "f:replicas" in (mf.get("fieldsV1", {}).get("f:spec", {}) or {}):
            return True
    return False


async def _apply_children(
    deps: Deps,
    owner: b.Owner,
    spec: ModelDeploymentSpec,
    model: b.ResolvedModel,
    existing_dep: dict[str, Any] | None,
) -> bool:
    """Apply what differs from the last apply; True when anything was written."""
    children = b.get_children(owner, spec, model, deps.build)
    key = (owner.namespace, owner.name)
    fingerprint = hashlib.sha256(
        json.dumps([children.apply, children.absent, owner.uid], sort_keys=True).encode()
    ).hexdigest()
    # A periodic resync with the same desired state and no child event since the last apply
    # has nothing to correct: skip the writes (500 objects would otherwise mean thousands of
    # no-op applies per resync). A child edited or deleted marks its owner dirty.
    dirty = key in deps.applied.dirty
    deps.applied.dirty.discard(key)
    if not dirty and existing_dep and deps.applied.last.get(key) == fingerprint:
        return False
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
    await asyncio.gather(*(deps.kube.apply(obj) for obj in children.apply))
    for api_version, kind in children.absent:
        cur = await deps.kube.get(api_version, kind, owner.namespace, owner.name)
        if cur and _is_ours(cur, owner):
            await deps.kube.delete(
                api_version, kind, owner.namespace, owner.name, uid=cur["metadata"]["uid"]
            )
    deps.applied.last[key] = fingerprint
    return True


def _is_ours(obj: dict[str, Any], owner: b.Owner) -> bool:
    # delete only what this operator created for this very object
    refs = obj.get("metadata", {}).get("ownerReferences", []) or []
    return any(r.get("uid") == owner.uid and r.get("controller") for r in refs)


async def _write_status(
    deps: Deps, body: dict[str, Any], new: dict[str, Any], now: dt.datetime
) -> bool:
    old = body.get("status", {}) or {}
    conditions = new.pop("conditions")
    # only the keys this function owns; status.retraining belongs to the triggers
    mine = {k: v for k, v in old.items() if (k in new or k == "model") and k != "conditions"}
    patch = cond.merge_patch(mine, new)
    written = await write_status(
        deps.kube, deps.event, body, patch, conditions, now, events.MODEL_DEPLOYMENT
    )
    return written is not None


async def reconcile(body: dict[str, Any], deps: Deps, now: dt.datetime) -> Outcome:
    try:
        return await _reconcile(body, deps, now)
    except StaleBody:
        # the watch has not caught up with our own last write yet: go on from the object
        m = body["metadata"]
        fresh = await deps.kube.get(body["apiVersion"], body["kind"], m["namespace"], m["name"])
        if fresh is None or fresh["metadata"].get("uid") != m.get("uid"):
            return Outcome()
    try:
        return await _reconcile(fresh, deps, now)
    except StaleBody:
        return Outcome(retry_after=1.0, reason="status changed meanwhile")


async def _reconcile(body: dict[str, Any], deps: Deps, now: dt.datetime) -> Outcome:
    owner = owner_of(body)
    gen = int(body["metadata"].get("generation", 1))
    status = body.get("status", {}) or {}
    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec", {}))
    except ValidationError as e:
        # the CRD schema refuses most of this; what slips through stalls, it does not crash
        msg = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        await _write_status(deps, body, stalled_status(gen, "InvalidSpec", msg), now)
        return Outcome()

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
        await _write_status(deps, body, stalled_status(gen, "NameConflict", msg), now)
        return Outcome()
    serving = served_model(dep, status)
    # A registry failure never touches what serves: keep applying the pinned version (so
    # edited or deleted children still come back), never roll to nothing.
    target = resolution.model if resolution.ok else serving
    if target is not None:
        try:
            applied = await _apply_children(deps, owner, spec, target, dep)
        except ApiError as e:
            if e.status in (400, 403, 422):
                await _write_status(
                    deps,
                    body,
                    stalled_status(
                        gen, "InvalidSpec", f"the API server refused a child: {e.message}"
                    ),
                    now,
                )
                return Outcome()
            raise
        if applied:
            dep = await deps.kube.get("apps/v1", "Deployment", owner.namespace, owner.name)
    pods: list[dict[str, Any]] = []
    if _pods_worth_listing(dep):
        pods = await deps.kube.list("v1", "Pod", owner.namespace, f"{b.LABEL_MD}={owner.name}")
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
            endpoint=b.endpoint(owner, spec),
            selector=f"{b.LABEL_MD}={owner.name}",
            served=served,
        )
    )
    await _write_status(deps, body, new, now)
    if spec.retraining and deps.triggers:
        st = await triggers.reconcile_triggers(body, owner, spec.retraining, deps.triggers, now)
        await triggers.write_status(deps.kube, body, st)
    if resolution.reason == "RegistryUnavailable":
        return Outcome(retry_after=5.0, reason="registry unavailable", backoff=True)
    return Outcome()
