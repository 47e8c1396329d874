"""Writing a custom resource's status: one merge patch, then Events for what changed.

Both reconcilers write status this way, so that conditions keep their transition times, an
unchanged status costs no API call, and Events follow only a write that happened.

The patch carries the resourceVersion of the body it was computed from. A watch event can
trail the operator's own last write; a status derived from such a body would move
observedGeneration back for a moment and post the same Events again. The API server refuses
that write (409), and the caller reconciles again from the object as it is (StaleBody).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp

from mlops_operator.api.common import ApiModel
from mlops_operator.clients.kube import ApiError, Kube, describe, transient
from mlops_operator.contract import CondType, Reason, Requeue
from mlops_operator.status import conditions as cond
from mlops_operator.status import events

log = logging.getLogger(__name__)


def checked(model: type[ApiModel], patch: dict[str, Any]) -> dict[str, Any]:
    """`patch` as it is, once every key in it is known to `model` (the api/ status type that
    the CRD schema is generated from). A misspelt key raises ValidationError here, in the
    tests, instead of being pruned by the API server without a word. Sub-objects must be
    whole; None (a merge-patch deletion) is accepted for any optional field."""
    model.model_validate(patch, extra="forbid")
    return patch


class StaleBody(Exception):
    """The body a status was computed from is no longer the object's current version."""


class EventSink(Protocol):
    def __call__(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


async def write_status(
    kube: Kube,
    event: EventSink,
    body: dict[str, Any],
    patch: dict[str, Any],
    conditions: list[cond.Condition] | None,  # typed (status/), merged over the stored ones
    now: dt.datetime,
    policy: Mapping[str, events.Severity],
    drop: frozenset[str] = frozenset(),  # condition types to remove (their feature is off)
) -> dict[str, Any] | None:
    """Merge-patch `patch` and `conditions` (merged over the current ones) into the status
    subresource of `body`; the object as written, or None when nothing would change."""
    old = body.get("status") or {}
    old_conditions = old.get("conditions") or []
    merged = old_conditions
    if conditions is not None:
        merged, changed = cond.merge_all(old_conditions, conditions, now)
        kept = [c for c in merged if c.get("type") not in drop]
        if changed or len(kept) != len(merged):
            merged = kept
            patch = {**patch, "conditions": merged}
    if all(old.get(k) == v for k, v in patch.items()):
        return None
    m = body["metadata"]
    request: dict[str, Any] = {"status": patch}
    if m.get("resourceVersion"):
        request["metadata"] = {"resourceVersion": m["resourceVersion"]}
    try:
        out = await kube.patch_merge(
            body["apiVersion"], body["kind"], m["namespace"], m["name"], request, "status"
        )
    except ApiError as e:
        if e.status == 409:
            raise StaleBody(f"{m['namespace']}/{m['name']}: {e.message}") from e
        raise
    for ev in events.transitions(old_conditions, merged, policy):
        event(body, ev.type, ev.reason, ev.message)
    return out


async def report_api_outage(
    kube: Kube,
    event: EventSink,
    body: dict[str, Any],
    now: dt.datetime,
    message: str,
    policy: Mapping[str, events.Severity],
) -> None:
    """Say in status that the API server did not answer (Reconciling=True, ApiUnavailable;
    Ready=False only where nothing said Ready before: what serves keeps serving). The API
    server is what fails, so this write may fail too: the next pass says it again."""
    gen = int(body["metadata"].get("generation", 1))
    text = f"the API server did not take the last change: {message}; retrying"
    conditions = [cond.make(CondType.RECONCILING, True, Reason.API_UNAVAILABLE, text, gen)]
    if cond.get((body.get("status") or {}).get("conditions") or [], CondType.READY) is None:
        conditions.append(cond.make(CondType.READY, False, Reason.API_UNAVAILABLE, text, gen))
    try:
        await write_status(kube, event, body, {"observedGeneration": gen}, conditions, now, policy)
    except (StaleBody, ApiError, TimeoutError, aiohttp.ClientError) as e:
        log.warning(
            "%s/%s: could not write status either: %s",
            body["metadata"]["namespace"],
            body["metadata"]["name"],
            e,
        )


async def after_api_failure(
    e: Exception,
    kube: Kube,
    event: EventSink,
    body: dict[str, Any],
    now: dt.datetime,
    policy: Mapping[str, events.Severity],
) -> Requeue | None:
    """What a pass that raised `e` comes to, when `e` is the API server's doing: nothing for an
    object or namespace that is going away; for an overloaded or unreachable server, a status
    that says so and a retry with backoff (no traceback). Anything else is raised again."""
    if isinstance(e, ApiError) and e.namespace_gone:
        # gone, or going with its namespace (its children go with it). A watch event usually
        # forgets it, but the watch of a deleted namespace can end before the DELETED events
        # of its objects: one that is gone for good is dropped here, or it is reconciled at
        # every resync for ever (1,000 objects: 4,000 requests a resync, all 404)
        m = body["metadata"]
        try:
            now_there = await kube.get(body["apiVersion"], body["kind"], m["namespace"], m["name"])
        except ApiError:
            return None
        if now_there is None or now_there["metadata"].get("uid") != m.get("uid"):
            return Requeue(0.0, "deleted", forget=True)
        return None
    if not transient(e):
        raise e
    m = body["metadata"]
    log.warning("%s/%s: %s; retrying", m["namespace"], m["name"], describe(e))
    await report_api_outage(kube, event, body, now, describe(e), policy)
    return Requeue(2.0, "API server unavailable", backoff=True)
