"""PURE: the conditions of a RetrainJob in each phase of its life.

Running: Reconciling=True. Succeeded: Succeeded=True, Ready=True (with Promoted True/False).
Failed: Succeeded=False, Stalled=True, Ready=False, with the reason. kstatus readers (Argo CD,
Flux) see a finished job as Current and a failed one as Failed.
"""

from __future__ import annotations

from typing import Any

from mlops_operator.contract import CondType, Reason
from mlops_operator.gate import Decision
from mlops_operator.status.conditions import Condition, WireCondition, make


def pending(gen: int, reason: str, message: str) -> list[Condition]:
    return [
        make(CondType.READY, False, reason, message, gen),
        make(CondType.RECONCILING, True, reason, message, gen),
        make(CondType.STALLED, False, Reason.NOT_STALLED, "", gen),
    ]


def running(gen: int, message: str) -> list[Condition]:
    return pending(gen, Reason.RUNNING, message)


def failed(gen: int, reason: str, message: str) -> list[Condition]:
    return [
        make(CondType.SUCCEEDED, False, reason, message, gen),
        make(CondType.READY, False, reason, message, gen),
        make(CondType.RECONCILING, False, reason, "finished", gen),
        make(CondType.STALLED, True, reason, message, gen),
    ]


def succeeded(gen: int, version: str, decision: Decision) -> list[Condition]:
    return [
        make(CondType.SUCCEEDED, True, Reason.COMPLETED, f"registered version {version}", gen),
        make(CondType.PROMOTED, decision.promote, decision.reason, decision.message, gen),
        make(
            CondType.READY,
            True,
            Reason.COMPLETED,
            f"version {version} {'promoted' if decision.promote else 'not promoted'}",
            gen,
        ),
        make(CondType.RECONCILING, False, Reason.COMPLETED, "finished", gen),
        make(CondType.STALLED, False, Reason.NOT_STALLED, "", gen),
    ]


def is_finished(conditions: list[WireCondition]) -> bool:
    """Succeeded is decided and, on success, so is the promotion."""
    s = next((c for c in conditions if c.get("type") == CondType.SUCCEEDED), None)
    if not s or s.get("status") == "Unknown":
        return False
    if s.get("status") == "False":
        return True
    return any(c.get("type") == CondType.PROMOTED for c in conditions)


def verdict(job: dict[str, Any]) -> dict[str, Any] | None:
    """What a finished RetrainJob decided, as its ModelDeployment's status.retraining.lastResult
    shows it (so `kubectl describe mdep` tells why the alias moved or stayed); None while it
    runs."""
    status = job.get("status") or {}
    conditions = status.get("conditions") or []
    if not is_finished(conditions):
        return None
    by_type = {c.get("type"): c for c in conditions}
    succeeded = by_type.get(CondType.SUCCEEDED) or {}
    result = status.get("result") or {}
    decided = by_type.get(CondType.PROMOTED) if succeeded.get("status") == "True" else succeeded
    out: dict[str, Any] = {
        "name": job["metadata"]["name"],
        "succeeded": succeeded.get("status") == "True",
        "promoted": result.get("promoted") is True,
        "reason": (decided or {}).get("reason", ""),
        "message": (decided or {}).get("message", ""),
    }
    if result.get("version"):
        out["version"] = result["version"]
    if result.get("checks"):
        out["checks"] = result["checks"]
    return out
