"""deployment_state() on Deployments and Pods as the API server returns them."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.contract import LABEL_MODEL_VERSION as LABEL_VERSION
from mlops_operator.status import observed as r

# what the kubelet leaves with terminationMessagePolicy FallbackToLogsOnError: the log tail
LOG_TAIL = """\
2026-01-01 10:00:01 INFO mlops_operator.runtime: serving models:/fraud-detector/7 as 'fraud'
2026-01-01 10:00:03 ERROR mlops_operator.runtime: could not load model models:/fraud-detector/7
Traceback (most recent call last):
  File "/app/mlops_operator/runtime/cli.py", line 62, in load_in_background
RuntimeError: no artifact at models:/fraud-detector/7
mlops-runtime: model not loaded from models:/fraud-detector/7: RuntimeError: no artifact

"""
BACK_OFF = "back-off 10s restarting failed container=model pod=fraud-7-abc_ml(0c1d)"


def deployment(version: str = "7", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "fraud", "namespace": "ml", "generation": 2},
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"labels": {LABEL_VERSION: version}}},
        },
        "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, **status},
    }


def pod(
    *containers: dict[str, Any],
    name: str = "fraud-7-abc",
    version: str = "7",
    init: tuple[dict[str, Any], ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {LABEL_VERSION: version}}
    if extra.pop("deleting", False):
        meta["deletionTimestamp"] = "2026-01-01T10:05:00Z"
    status: dict[str, Any] = {"phase": "Running", "containerStatuses": list(containers), **extra}
    if init:
        status["initContainerStatuses"] = list(init)
    return {"metadata": meta, "status": status}


def cs(
    state: dict[str, Any],
    last: dict[str, Any] | None = None,
    restarts: int = 0,
    ready: bool = False,
    name: str = "model",
) -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "lastState": last or {},
        "ready": ready,
        "restartCount": restarts,
        "image": "example.com/runtime:1",
    }


def crashed(message: str = LOG_TAIL, reason: str = "Error", code: int = 1) -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "reason": reason, "message": message}}


def failing(*pods: dict[str, Any]) -> list[str]:
    return r.deployment_state(deployment(readyReplicas=0), list(pods)).failing


def test_crash_loop_quotes_the_kubelet_reason_and_the_last_log_line() -> None:
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": BACK_OFF}}
    (msg,) = failing(pod(cs(waiting, crashed(), restarts=3)))
    assert msg == (
        f"pod fraud-7-abc container model: CrashLoopBackOff ({BACK_OFF}), last exit Error "
        "(exit code 1); last error: mlops-runtime: model not loaded from "
        "models:/fraud-detector/7: RuntimeError: no artifact"
    )


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("ErrImageNeverPull", 'Container image "mlops-runtime:dev" is not present with pull '),
        ("ImagePullBackOff", 'Back-off pulling image "example.com/runtime:1"'),
        ("ErrImagePull", "rpc error: code = NotFound desc = failed to pull and unpack image"),
        ("CreateContainerConfigError", 'secret "mlflow-creds" not found'),
        ("CreateContainerError", "context deadline exceeded"),
        ("InvalidImageName", 'Failed to apply default image tag "Bad:Image:": invalid'),
        ("RunContainerError", "failed to create containerd task: exec: no such file"),
    ],
)
def test_containers_that_cannot_start(reason: str, message: str) -> None:
    (msg,) = failing(pod(cs({"waiting": {"reason": reason, "message": message}})))
    assert msg == f"pod fraud-7-abc container model: {reason} ({message.strip()})"


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing"])
def test_starting_containers_are_not_failing(reason: str) -> None:
    assert failing(pod(cs({"waiting": {"reason": reason}}))) == []


def test_running_or_ready_containers_are_not_failing() -> None:
    running = {"running": {"startedAt": "2026-01-01T10:00:00Z"}}
    assert failing(pod(cs(running)), pod(cs(running, crashed(), restarts=1, ready=True))) == []


def test_a_container_that_keeps_terminating_is_failing_between_crashes() -> None:
    running = {"running": {"startedAt": "2026-01-01T10:00:00Z"}}
    (msg,) = failing(pod(cs(running, crashed("", "OOMKilled", 137), restarts=2)))
    assert msg == (
        "pod fraud-7-abc container model: restarted 2 time(s), last exit OOMKilled (exit code 137)"
    )


def test_a_container_that_just_terminated_with_an_error() -> None:
    (msg,) = failing(pod(cs(crashed("boom\n  KeyError: 'x'  \n"))))
    assert msg == (
        "pod fraud-7-abc container model: terminated Error (exit code 1); last error: KeyError: 'x'"
    )


def test_init_containers_count_and_a_finished_one_does_not() -> None:
    done = cs(crashed("", "Completed", 0), crashed(), restarts=1, name="fetch")
    looping = cs(
        {"waiting": {"reason": "CrashLoopBackOff", "message": BACK_OFF}},
        crashed("cannot reach mlflow:5000"),
        restarts=4,
        name="wait-mlflow",
    )
    starting = cs({"waiting": {"reason": "PodInitializing"}})
    assert failing(pod(starting, init=(done,))) == []
    (msg,) = failing(pod(starting, init=(looping,)))
    assert msg.startswith("pod fraud-7-abc init container wait-mlflow: CrashLoopBackOff")
    assert msg.endswith("; last error: cannot reach mlflow:5000")


def test_old_versions_deleted_and_evicted_pods_are_skipped() -> None:
    bad = cs({"waiting": {"reason": "CrashLoopBackOff", "message": BACK_OFF}}, crashed())
    assert (
        failing(
            pod(bad, version="6", name="fraud-6-old"),
            pod(bad, deleting=True),
            pod(cs(crashed("", "Error", 137)), phase="Failed", reason="Evicted"),
        )
        == []
    )
    assert len(failing(pod(bad), pod(bad, name="fraud-7-def"))) == 2


def test_long_messages_are_trimmed_to_one_line() -> None:
    tail = "Traceback ...\n" + "ValueError: " + "x" * 1000 + "\n"
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off\n" + "y" * 500}}
    (msg,) = failing(pod(cs(waiting, crashed(tail), restarts=1)))
    detail, error = msg.split("; last error: ")
    assert "\n" not in msg
    assert len(error) == r.MESSAGE_LIMIT and error.startswith("ValueError: x")
    assert error.endswith("...") and len(detail) < 2 * r.MESSAGE_LIMIT


def test_unschedulable_pods_and_deployment_fields() -> None:
    pending = {
        "metadata": {"name": "fraud-7-xyz", "labels": {LABEL_VERSION: "7"}},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/5 nodes are available: 5 Insufficient nvidia.com/gpu.",
                }
            ],
        },
    }
    dep = deployment(
        readyReplicas=1,
        availableReplicas=1,
        conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}],
    )
    st = r.deployment_state(dep, [pending])
    assert st.unschedulable == ["0/5 nodes are available: 5 Insufficient nvidia.com/gpu."]
    assert st.failing == []
    assert (st.desired, st.replicas, st.updated, st.ready, st.available) == (2, 2, 2, 1, 1)
    assert st.serving_version == "7" and st.progress_deadline_exceeded
    assert not r.deployment_state(None, []).exists


@pytest.mark.parametrize(
    ("status", "listed"),
    [
        ({"readyReplicas": 2}, False),  # settled: nothing to explain
        ({"readyReplicas": 1}, True),
        # rolling with maxUnavailable 0: the old pods keep readyReplicas full
        ({"readyReplicas": 2, "replicas": 3, "updatedReplicas": 1}, True),
    ],
)
def test_pods_are_listed_while_not_all_wanted_pods_serve(
    status: dict[str, Any], listed: bool
) -> None:
    assert r.pods_worth_listing(deployment(**status)) is listed
    assert not r.pods_worth_listing(None)
