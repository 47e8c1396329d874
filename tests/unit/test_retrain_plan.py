"""What a RetrainJob pass does once its run was polled (reconcilers/retrain_plan.py)."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.clients.kfp_backend import KfpBackend
from mlops_operator.clients.pipelines import LocalBackend, RunState, Traits
from mlops_operator.contract import CondType, Requeue
from mlops_operator.reconcilers.retrain_plan import Observed, Start, Step, plan, plan_start

pytestmark = pytest.mark.unit

LOCAL = LocalBackend.traits
KFP = KfpBackend.traits
NOW = "2026-12-01T10:00:00Z"
EARLIER = "2026-12-01T09:00:00Z"
RUN = {"id": "r1", "name": "fraud-retrain-abc", "backend": "local", "state": "Submitted"}


def step(state: RunState, traits: Traits, run: dict[str, Any]) -> Step:
    return plan(Observed(3, {**RUN, **run}, state, traits, NOW))


def conditions(s: Step) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in s.conditions or []}


@pytest.mark.parametrize(
    ("state", "traits", "run", "want"),
    [
        # a new backend state is recorded, and the job is Reconciling
        (
            RunState("Running", backend_state="RUNNING"),
            KFP,
            {},
            {
                "run_state": "RUNNING",
                "conditions": {CondType.RECONCILING: ("True", "Running")},
                "requeue": Requeue(5.0, "running", backoff=True),
            },
        ),
        # nothing new: no write at all, just look again (steadily for the local runner)
        (
            RunState("Running"),
            LOCAL,
            {"state": "Running"},
            {"run_state": None, "conditions": None, "requeue": Requeue(2.0, "running")},
        ),
        # a lost local worker is restarted once
        (
            RunState("Lost", "WorkerLost", "gone"),
            LOCAL,
            {},
            {
                "run_state": "Restarted",
                "attempt": 1,
                "action": "restart",
                "conditions": {CondType.RECONCILING: ("True", "Running")},
                "requeue": Requeue(2.0, "restarted"),
            },
        ),
        # ... and a second loss fails the job
        (
            RunState("Lost", "WorkerLost", "gone again"),
            LOCAL,
            {"attempt": 1},
            {
                "run_state": "Lost",
                "completed": NOW,
                "release": True,
                "conditions": {
                    CondType.SUCCEEDED: ("False", "WorkerLost"),
                    CondType.STALLED: ("True", "WorkerLost"),
                },
            },
        ),
        # a backend that cannot restart fails at the first loss
        (
            RunState("Lost", "RunLost", "KFP lost it"),
            KFP,
            {},
            {
                "run_state": "Lost",
                "release": True,
                "conditions": {CondType.READY: ("False", "RunLost")},
            },
        ),
        # a failed run fails the job with the backend's reason; an earlier completedAt stays
        (
            RunState("Failed", "ValidationFailed", "bad rows", backend_state="FAILED"),
            KFP,
            {"completedAt": EARLIER},
            {
                "run_state": "FAILED",
                "completed": EARLIER,
                "release": True,
                "conditions": {CondType.SUCCEEDED: ("False", "ValidationFailed")},
            },
        ),
        # success: the gate decides; nothing is written before it
        (
            RunState("Succeeded", backend_state="SUCCEEDED"),
            KFP,
            {},
            {"run_state": "SUCCEEDED", "completed": NOW, "action": "gate", "conditions": None},
        ),
    ],
)
def test_plan(state: RunState, traits: Traits, run: dict[str, Any], want: dict[str, Any]) -> None:
    s = step(state, traits, run)
    if want["run_state"]:
        assert s.run is not None and s.run["state"] == want["run_state"]
    else:
        assert s.run is None
    if "attempt" in want:
        assert s.run is not None and s.run["attempt"] == want["attempt"]
    if "completed" in want:
        assert s.run is not None and s.run["completedAt"] == want["completed"]
    assert s.action == want.get("action")
    assert s.release_finalizer is want.get("release", False)
    assert s.requeue == want.get("requeue")
    if want["conditions"] is None:
        assert s.conditions is None
    else:
        got = conditions(s)
        for k, v in want["conditions"].items():
            assert got[k] == v, (k, got)
    # every condition is for the generation observed
    assert all(c.observed_generation == 3 for c in s.conditions or [])


def test_the_recorded_run_is_never_mutated() -> None:
    recorded = dict(RUN)
    plan(Observed(3, recorded, RunState("Lost"), LOCAL, NOW))
    assert recorded == RUN


def test_backends_declare_how_they_are_treated() -> None:
    assert LOCAL.can_restart and not LOCAL.poll_backoff
    assert not KFP.can_restart and KFP.poll_backoff


def start(**changes: Any) -> Step:
    base: dict[str, Any] = {
        "generation": 2,
        "deleting": False,
        "finished": False,
        "spec_error": None,
        "backend": "local",
        "configured": True,
    }
    return plan_start(Start(**{**base, **changes}))


@pytest.mark.parametrize(
    ("changes", "action", "release", "failed_for"),
    [
        ({}, "run", False, None),
        # deletion comes first, even for a finished or an invalid job: its run may still go
        ({"deleting": True, "finished": True, "spec_error": "x"}, "stop", False, None),
        ({"finished": True}, None, True, None),
        ({"spec_error": "spec.model: Field required"}, None, False, "InvalidSpec"),
        ({"backend": "kfp", "configured": False}, None, False, "BackendUnavailable"),
    ],
)
def test_plan_start(
    changes: dict[str, Any], action: str | None, release: bool, failed_for: str | None
) -> None:
    s = start(**changes)
    assert s.action == action and s.release_finalizer is release and s.requeue is None
    if failed_for is None:
        assert s.conditions is None
    else:
        got = conditions(s)
        assert got[CondType.SUCCEEDED] == ("False", failed_for)
        assert got[CondType.STALLED] == ("True", failed_for)
        assert all(c.observed_generation == 2 for c in s.conditions or [])


def test_a_missing_backend_says_which_and_why() -> None:
    s = start(backend="kfp", configured=False)
    [ready] = [c for c in s.conditions or [] if c.type == CondType.READY]
    assert "'kfp'" in ready.message and "MLOPS_KFP_HOST" in ready.message
