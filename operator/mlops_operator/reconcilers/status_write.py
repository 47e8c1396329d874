"""Writing a custom resource's status: one merge patch, then Events for what changed.

Both reconcilers write status this way, so that conditions keep their transition times, an
unchanged status costs no API call, and Events follow only a write that happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Protocol

from mlops_operator.clients.kube import Kube
from mlops_operator.status import conditions as cond
from mlops_operator.status import events


class EventSink(Protocol):
    def __call__(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


async def write_status(
    kube: Kube,
    event: EventSink,
    body: dict[str, Any],
    patch: dict[str, Any],
    conditions: list[cond.Condition] | None,
    now: dt.datetime,
    policy: Mapping[str, events.Severity],
) -> dict[str, Any] | None:
    """Merge-patch `patch` and `conditions` (merged over the current ones) into the status
    subresource of `body`; the object as written, or None when nothing would change."""
    old = body.get("status") or {}
    old_conditions = old.get("conditions") or []
    merged = old_conditions
    if conditions is not None:
        merged, changed = cond.merge_all(old_conditions, conditions, now)
        if changed:
            patch = {**patch, "conditions": merged}
    if all(old.get(k) == v for k, v in patch.items()):
        return None
    m = body["metadata"]
    out = await kube.patch_merge(
        body["apiVersion"],
        body["kind"],
        m["namespace"],
        m["name"],
        {"status": patch},
        subresource="status",
    )
    for e in events.transitions(old_conditions, merged, policy):
        event(body, e.type, e.reason, e.message)
    return out
