"""PURE: Kubernetes-style conditions, changed only when something really changed.

status/ builds conditions as the typed api.common.Condition (make); what is stored and
compared is their wire form, the dicts the API server returns (type, status, reason, message,
lastTransitionTime, observedGeneration), so the writer can merge and patch them as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Literal

from mlops_operator.api.common import Condition
from mlops_operator.contract import format_time

WireCondition = dict[str, Any]  # a condition as it is on the wire

__all__ = ["Condition", "WireCondition", "get", "is_true", "make", "merge_all", "set_condition"]


Status = Literal["True", "False", "Unknown"]
_STATUS: dict[bool | str, Status] = {
    True: "True",
    False: "False",
    "True": "True",
    "False": "False",
    "Unknown": "Unknown",
}


def make(type_: str, status: bool | str, reason: str, message: str, generation: int) -> Condition:
    s = _STATUS.get(status)
    if s is None:
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    return Condition(
        type=type_, status=s, reason=reason, message=message, observed_generation=generation
    )


def wire(c: Condition) -> WireCondition:
    """The wire form, without a transition time (set_condition decides it)."""
    out = c.to_wire()
    out.pop("lastTransitionTime", None)
    return out


def set_condition(conditions: list[WireCondition], new: Condition, now: dt.datetime) -> bool:
    """Put `new` into `conditions` in place; True when anything changed.

    lastTransitionTime moves only when the status flips, as the API conventions say; a new
    reason or message alone updates the condition but keeps the time.
    """
    fresh = wire(new)
    for i, old in enumerate(conditions):
        if old.get("type") != fresh["type"]:
            continue
        merged = dict(fresh)
        if old.get("status") == fresh["status"] and old.get("lastTransitionTime"):
            merged["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            merged["lastTransitionTime"] = format_time(now)
        if merged == old:
            return False
        conditions[i] = merged
        return True
    conditions.append({**fresh, "lastTransitionTime": format_time(now)})
    return True


def merge_all(
    old: Iterable[WireCondition], new: Iterable[Condition], now: dt.datetime
) -> tuple[list[WireCondition], bool]:
    """Apply every condition of `new` over `old`; the order of types is kept stable."""
    out = [dict(c) for c in old]
    changed = False
    for c in new:
        changed |= set_condition(out, c, now)
    return out, changed


def get(conditions: Iterable[WireCondition], type_: str) -> WireCondition | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def is_true(conditions: Iterable[WireCondition], type_: str) -> bool:
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
