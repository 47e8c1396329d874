"""Which condition changes become Kubernetes Events (status/events.py)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from mlops_operator.status import events
from mlops_operator.status.conditions import WireCondition, make, wire


def c(type_: str, status: bool, reason: str, message: str = "m") -> WireCondition:
    return wire(make(type_, status, reason, message, 1))


MD = events.MODEL_DEPLOYMENT
RTJ = events.RETRAIN_JOB


@pytest.mark.parametrize(
    ("old", "new", "policy", "want"),
    [
        # nothing before: a new condition is a transition
        ([], [c("Ready", True, "Available", "serving v1")], MD, [("Normal", "Available")]),
        # same status and reason, new message: quiet
        (
            [c("Ready", True, "Available", "serving v1")],
            [c("Ready", True, "Available", "serving v2")],
            MD,
            [],
        ),
        # an ordinary rollout loses Ready without an Event
        ([c("Ready", True, "Available")], [c("Ready", False, "Progressing")], MD, []),
        ([c("Ready", True, "Available")], [c("Ready", False, "Resolved")], MD, []),
        # any other loss of Ready is a warning
        (
            [c("Ready", True, "Available")],
            [c("Ready", False, "ProgressDeadlineExceeded", "stuck")],
            MD,
            [("Warning", "ProgressDeadlineExceeded")],
        ),
        # Stalled=True warns; back to not stalled is the quiet default
        ([], [c("Stalled", True, "ModelNotFound")], MD, [("Warning", "ModelNotFound")]),
        ([c("Stalled", True, "ModelNotFound")], [c("Stalled", False, "NotStalled")], MD, []),
        # the model changed: a Normal Event each time the reason or status moves
        (
            [c("ModelResolved", False, "RegistryUnavailable")],
            [c("ModelResolved", True, "Resolved")],
            MD,
            [("Normal", "Resolved")],
        ),
        (
            [c("ModelResolved", True, "Resolved")],
            [c("ModelResolved", False, "ModelNotFound")],
            MD,
            [("Warning", "ModelNotFound")],
        ),
        # conditions the policy does not name say nothing
        ([], [c("Available", True, "MinimumReplicasAvailable")], MD, []),
        ([], [c("Ready", True, "Available")], RTJ, []),
        # RetrainJob: failure warns, success and promotion decisions are Normal
        ([], [c("Succeeded", False, "ValidationFailed")], RTJ, [("Warning", "ValidationFailed")]),
        ([], [c("Succeeded", True, "Completed")], RTJ, [("Normal", "Completed")]),
        ([], [c("Promoted", False, "NotBetter")], RTJ, [("Normal", "NotBetter")]),
        ([], [c("Reconciling", True, "Running")], RTJ, [("Normal", "Running")]),
        ([c("Reconciling", True, "Running")], [c("Reconciling", False, "Done")], RTJ, []),
        # several at once, in the policy's order
        (
            [],
            [c("Promoted", True, "Better"), c("Succeeded", True, "Completed")],
            RTJ,
            [("Normal", "Completed"), ("Normal", "Better")],
        ),
    ],
)
def test_transitions(
    old: list[WireCondition],
    new: list[WireCondition],
    policy: Mapping[str, events.Severity],
    want: list[tuple[str, str]],
) -> None:
    assert [(e.type, e.reason) for e in events.transitions(old, new, policy)] == want


def test_an_event_carries_the_condition_message_or_names_the_condition() -> None:
    [e] = events.transitions([], [c("Stalled", True, "InvalidSpec", "spec.x: bad")], MD)
    assert e == events.Event("Warning", "InvalidSpec", "spec.x: bad")
    [e] = events.transitions([], [wire(make("Succeeded", True, "", "", 1))], RTJ)
    assert e == events.Event("Normal", "Succeeded", "Succeeded=True")
