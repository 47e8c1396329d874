"""High availability: two real operator processes elect a leader on a Lease.

Only the leader reconciles (each process's own /metrics says how many reconciles it ran);
SIGKILL of the leader right after a new object appears hands the Lease to the standby, which
reconciles what the dead leader left, without re-creating anything. A SIGTERM'd leader
releases the Lease, so its successor starts after one retry instead of a lease duration.

The two processes share one MLOPS_WORK_DIR, as two replicas on one node share a volume: a
local pipeline run the dead leader started keeps running (its worker has its own session) and
the new leader adopts it by its run directory, so the RetrainJob ends with one run and one
registered version.

The candidates watch a namespace of their own, outside the session's NS_PREFIX: the session's
`operator` fixture (started by other modules of the same run) must not reconcile it too.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from mlflow.tracking import MlflowClient

from mlops_operator.contract import GROUP, MODEL_DEPLOYMENT_PLURAL, VERSION
from tests.support.cluster import eventually
from tests.support.kube import fresh_namespace, server_side_apply
from tests.support.models import register_iris
from tests.support.objects import make_model_deployment
from tests.support.operator_launch import STANDING_BY, launch
from tests.support.operator_metrics import free_port, scrape, value
from tests.support.operator_process import OperatorProcess
from tests.support.retrain_jobs import (
    WORKER_STARTED,
    conditions,
    make_retrain_job,
    release_all,
    run_dir,
    stop_workers,
    wait_finished,
    wait_released,
    worker_pid,
)
from tests.support.retrain_jobs import get as get_retrain_job

PLURAL = MODEL_DEPLOYMENT_PLURAL
LEASE_SECONDS = 15  # the default, so the takeover measured is the one users get


def _tracking_uri(replica_set: Any) -> str | None:
    env = replica_set.spec.template.spec.containers[0].env or []
    return next((e.value for e in env if e.name == "MLFLOW_TRACKING_URI"), None)


class Candidates:
    def __init__(
        self, kubeconfig: str, mlflow_uri: str, namespace: str, lease: str, logs: Path
    ) -> None:
        self.kubeconfig, self.mlflow_uri, self.logs = kubeconfig, mlflow_uri, logs
        self.work_dir = logs / "work"
        self.env = {
            "MLOPS_LEADER_ELECTION": "true",
            "MLOPS_LEADER_ELECTION_NAMESPACE": namespace,
            "MLOPS_LEADER_ELECTION_NAME": lease,
            "MLOPS_LEADER_ELECTION_LEASE_SECONDS": str(LEASE_SECONDS),
            # only this test's namespace: other tests' operators and objects stay out
            "MLOPS_NAMESPACES": namespace,
            # one volume for all replicas: runs outlive the process that started them
            "MLOPS_WORK_DIR": str(self.work_dir),
        }
        self.running: dict[str, tuple[OperatorProcess, int]] = {}

    def start(self, name: str, wait_for: str) -> OperatorProcess:
        port = free_port()
        op = launch(
            self.kubeconfig,
            self.mlflow_uri,
            self.logs / f"{name}.log",
            wait_for=wait_for,
            POD_NAME=name,
            MLOPS_METRICS_PORT=str(port),
            **self.env,
        )
        self.running[name] = (op, port)
        return op

    def identity(self, name: str) -> str:
        return f"{name}_{self.running[name][0].process.pid}"

    def metric(self, name: str, metric: str, **labels: str) -> float:
        return value(scrape(self.running[name][1]), metric, **labels)

    def stop_all(self) -> None:
        for op, _ in self.running.values():
            op.stop(signal.SIGKILL)


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    """A namespace only the candidates watch (not NS_PREFIX: see the module's docstring)."""
    with fresh_namespace(kube, "ha-") as name:
        yield name


@pytest.fixture
def candidates(
    kubeconfig: tuple[str, str | None],
    kube: client.ApiClient,
    mlflow_uri: str,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Candidates]:
    c = Candidates(kubeconfig[0], mlflow_uri, namespace, f"le-{uuid.uuid4().hex[:6]}", tmp_path)
    yield c
    c.stop_all()
    # a failed test may leave a worker running, or a RetrainJob that nobody will finish
    stop_workers(c.work_dir)
    release_all(kube, namespace)
    print(f"operator logs: {tmp_path}")


def test_only_the_leader_reconciles_and_a_standby_takes_over(
    kube: client.ApiClient, namespace: str, mlflow_uri: str, candidates: Candidates
) -> None:
    coordination = client.CoordinationV1Api(kube)
    custom = client.CustomObjectsApi(kube)
    apps = client.AppsV1Api(kube)
    lease_name = candidates.env["MLOPS_LEADER_ELECTION_NAME"]

    def lease() -> Any:
        return coordination.read_namespaced_lease(lease_name, namespace)

    def ready(name: str) -> bool:
        o = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        st = o.get("status", {})
        return st.get("observedGeneration") == o["metadata"]["generation"] and any(
            c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", [])
        )

    def apply(name: str) -> None:
        md = make_model_deployment(name, namespace, model={"name": model, "alias": "champion"})
        server_side_apply(kube, md)

    model = f"ha-{uuid.uuid4().hex[:6]}"
    register_iris(mlflow_uri, model, alias="champion")

    a = candidates.start("op-a", wait_for="mlops-operator started")
    b = candidates.start("op-b", wait_for=STANDING_BY)
    assert lease().spec.holder_identity == candidates.identity("op-a")

    apply("one")
    eventually(lambda: ready("one"), 120, what="one Ready under the first leader")
    assert candidates.metric("op-a", "mlops_operator_reconcile_total", kind="ModelDeployment") >= 1
    assert candidates.metric("op-a", "mlops_operator_leader") == 1
    # the standby is alive (it answers /metrics) but has reconciled nothing, started no kopf
    assert candidates.metric("op-b", "mlops_operator_reconcile_total") == 0
    assert candidates.metric("op-b", "mlops_operator_leader") == 0
    assert "mlops-operator started" not in b.logs()
    one_uid = apps.read_namespaced_deployment("one", namespace).metadata.uid

    # a new object, and the leader dies before (or while) it handles it
    apply("two")
    a.stop(signal.SIGKILL)
    killed = time.monotonic()
    last_renew = lease().spec.renew_time  # the dead leader's last word
    eventually(
        lambda: lease().spec.holder_identity == candidates.identity("op-b"),
        60,
        what="the standby holds the Lease",
    )
    takeover = time.monotonic() - killed
    # never early: the standby waits a whole lease duration after the last renewal it saw
    acquired = lease().spec.acquire_time
    assert (acquired - last_renew).total_seconds() >= LEASE_SECONDS, (last_renew, acquired)
    eventually(lambda: ready("two"), 120, what="two Ready under the new leader")
    converged = time.monotonic() - killed
    assert "mlops-operator started" in b.logs()
    assert candidates.metric("op-b", "mlops_operator_leader") == 1
    assert candidates.metric("op-b", "mlops_operator_reconcile_total", kind="ModelDeployment") >= 1
    eventually(lambda: ready("one"), 60, what="one still Ready")
    # nothing re-created: the same Deployment, never rolled by the new leader (one
    # ReplicaSet of this configuration; on a cluster shared with other test runs, their
    # operators may roll it to their own MLflow and back, which is not ours to count)
    assert apps.read_namespaced_deployment("one", namespace).metadata.uid == one_uid
    sets = apps.list_namespaced_replica_set(
        namespace, label_selector="mlops.dev/model-deployment=one"
    ).items
    ours = [rs for rs in sets if _tracking_uri(rs) == mlflow_uri]
    assert len(ours) == 1, [rs.metadata.name for rs in sets]
    assert lease().spec.lease_transitions == 1

    # a clean stop releases the Lease: the next standby need not wait for it to expire
    candidates.start("op-c", wait_for=STANDING_BY)
    stopped = time.monotonic()
    # a second signal while it stops (Ctrl+C twice, SIGINT after SIGTERM) changes nothing
    b.process.send_signal(signal.SIGTERM)
    b.process.send_signal(signal.SIGINT)
    b.stop(signal.SIGTERM)
    # released on the way out: had it merely stopped renewing, it would hold the Lease for
    # a whole lease duration more
    assert lease().spec.holder_identity != candidates.identity("op-b")
    eventually(
        lambda: lease().spec.holder_identity == candidates.identity("op-c"),
        60,
        what="the third candidate holds the Lease",
    )
    handover = time.monotonic() - stopped
    assert b.process.returncode == 0, b.logs()[-2000:]
    assert "released the Lease" in b.logs()
    assert "InvalidStateError" not in b.logs(), b.logs()[-2000:]
    # the queues stop in kopf's cleanup activity: kopf itself would wait 5 s for their tasks
    assert "Activity 'stop-queues' succeeded" in b.logs(), b.logs()[-2000:]
    print(
        f"\nleader election ({LEASE_SECONDS}s lease): SIGKILL -> standby holds the Lease in "
        f"{takeover:.1f}s, new object Ready {converged:.1f}s after the kill; "
        f"SIGTERM -> handover in {handover:.1f}s"
    )


# over a minute on 2 cores: make test-chaos only. In make test, a local run outliving its
# operator and adopted by the next one stays covered by test_retrain_job.py's
# test_operator_killed_right_after_submit_runs_once[local] (the same work directory, one process)
@pytest.mark.chaos
@pytest.mark.slow
def test_a_local_run_the_dead_leader_started_is_adopted(
    kube: client.ApiClient, namespace: str, mlflow_uri: str, candidates: Candidates
) -> None:
    coordination = client.CoordinationV1Api(kube)
    lease_name = candidates.env["MLOPS_LEADER_ELECTION_NAME"]
    model = f"ha-rtj-{uuid.uuid4().hex[:6]}"

    def holder() -> str:
        return str(coordination.read_namespaced_lease(lease_name, namespace).spec.holder_identity)

    a = candidates.start("op-a", wait_for="mlops-operator started")
    b = candidates.start("op-b", wait_for=STANDING_BY)
    server_side_apply(kube, make_retrain_job("adopted", namespace, model))

    def running() -> tuple[Path, int] | None:
        o = get_retrain_job(kube, namespace, "adopted")
        if ((o.get("status") or {}).get("run") or {}).get("state") != "Running":
            return None
        d = run_dir(candidates.work_dir, o)
        pid = worker_pid(d)
        return (d, pid) if pid else None

    # the leader has submitted the run and seen it running: it owns it now
    d, pid = eventually(running, 90, what="the leader's local run running")
    assert candidates.metric("op-b", "mlops_operator_reconcile_total") == 0
    # Hold the run mid-flight (SIGSTOP to its process group) so that the takeover surely
    # happens while it runs: a small pipeline can otherwise finish within the lease.
    os.killpg(pid, signal.SIGSTOP)
    try:
        a.stop(signal.SIGKILL)
        killed = time.monotonic()
        assert worker_pid(d) == pid, "the worker died with the operator that started it"

        eventually(lambda: holder() == candidates.identity("op-b"), 60, what="op-b holds the Lease")
        takeover = time.monotonic() - killed
        eventually(lambda: "mlops-operator started" in b.logs(), 60, what="op-b reconciling")
        eventually(
            lambda: (
                candidates.metric("op-b", "mlops_operator_reconcile_total", kind="RetrainJob") >= 1
            ),
            60,
            what="op-b reconciled the RetrainJob",
        )
        # the new leader saw the dead leader's run still running and left it alone
        assert worker_pid(d) == pid
        held = get_retrain_job(kube, namespace, "adopted")["status"]
        assert held["run"]["state"] == "Running", held
        assert "submitted run" not in b.logs()
    finally:
        os.killpg(pid, signal.SIGCONT)

    job = wait_finished(kube, namespace, "adopted", timeout=240)
    finished = time.monotonic() - killed
    job = wait_released(kube, namespace, "adopted")
    conds = conditions(job)
    assert conds["Succeeded"]["status"] == "True", conds
    assert (conds["Promoted"]["status"], conds["Promoted"]["reason"]) == ("True", "NoHolder")
    st = job["status"]
    # one run: the one the dead leader submitted, adopted (no second submit, no restart)
    assert st["run"]["id"] == f"local-{job['metadata']['uid']}"
    assert (st["run"].get("attempt") or 0) == 0, st["run"]
    assert [p.name for p in (candidates.work_dir / namespace).iterdir()] == [d.name]
    assert (d / "run.log").read_text(errors="replace").count(WORKER_STARTED) == 1
    assert "submitted run" in a.logs() and "submitted run" not in b.logs()
    # one registered version, the one the job reports, holding the alias
    registry = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    versions = registry.search_model_versions(f"name = '{model}'")
    assert [v.version for v in versions] == [st["result"]["version"]]
    assert registry.get_model_version_by_alias(model, "champion").version == st["result"]["version"]
    assert candidates.metric("op-b", "mlops_operator_reconcile_total", kind="RetrainJob") >= 1
    assert coordination.read_namespaced_lease(lease_name, namespace).spec.lease_transitions == 1
    print(
        f"\nleader election ({LEASE_SECONDS}s lease), local run: SIGKILL -> standby holds the "
        f"Lease in {takeover:.1f}s and adopts the running run; "
        f"RetrainJob finished {finished:.1f}s after the kill"
    )
