"""Serving for real: model pods on the local cluster's kubelet node, the runtime image built
here, the model downloaded from the real MLflow server, predictions through the ClusterIP.

Every test here runs real containers (`realnode` marker; see tests/support/realnode.py). The
model is a regression (floats), so "equal" means the image's libraries compute exactly what
the tests' .venv computes: constraints.txt pins both.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from kubernetes import client

from tests.support.cluster import eventually
from tests.support.env import BLAS_ENV, Env
from tests.support.kube import KUBECTL, kubectl
from tests.support.mlflow_server import MlflowServer
from tests.support.models import local_predict, oip, register_diabetes, rows
from tests.support.objects import unique
from tests.support.realnode import NODE_NAME, RUNTIME_IMAGE, harness
from tests.support.traffic import Traffic

ROOT = Path(__file__).resolve().parents[2]
# MLOPS_WORKERS as spec.runtime.env sets it (the builder would from a 2-core request, which
# this node's pods may not get)
TWO_WORKERS = {"name": "MLOPS_WORKERS", "value": "2"}

pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("real_node", "operator")]


# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def restricted(env: Env) -> None:
    """Every namespace here enforces Pod Security `restricted`, as a production one would."""
    env.restrict()


# ---------------------------------------------------------------- tests


def test_predictions_through_the_cluster_ip_equal_the_models_own(
    env: Env, mlflow_uri: str, kubeconfig: tuple[str, str | None]
) -> None:
    from mlflow.tracking import MlflowClient

    model = unique("diabetes")
    version = register_diabetes(mlflow_uri, model, alpha=0.5)
    MlflowClient(mlflow_uri).set_registered_model_alias(model, "champion", version)
    env.apply_md("reg", model)
    env.md.wait_serving("reg", version)
    s = env.served("reg", model)
    df = rows(20)
    expected = local_predict(mlflow_uri, model, version, df)

    r = requests.post(f"{s.url}/v2/models/reg/infer", json=oip(df), timeout=30)
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    assert out["data"] == expected  # exactly: same libraries in the image and in .venv
    assert r.json()["model_version"] == version
    split = {"columns": list(df.columns), "data": df.to_numpy().tolist()}
    r = requests.post(f"{s.url}/invocations", json={"dataframe_split": split}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == expected

    # a real pod on the real node, admitted under `restricted`, non-root, read-only root fs
    (pod,) = [p for p in env.pods("reg") if p.status.phase == "Running"]
    assert pod.spec.node_name == NODE_NAME
    ctr = pod.spec.containers[0]
    assert ctr.security_context.read_only_root_filesystem is True
    assert pod.spec.security_context.run_as_non_root is True
    cfg = kubeconfig[0]
    uid = kubectl(cfg, "exec", "-n", env.ns, pod.metadata.name, "--", "id", "-u")
    run_as = pod.spec.security_context.run_as_user or 65532  # the builder's, else the image's
    assert uid.strip() == str(run_as) and run_as != 0
    denied = subprocess.run(
        [
            KUBECTL,
            f"--kubeconfig={cfg}",
            "exec",
            "-n",
            env.ns,
            pod.metadata.name,
            "--",
            "touch",
            "/opt/runtime/x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    logs = kubectl(cfg, "logs", "-n", env.ns, pod.metadata.name)
    assert f"models:/{model}/{version}" in logs, logs[-2000:]
    assert port_forward_get(cfg, env.ns, pod.metadata.name, "/v2/health/ready") == 200
    # nothing beyond the machine is even routable from the pod: the bridge and the Services
    routes = kubectl(cfg, "exec", "-n", env.ns, pod.metadata.name, "--", "cat", "/proc/net/route")
    dests = {line.split()[1] for line in routes.splitlines()[1:] if line.strip()}
    assert "00000000" not in dests, routes  # no default route
    assert dests == {"0000580A", "0000600A"}, routes  # 10.88.0.0/16 and 10.96.0.0/16
    # and what is routable stays in: the host forwards nothing from pods beyond the bridge
    fwd = subprocess.run(
        ["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True, check=True
    ).stdout
    cidr = harness.BRIDGE_CIDR
    assert f"-A FORWARD -s {cidr} ! -d {cidr} -j DROP" in fwd, fwd
    assert f"-A FORWARD ! -s {cidr} -d {cidr} ! -i {harness.BRIDGE} -j DROP" in fwd, fwd


def port_forward_get(kubeconfig: str, ns: str, pod: str, path: str) -> int:
    """GET path on the pod's port 8080 through `kubectl port-forward` (API server -> kubelet)."""
    p = subprocess.Popen(
        [KUBECTL, f"--kubeconfig={kubeconfig}", "port-forward", "-n", ns, f"pod/{pod}",
         "--address=127.0.0.1", ":8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert p.stdout is not None
        line = p.stdout.readline()  # Forwarding from 127.0.0.1:<port> -> 8080
        assert "Forwarding from 127.0.0.1:" in line, line + (p.stderr.read() if p.stderr else "")
        port = int(line.split("127.0.0.1:")[1].split()[0])
        return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code
    finally:
        p.terminate()
        p.wait(10)


def test_a_roll_forward_under_traffic_loses_no_request(
    env: Env, mlflow_uri: str, traffic: Callable[..., Traffic]
) -> None:
    from mlflow.tracking import MlflowClient

    model = unique("diabetes")
    reg = MlflowClient(mlflow_uri)
    v1 = register_diabetes(mlflow_uri, model, alpha=0.5)
    v2 = register_diabetes(mlflow_uri, model, alpha=2.0)
    reg.set_registered_model_alias(model, "champion", v1)
    # two workers per pod: the preStop call reaches one, and both must drain
    env.apply_md("roll", model, runtime={"image": RUNTIME_IMAGE, "env": [*BLAS_ENV, TWO_WORKERS]})
    env.md.wait_serving("roll", v1)
    s = env.served("roll", model)
    t = traffic(f"{s.url}/v2/models/roll/infer", oip(rows(5)))
    eventually(lambda: t.ok >= 20, 60, 0.2, "traffic flowing before the roll")

    before = t.ok + len(t.failed)
    reg.set_registered_model_alias(model, "champion", v2)  # the operator rolls forward
    env.md.wait_serving("roll", v2)
    # the old pod is gone: every replica now answers with v2
    env.wait_pods_at("roll", v2)
    during = t.ok + len(t.failed) - before  # sent from the alias move to the last old pod gone
    after = t.ok
    eventually(lambda: t.ok >= after + 50, 60, 0.2, "requests after the roll")
    t.finish()
    lat = sorted(t.latencies)
    print(
        f"roll-forward under traffic: {during} requests during the roll, {t.ok} ok in all, "
        f"{len(t.failed)} failed, p50 {lat[len(lat) // 2] * 1000:.1f} ms, "
        f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms"
    )
    assert t.failed == [], t.failed[:5]
    assert during >= 500, f"only {during} requests were sent during the roll"
    assert t.versions == {v1, v2}  # both served: the requests really spanned the roll


def test_a_model_that_cannot_start_is_reported_not_progressing_forever(
    env: Env, mlflow_server: MlflowServer
) -> None:
    from mlflow.tracking import MlflowClient

    # a version whose artifacts are gone from the store: the runtime cannot load it and exits
    mlflow_uri = mlflow_server.url
    model = unique("broken")
    reg = MlflowClient(mlflow_uri)
    version = register_diabetes(mlflow_uri, model, alpha=1.0)
    uri = reg.get_model_version_download_uri(model, version)
    assert uri.startswith("mlflow-artifacts:/"), uri
    shutil.rmtree(mlflow_server.root / "artifacts" / uri.removeprefix("mlflow-artifacts:/"))
    reg.set_registered_model_alias(model, "champion", version)
    env.apply_md("broken", model)

    def failing() -> dict[str, Any]:
        c = env.md.cond("broken", "Available")
        return c if c.get("reason") == "ContainerFailing" else {}

    c = eventually(failing, 180, 1, f"Available=False/ContainerFailing: {env.debug('broken')}")
    assert c["status"] == "False"
    assert "Error" in c["message"] or "CrashLoopBackOff" in c["message"], c["message"]
    assert "last error: mlops-runtime: model not loaded" in c["message"], c["message"]
    assert env.md.cond("broken", "Ready")["status"] == "False"
    assert env.md.cond("broken", "Reconciling")["status"] == "True"

    # a missing image: the kubelet cannot pull it (no registry is reachable from here)
    env.apply_md("noimage", model, runtime={"image": "localhost/mlops-operator/no-such-image:1"})

    def no_image() -> dict[str, Any]:
        c = env.md.cond("noimage", "Available")
        return c if c.get("reason") == "ContainerFailing" else {}

    c = eventually(no_image, 120, 1, f"ContainerFailing for the image: {env.debug('noimage')}")
    assert "ErrImagePull" in c["message"] or "ImagePullBackOff" in c["message"], c["message"]


def test_drift_in_real_pods_found_by_prometheus_creates_exactly_one_retrain_job(
    env: Env, kube: client.ApiClient, mlflow_uri: str, prometheus: Any, fake_kfp: Any
) -> None:
    """Prometheus finds the model's pods through the API server (kubernetes_sd), scrapes the
    runtime's PSI from them, and the operator's drift trigger reads it from Prometheus."""
    from tests.support.models import register_with_baseline
    from tests.support.retrain_jobs import rtj

    model = unique("drift")
    version, data = register_with_baseline(mlflow_uri, model)
    fake_kfp.hold = True  # the job it creates stays running: a second period must not fire
    try:
        # two workers in the pod: each scrape reaches one, which adds up both drift windows
        env.apply_md(
            "watched",
            model,
            model={"name": model, "version": version, "alias": None},
            runtime={"image": RUNTIME_IMAGE, "env": [*BLAS_ENV, TWO_WORKERS]},
            retraining={
                "onDrift": {"threshold": 0.25, "for": "3s"},
                "historyLimit": 2,
                "template": rtj("x", model, backend="kfp")["spec"],
            },
        )
        env.md.wait_serving("watched", version)
        s = env.served("watched", model)
        expr = f'max(mlops_drift_psi{{namespace="{env.ns}",model_deployment="watched"}})'

        def send(df: Any) -> None:
            split = {"columns": list(df.columns), "data": df.to_numpy().tolist()}
            r = requests.post(f"{s.url}/invocations", json={"dataframe_split": split}, timeout=30)
            assert r.status_code == 200, r.text

        rng = np.random.default_rng(0)
        for _ in range(2):  # in-distribution first: PSI stays low, nothing fires
            send(data.sample(500, replace=True, random_state=rng))
        low = eventually(lambda: prometheus.query(expr), 60, 0.5, "PSI scraped from the pod")
        assert float(low[0]["value"][1]) < 0.1
        (series,) = prometheus.query(f'mlops_drift_psi{{namespace="{env.ns}"}}')
        assert series["metric"]["job"] == "pods"  # found through the cluster, not a file
        assert series["metric"]["pod"].startswith("watched-")
        workers = prometheus.query(f'mlops_runtime_workers{{namespace="{env.ns}"}}')
        assert [float(w["value"][1]) for w in workers] == [2.0]  # one scrape spoke for both
        assert env.rtj.of("watched") == []
        send(data.sample(2000, replace=True, random_state=rng) + 2 * data.std())
        jobs = eventually(lambda: env.rtj.of("watched"), 90, 0.5, "RetrainJob by drift")
        assert len(jobs) == 1
        assert jobs[0]["metadata"]["labels"]["mlops.dev/trigger"] == "drift"
        time.sleep(8)  # drift goes on for more periods while the job runs: no second job
        assert len(env.rtj.of("watched")) == 1
    finally:
        fake_kfp.release()
