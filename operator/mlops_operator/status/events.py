"""PURE: which condition changes become Kubernetes Events.

An Event is for what a person wants to read in `kubectl describe`: a condition whose status or
reason changed, filtered by a per-kind policy (an ordinary rollout, or a Stalled=False that is
only the quiet default, says nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from mlops_operator.contract import CondType, Reason
from mlops_operator.status import conditions as cond

NORMAL = "Normal"
WARNING = "Warning"

# the Event type for a changed condition, or None to stay quiet
Severity = Callable[[cond.WireCondition], str | None]


class Event(NamedTuple):
    type: str
    reason: str
    message: str


def transitions(
    old: Iterable[cond.WireCondition],
    new: Iterable[cond.WireCondition],
    policy: Mapping[str, Severity],
) -> list[Event]:
    """The Events for the conditions of `policy` whose (status, reason) differ in `new`."""
    old, new = list(old), list(new)
    out = []
    for type_, severity in policy.items():
        o, n = cond.get(old, type_), cond.get(new, type_)
        if not n or (o and (o.get("status"), o.get("reason")) == (n["status"], n["reason"])):
            continue
        kind = severity(n)
        if kind is not None:
            reason = n.get("reason") or type_
            out.append(Event(kind, reason, n.get("message") or f"{type_}={n['status']}"))
    return out


def _true(c: cond.WireCondition) -> bool:
    return c.get("status") == "True"


# Ready=False for these reasons is a rollout in progress (see status.model_deployment)
_ROLLING = (Reason.PROGRESSING, Reason.RESOLVED)

MODEL_DEPLOYMENT: Mapping[str, Severity] = {
    # losing Ready to an ordinary rollout is not news: Reconciling says so
    CondType.READY: lambda c: (
        NORMAL if _true(c) else None if c.get("reason") in _ROLLING else WARNING
    ),
    CondType.STALLED: lambda c: WARNING if _true(c) else None,
    CondType.MODEL_RESOLVED: lambda c: NORMAL if _true(c) else WARNING,
    CondType.SLO_RULES: lambda c: NORMAL if _true(c) else WARNING,
}

RETRAIN_JOB: Mapping[str, Severity] = {
    CondType.SUCCEEDED: lambda c: NORMAL if _true(c) else WARNING,
    CondType.PROMOTED: lambda c: NORMAL,
    CondType.RECONCILING: lambda c: NORMAL if _true(c) else None,
}
