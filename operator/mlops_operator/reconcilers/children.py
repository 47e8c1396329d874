"""A ModelDeployment's children: what to apply and to remove, applied only when it differs from
the last apply, and the API server's refusal of a child remembered (no retry loop)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.builders import model_deployment as b
from mlops_operator.builders import shadow as sh
from mlops_operator.builders import traffic
from mlops_operator.builders.meta import canary_name, serving_port
from mlops_operator.clients.kube import ApiError, Kube, describe
from mlops_operator.contract import (
    HANDOVER_MANAGER,
    MANAGER,
    PROMETHEUS_RULE_API_VERSION,
    PROMETHEUS_RULE_KIND,
    Owner,
    Reason,
    ResolvedModel,
)
from mlops_operator.reconcilers import rollout


@dataclass(frozen=True)
class Written:
    """A child as this process's last apply left it: enough to tell, from a watch event of
    it, whether someone else changed it since (status written by its controller is not)."""

    resource_version: str
    generation: int | None  # None for kinds whose spec changes do not bump it
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, answered: dict[str, Any], sent: dict[str, Any] | None = None) -> Written:
        """From the API server's answer to an apply, with the labels and annotations of what
        was sent (others' keys in the answer, such as the Deployment's revision, are theirs)."""
        m = answered.get("metadata") or {}
        mine = (sent or answered).get("metadata") or {}
        gen = m.get("generation")
        return cls(
            str(m.get("resourceVersion") or ""),
            int(gen) if gen else None,
            tuple(sorted((mine.get("labels") or {}).items())),
            tuple(sorted((mine.get("annotations") or {}).items())),
        )

    def changed_in(self, event_type: str | None, obj: dict[str, Any]) -> bool:
        """True when `obj` (a watch event of this child) is not what was written: deleted, its
        spec changed (a new generation; any change for kinds without one), or a label or
        annotation this operator sets edited away. Its controller's status writes and keys
        others add are not changes to correct."""
        if event_type == "DELETED":
            return True
        m = obj.get("metadata") or {}
        if str(m.get("resourceVersion") or "") == self.resource_version:
            return False  # this process's own write coming back
        gen = m.get("generation")
        if self.generation is None or gen is None:
            return True
        if int(gen) != self.generation:
            return True
        labels, annotations = m.get("labels") or {}, m.get("annotations") or {}
        return any(labels.get(k) != v for k, v in self.labels) or any(
            annotations.get(k) != v for k, v in self.annotations
        )


@dataclass
class AppliedCache:
    """What this process last applied per object, and which objects' children changed since
    (filled by the child watch). In memory only: a restarted operator applies everything once."""

    last: dict[tuple[str, str], str] = field(default_factory=dict)
    dirty: set[tuple[str, str]] = field(default_factory=set)
    # children the API server refused: (fingerprint, reason, message). The same children are
    # not sent again (the answer would be the same); a new generation or version is.
    refused: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)
    # per object, its children as last written: (kind, name) -> Written
    written: dict[tuple[str, str], dict[tuple[str, str], Written]] = field(default_factory=dict)

    def forget(self, namespace: str, name: str) -> None:
        self.last.pop((namespace, name), None)
        self.dirty.discard((namespace, name))
        self.refused.pop((namespace, name), None)
        self.written.pop((namespace, name), None)

    def record(
        self, namespace: str, owner: str, applied: list[tuple[dict[str, Any], dict[str, Any]]]
    ) -> None:
        """`applied`: (what was sent, the API server's answer) per child."""
        mine = self.written.setdefault((namespace, owner), {})
        for sent, answered in applied:
            key = (str(answered.get("kind")), answered["metadata"]["name"])
            mine[key] = Written.of(answered, sent)

    def removed(self, namespace: str, owner: str, kind: str, name: str) -> None:
        self.written.get((namespace, owner), {}).pop((kind, name), None)

    def child_seen(
        self, namespace: str, owner: str, event_type: str | None, obj: dict[str, Any]
    ) -> None:
        """A watch event of a child: its owner's children are applied again on the next pass
        only when someone else changed this one. A child this process has no record of (one
        it removed, or wrote in an earlier life, when everything is applied once anyway) is
        not a change to correct."""
        w = self.written.get((namespace, owner), {}).get(
            (str(obj.get("kind")), (obj.get("metadata") or {}).get("name", ""))
        )
        if w is not None and w.changed_in(event_type, obj):
            self.dirty.add((namespace, owner))


class ChildRefused(Exception):
    """The API server refused a child for what it is (invalid, forbidden): a spec problem."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def owns_replicas(dep: dict[str, Any]) -> bool:
    for mf in dep.get("metadata", {}).get("managedFields", []) or []:
        ours = mf.get("manager") == MANAGER and mf.get("operation") == "Apply"
        if ours and "f:replicas" in (mf.get("fieldsV1", {}).get("f:spec", {}) or {}):
            return True
    return False


async def apply_children(
    kube: Kube,
    build: b.BuildContext,
    cache: AppliedCache,
    owner: Owner,
    spec: ModelDeploymentSpec,
    model: ResolvedModel,
    existing_dep: dict[str, Any] | None,
    rules_served: bool,
    rule: dict[str, Any] | None,
    ro: rollout.Plan,
    routed: bool,
) -> dict[str, Any] | None:
    """Apply what differs from the last apply. Returns the stable Deployment as the API
    server answered the apply (no need to read it again), or None when nothing was written."""
    children = b.get_children(owner, spec, model, build, ro.canary, ro.shadow)
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
    refused = cache.refused.get(key)
    if refused is not None and refused[0] == fingerprint:
        raise ChildRefused(refused[1], refused[2])  # the same children: the same answer
    # A periodic resync with the same desired state and no child event since the last apply
    # has nothing to correct: skip the writes (500 objects would otherwise mean thousands of
    # no-op applies per resync). A child edited or deleted marks its owner dirty.
    dirty = key in cache.dirty
    cache.dirty.discard(key)
    if not dirty and existing_dep and cache.last.get(key) == fingerprint:
        return None
    try:
        applied = await _write_children(kube, owner, spec, existing_dep, children, ro, cache)
    except ApiError as e:
        if not (e.invalid or e.forbidden):
            raise
        reason = Reason.FORBIDDEN if e.forbidden else Reason.INVALID_SPEC
        message = f"the API server refused a child: {describe(e)}"
        cache.refused[key] = (fingerprint, reason, message)
        raise ChildRefused(reason, message) from None
    cache.refused.pop(key, None)
    cache.last[key] = fingerprint
    return next(
        o for o in applied if o.get("kind") == "Deployment" and o["metadata"]["name"] == owner.name
    )


async def _write_children(
    kube: Kube,
    owner: Owner,
    spec: ModelDeploymentSpec,
    existing_dep: dict[str, Any] | None,
    children: b.Children,
    ro: rollout.Plan,
    cache: AppliedCache,
) -> list[dict[str, Any]]:
    """Write the children; returns them as the API server answered."""
    if spec.autoscaling and existing_dep and owns_replicas(existing_dep):
        # Server-side apply drops a field its manager stops sending (replicas would fall
        # back to 1). Hand it over first: a second manager co-owns the current value, so
        # when we stop applying it, it stays until the HPA takes it.
        await kube.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": owner.name, "namespace": owner.namespace},
                "spec": {"replicas": existing_dep["spec"].get("replicas", 1)},
            },
            manager=HANDOVER_MANAGER,
        )
    # independent objects: one round trip for all of them, not one after another
    sent = list(children.apply)
    applied = list(await asyncio.gather(*(kube.apply(obj) for obj in sent)))
    if ro.shadow is not None and ro.shadow.mirror:
        # the stable pods learn where to copy: the shadow Service's address, known once applied
        name = sh.shadow_name(owner.name)
        svc = next(
            o for o in applied if o.get("kind") == "Service" and o["metadata"]["name"] == name
        )
        ip = (svc.get("spec") or {}).get("clusterIP") or ""
        config = sh.shadow_config(owner, ip, serving_port(spec), ro.shadow)
        applied.append(await kube.apply(config))
        sent.append(config)
    cache.record(owner.namespace, owner.name, list(zip(sent, applied, strict=True)))
    for api_version, kind, name in children.absent:
        cache.removed(owner.namespace, owner.name, kind, name)
        cur = await kube.get(api_version, kind, owner.namespace, name)
        if cur and is_ours(cur, owner):
            await kube.delete(api_version, kind, owner.namespace, name, uid=cur["metadata"]["uid"])
    return applied


def is_ours(obj: dict[str, Any], owner: Owner) -> bool:
    # delete only what this operator created for this very object
    refs = obj.get("metadata", {}).get("ownerReferences", []) or []
    return any(r.get("uid") == owner.uid and r.get("controller") for r in refs)
