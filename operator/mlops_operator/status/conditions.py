"""PURE: Kubernetes-style conditions, changed only when something really changed.

Conditions are plain dicts as they appear on the wire (type, status, reason, message,
lastTransitionTime, observedGeneration), so the reconcilers can compare and patch them as is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from mlops_operator.contract import format_time

Condition = dict[str, Any]


def make(type_: str, status: bool | str, reason: str, message: str, generation: int) -> Condition:
    s = status if isinstance(status, str) else ("True" if status else "False")
    return {
        "type": type_,
        "status": s,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def set_condition(conditions: list[Condition], new: Condition, now: dt.datetime) -> bool:
    """Put `new` into `conditions` in place; True when anything changed.

    lastTransitionTime moves only when the status flips, as the API conventions say; a new
    reason or message alone updates the condition but keeps the time.
    """
    for i, old in enumerate(conditions):
        if old.get("type") != new["type"]:
            continue
        merged = dict(new)
        if old.get("status") == new["status"] and old.get("lastTransitionTime"):
            merged["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            merged["lastTransitionTime"] = format_time(now)
        if merged == old:
            return False
        conditions[i] = merged
        return True
    conditions.append({**new, "lastTransitionTime": format_time(now)})
    return True


def merge_all(
    old: Iterable[Condition], new: Iterable[Condition], now: dt.datetime
) -> tuple[list[Condition], bool]:
    """Apply every condition of `new` over `old`; the order of types is kept stable."""
    out = [dict(c) for c in old]
    changed = False
    for c in new:
        changed |= set_condition(out, c, now)
    return out, changed


def get(conditions: Iterable[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def is_true(conditions: Iterable[Condition], type_: str) -> bool:
    c = get(conditions, type_)
    return bool(c and c.get("status") == "True")


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`; {} when equal."""
    patch: dict[str, Any] = {}
    for k, v in new.items():
        o = old.get(k)
        if isinstance(v, dict) and isinstance(o, dict):
            sub = merge_patch(o, v)
            if sub:
                patch[k] = sub
        elif o != v or k not in old:
            patch[k] = v
    for k in old:
        if k not in new:
            patch[k] = None
    return patch
