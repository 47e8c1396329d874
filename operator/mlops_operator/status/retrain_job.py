"""PURE: the conditions of a RetrainJob in each phase of its life.

Running: Reconciling=True. Succeeded: Succeeded=True, Ready=True (with Promoted True/False).
Failed: Succeeded=False, Stalled=True, Ready=False, with the reason. kstatus readers (Argo CD,
Flux) see a finished job as Current and a failed one as Failed.
"""

from __future__ import annotations

from mlops_operator.gate import Decision
from mlops_operator.status.conditions import Condition, make


def pending(gen: int, reason: str, message: str) -> list[Condition]:
    return [
        make("Ready", False, reason, message, gen),
        make("Reconciling", True, reason, message, gen),
        make("Stalled", False, "NotStalled", "", gen),
    ]


def running(gen: int, message: str) -> list[Condition]:
    return pending(gen, "Running", message)


def failed(gen: int, reason: str, message: str) -> list[Condition]:
    return [
        make("Succeeded", False, reason, message, gen),
        make("Ready", False, reason, message, gen),
        make("Reconciling", False, reason, "finished", gen),
        make("Stalled", True, reason, message, gen),
    ]


def succeeded(gen: int, version: str, decision: Decision) -> list[Condition]:
    return [
        make("Succeeded", True, "Completed", f"registered version {version}", gen),
        make("Promoted", decision.promote, decision.reason, decision.message, gen),
        make(
            "Ready",
            True,
            "Completed",
            f"version {version} {'promoted' if decision.promote else 'not promoted'}",
            gen,
        ),
        make("Reconciling", False, "Completed", "finished", gen),
        make("Stalled", False, "NotStalled", "", gen),
    ]


def is_finished(conditions: list[Condition]) -> bool:
    """Succeeded is decided and, on success, so is the promotion."""
    s = next((c for c in conditions if c.get("type") == "Succeeded"), None)
    if not s or s.get("status") == "Unknown":
        return False
    if s.get("status") == "False":
        return True
    return any(c.get("type") == "Promoted" for c in conditions)
