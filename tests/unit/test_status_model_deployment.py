from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from mlops_operator.api.model_deployment import ModelDeploymentStatus
from mlops_operator.contract import ResolvedModel
from mlops_operator.status import conditions as cond
from mlops_operator.status.model_deployment import (
    DeploymentState,
    Resolution,
    StatusInput,
    compute,
)

M7 = ResolvedModel("fraud-detector", "7", alias="champion")
M6 = ResolvedModel("fraud-detector", "6", alias="champion")
SETTLED = DeploymentState(
    exists=True,
    generation=2,
    observed_generation=2,
    desired=2,
    replicas=2,
    updated=2,
    ready=2,
    available=2,
    serving_version="7",
)


def status(resolution: Resolution, dep: DeploymentState, gen: int = 3) -> dict[str, Any]:
    """The status as it goes on the wire."""
    return typed_status(resolution, dep, gen).to_wire()


def typed_status(
    resolution: Resolution, dep: DeploymentState, gen: int = 3
) -> ModelDeploymentStatus:
    served = (
        resolution.model
        if resolution.model and dep.serving_version == resolution.model.version
        else (M6 if dep.serving_version == "6" else None)
    )
    return compute(
        StatusInput(
            generation=gen,
            name="fraud",
            alias="champion",
            resolution=resolution,
            deployment=dep,
            endpoint="http://fraud.ml.svc:8080",
            selector="mlops.dev/model-deployment=fraud",
            served=served,
        )
    )


def summary(st: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}


@pytest.mark.parametrize(
    ("resolution", "dep", "expect"),
    [
        (
            Resolution(M7),
            SETTLED,
            {
                "Ready": ("True", "Available"),
                "Reconciling": ("False", "Reconciled"),
                "Stalled": ("False", "NotStalled"),
                "ModelResolved": ("True", "Resolved"),
                "Available": ("True", "MinimumReplicasAvailable"),
            },
        ),
        (
            Resolution(M7),
            DeploymentState(),
            {
                "Ready": ("False", "Progressing"),
                "Reconciling": ("True", "Progressing"),
                "Available": ("False", "Progressing"),
            },
        ),
        # alias moved to 7 while the pods still run 6: rolling, not ready at the new version
        (
            Resolution(M7),
            DeploymentState(**{**SETTLED.__dict__, "serving_version": "6"}),
            {"Ready": ("False", "Progressing"), "Reconciling": ("True", "Progressing")},
        ),
        (
            Resolution(M7),
            DeploymentState(
                **{
                    **SETTLED.__dict__,
                    "available": 0,
                    "ready": 0,
                    "unschedulable": ["0/5 nodes are available"],
                }
            ),
            {
                "Ready": ("False", "Unschedulable"),
                "Available": ("False", "Unschedulable"),
                "Stalled": ("False", "NotStalled"),
            },
        ),
        (
            Resolution(None, "ModelNotFound", "no such model"),
            DeploymentState(),
            {
                "Ready": ("False", "ModelNotFound"),
                "Stalled": ("True", "ModelNotFound"),
                "Reconciling": ("False", "ModelNotFound"),
                "ModelResolved": ("False", "ModelNotFound"),
            },
        ),
        (
            Resolution(None, "AliasNotSet", "no alias"),
            DeploymentState(),
            {"Stalled": ("True", "AliasNotSet")},
        ),
        (
            Resolution(None, "VersionNotFound", "no v9"),
            DeploymentState(),
            {"Stalled": ("True", "VersionNotFound")},
        ),
        # registry outage: the last version keeps serving, Ready stays True, and says so
        (
            Resolution(None, "RegistryUnavailable", "connection refused"),
            SETTLED,
            {
                "Ready": ("True", "Available"),
                "ModelResolved": ("False", "RegistryUnavailable"),
                "Stalled": ("False", "NotStalled"),
            },
        ),
        (
            Resolution(None, "RegistryUnavailable", "connection refused"),
            DeploymentState(),
            {
                "Ready": ("False", "RegistryUnavailable"),
                "Reconciling": ("True", "RegistryUnavailable"),
            },
        ),
    ],
)
def test_conditions_table(
    resolution: Resolution, dep: DeploymentState, expect: dict[str, tuple[str, str]]
) -> None:
    got = summary(status(resolution, dep))
    for k, v in expect.items():
        assert got[k] == v, (k, got)


CRASH = (
    "pod fraud-7-abc container model: CrashLoopBackOff (back-off 10s restarting failed "
    "container=model pod=fraud-7-abc_ml(1)), last exit Error (exit code 1); last error: "
    "mlops-runtime: model not loaded from models:/fraud-detector/7: RuntimeError: no artifact"
)
NEVER_PULL = (
    "pod fraud-7-abc container model: ErrImageNeverPull (Container image "
    '"mlops-runtime:dev" is not present with pull policy of Never)'
)
# first rollout of version 7: nothing ready yet
STARTING = DeploymentState(**{**SETTLED.__dict__, "ready": 0, "available": 0})
# rolling 6 -> 7 with maxSurge 1: the old pods serve, the surge pod at 7 does not start
ROLLING = DeploymentState(**{**SETTLED.__dict__, "replicas": 3, "updated": 1, "ready": 2})


