"""RetrainJobs in tests: builders, an Env over one namespace (the objects and the MLflow
versions they make), the wait for the end of a job, and the local backend's run directories."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from kubernetes import client

from mlops_operator.clients.pipelines import JobId, live_worker_pid
from mlops_operator.contract import (
    API_VERSION,
    GROUP,
    RETRAIN_JOB_KIND,
    RETRAIN_JOB_PLURAL,
    VERSION,
)
from mlops_operator.pipelines.compile import compile_source
from tests.support.cluster import eventually

PLURAL = RETRAIN_JOB_PLURAL
WORKER_STARTED = "worker pid"  # the local worker's first line, once per process started


def make_retrain_job(name: str, namespace: str, model: str, **params: Any) -> dict[str, Any]:
    """A RetrainJob of the `tabular-train` pipeline on the local backend (iris by default)."""
    body = rtj(name, model, **params)
    body["metadata"]["namespace"] = namespace
    return body


def get(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    custom = client.CustomObjectsApi(kube)
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def wait_finished(
    kube: client.ApiClient, namespace: str, name: str, timeout: float = 180
) -> dict[str, Any]:
    """The RetrainJob once it failed, or succeeded and the promotion was decided."""

    def check() -> dict[str, Any] | None:
        o = get(kube, namespace, name)
        conds = conditions(o)
        s = conds.get("Succeeded")
        if s and (s["status"] == "False" or "Promoted" in conds):
            return o
        return None

    return eventually(check, timeout, interval=1, what=f"RetrainJob {name} finished")


def wait_released(
    kube: client.ApiClient, namespace: str, name: str, timeout: float = 30
) -> dict[str, Any]:
    """The RetrainJob once its finalizer is gone (removed in the pass that finishes the job,
    just after the status that says so)."""

    def check() -> dict[str, Any] | None:
        o = get(kube, namespace, name)
        return None if o["metadata"].get("finalizers") else o

    return eventually(check, timeout, what=f"RetrainJob {name} without its finalizer")


def run_dir(work_dir: Path, obj: dict[str, Any]) -> Path:
    """Where the local backend runs this job (LocalBackend.run_dir)."""
    m: dict[str, str] = obj["metadata"]
    return work_dir / m["namespace"] / JobId(m["namespace"], m["name"], m["uid"]).dir_name


# the backend's own test of a live worker (pid file + command line, zombies excluded)
worker_pid = live_worker_pid


def stop_workers(work_dir: Path) -> None:
    """SIGKILL the process group of every live local worker under `work_dir` (test cleanup:
    a worker outlives the operator that spawned it)."""
    for pid_file in work_dir.glob("*/*/pid"):
        pid = worker_pid(pid_file.parent)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def release_all(kube: client.ApiClient, namespace: str) -> None:
    """Drop the finalizers of every RetrainJob in `namespace` (test cleanup, for when the
    operator that would have removed them is gone), so the namespace can be deleted."""
    custom = client.CustomObjectsApi(kube)
    try:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    except client.ApiException:
        return
    for o in items:
        if o["metadata"].get("finalizers"):
            with contextlib.suppress(client.ApiException):
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, o["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )  # fmt: skip


def rtj(
    name: str,
    model: str,
    *,
    backend: str = "local",
    metric: str = "accuracy",
    min_delta: float = 0.0,
    pipeline: str = "tabular-train",
    **params: Any,
) -> dict[str, Any]:
    """A RetrainJob of `pipeline` without a namespace (Env.apply puts it in its own)."""
    return {
        "apiVersion": API_VERSION,
        "kind": RETRAIN_JOB_KIND,
        "metadata": {"name": name},
        "spec": {
            "model": {"name": model},
            "backend": backend,
            "pipeline": {
                "name": pipeline,
                "parameters": {"data_uri": "sklearn:iris", **params},
            },
            "promotion": {"metric": metric, "minDelta": min_delta, "alias": "champion"},
        },
    }


QUICK_TRAIN = Path(__file__).resolve().parent / "pipelines" / "quick-train" / "quick_train.py"


CHECK_CANDIDATE = (
    Path(__file__).resolve().parent / "pipelines" / "check-candidate" / "check_candidate.py"
)


def extra_pipeline_packages(out: Path) -> Path:
    """`out`, holding every test-only pipeline compiled (quick-train, check-candidate), for the
    session operator's MLOPS_PIPELINE_PACKAGES_DIR."""
    quick_train_packages(out)
    (out / "check-candidate.yaml").write_text(compile_source(CHECK_CANDIDATE))
    return out


def quick_train_packages(out: Path) -> Path:
    """`out`, holding the compiled test-only pipeline quick-train (one task; see its source),
    for MLOPS_PIPELINE_PACKAGES_DIR. Compiled by the project's own compile step."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "quick-train.yaml").write_text(compile_source(QUICK_TRAIN))
    return out