@pytest.mark.parametrize(
    ("dep", "expect", "words"),
    [
        (
            DeploymentState(**{**STARTING.__dict__, "failing": [CRASH]}),
            {
                "Available": ("False", "ContainerFailing"),
                "Ready": ("False", "ContainerFailing"),
                "Reconciling": ("True", "ContainerFailing"),
                "Stalled": ("False", "NotStalled"),
            },
            ["1 container(s) failing", "CrashLoopBackOff", "RuntimeError: no artifact"],
        ),
        (
            DeploymentState(**{**ROLLING.__dict__, "failing": [NEVER_PULL, CRASH]}),
            {"Available": ("False", "ContainerFailing"), "Ready": ("False", "ContainerFailing")},
            ["2 container(s) failing", "ErrImageNeverPull", "pull policy of Never"],
        ),
        # the Deployment gave up waiting, and the pods say why: the cause wins
        (
            DeploymentState(
                **{**STARTING.__dict__, "failing": [CRASH], "progress_deadline_exceeded": True}
            ),
            {
                "Available": ("False", "ContainerFailing"),
                "Stalled": ("True", "ProgressDeadlineExceeded"),
                "Reconciling": ("False", "ProgressDeadlineExceeded"),
            },
            ["CrashLoopBackOff"],
        ),
        # past the deadline with no pod to blame (a quota, a slow pull): stuck, not rolling
        (
            DeploymentState(**{**STARTING.__dict__, "progress_deadline_exceeded": True}),
            {
                "Available": ("False", "ProgressDeadlineExceeded"),
                "Ready": ("False", "ProgressDeadlineExceeded"),
                "Stalled": ("True", "ProgressDeadlineExceeded"),
                "Reconciling": ("False", "ProgressDeadlineExceeded"),
            },
            ["rollout stuck"],
        ),
        # a crashing extra pod does not take down a settled, available Deployment
        (
            DeploymentState(**{**SETTLED.__dict__, "failing": [CRASH]}),
            {"Available": ("True", "MinimumReplicasAvailable"), "Ready": ("True", "Available")},
            ["2/2 replicas available at version 7"],
        ),
        # pods that cannot be placed at all come first: no container has run yet
        (
            DeploymentState(
                **{
                    **STARTING.__dict__,
                    "failing": [CRASH],
                    "unschedulable": ["0/5 nodes are available"],
                }
            ),
            {"Available": ("False", "Unschedulable"), "Ready": ("False", "Unschedulable")},
            ["0/5 nodes are available"],
        ),
        (
            STARTING,
            {"Available": ("False", "Progressing"), "Reconciling": ("True", "Progressing")},
            ["rolling out version 7"],
        ),
    ],
    ids=[
        "crash-loop",
        "never-pull",
        "deadline",
        "deadline-alone",
        "settled",
        "unschedulable",
        "starting",
    ],
)
def test_container_failing(
    dep: DeploymentState, expect: dict[str, tuple[str, str]], words: list[str]
) -> None:
    st = status(Resolution(M7), dep)
    got = summary(st)
    for k, v in expect.items():
        assert got[k] == v, (k, got)
    available = cond.get(st["conditions"], "Available")
    assert available is not None
    assert all(w in available["message"] for w in words), available["message"]


def test_container_failing_of_a_version_not_wanted_reads_as_rolling_out() -> None:
    # the registry moved to 8 while the template still pins a failing 7: rolling is the news
    st = status(
        Resolution(ResolvedModel("fraud-detector", "8")),
        DeploymentState(**{**STARTING.__dict__, "failing": [CRASH]}),
    )
    assert summary(st)["Available"] == ("False", "Progressing")


def test_status_fields_and_generation() -> None:
    st = status(Resolution(M7), SETTLED, gen=9)
    assert st["observedGeneration"] == 9
    assert all(c["observedGeneration"] == 9 for c in st["conditions"])
    assert st["model"] == {"name": "fraud-detector", "version": "7", "alias": "champion"}
    assert (st["replicas"], st["readyReplicas"], st["endpoint"]) == (
        2,
        2,
        "http://fraud.ml.svc:8080",
    )
    ready = cond.get(st["conditions"], "Ready")
    assert ready is not None and "registry unreachable" not in ready["message"]
    outage = status(Resolution(None, "RegistryUnavailable", "refused"), SETTLED)
    ready = cond.get(outage["conditions"], "Ready")
    assert ready is not None and "registry unreachable" in ready["message"]


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def test_set_condition_moves_transition_time_only_on_flip() -> None:
    conds: list[cond.WireCondition] = []
    assert cond.set_condition(conds, cond.make("Ready", False, "Progressing", "a", 1), T0)
    assert not cond.set_condition(conds, cond.make("Ready", False, "Progressing", "a", 1), T1)
    assert cond.set_condition(conds, cond.make("Ready", False, "Progressing", "b", 1), T1)
    assert conds[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert cond.set_condition(conds, cond.make("Ready", True, "Available", "", 1), T1)
    assert conds[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"
    assert len(conds) == 1


def test_merge_all_reports_no_change_for_identical_status() -> None:
    conditions = typed_status(Resolution(M7), SETTLED).conditions or []
    first, changed = cond.merge_all([], conditions, T0)
    assert changed
    _, changed = cond.merge_all(first, conditions, T1)
    assert not changed
