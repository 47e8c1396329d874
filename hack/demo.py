#!/usr/bin/env python3
"""`make demo`: the main job on the embedded default, step by step, with timings.

    python hack/demo.py up      local cluster + MLflow + operator + examples; leaves them running
    python hack/demo.py down    stops what `up` started (the cluster too)

State (logs, pids, MLflow store) lives in .demo/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STATE = ROOT / ".demo"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
BIN = Path(os.environ.get("MLOPS_CACHE_DIR", Path.home() / ".cache" / "mlops-operator")) / "bin"
MLFLOW_PORT = int(os.environ.get("MLOPS_DEMO_MLFLOW_PORT", "5055"))
MLFLOW_URI = f"http://127.0.0.1:{MLFLOW_PORT}"
NAMESPACE = "mlops-demo"
CANARY = "iris-canary"  # examples/model-deployment-canary.yaml
# the demo's pace for it: seconds where the example has production's minutes
CANARY_PACE: dict[str, Any] = {
    "replicas": 2,
    "slo": {"latency": {"p99": "200ms"}, "errorRate": 0.01, "window": "30s"},
    "rollout": {
        "strategy": "Canary",
        "steps": [{"setWeight": 50}, {"pause": {"duration": "20s"}}, {"analysis": {}}],
        "analysis": {"interval": "10s", "failureLimit": 2, "minRequests": 10},
        "onFailure": {"revertAlias": True},
    },
}
sys.path.insert(0, str(ROOT / "hack"))
import realnode  # noqa: E402

from tests.support import mlflow_webhooks  # noqa: E402

# the operator's MLflow webhook receiver (docs/webhooks.md); a new secret for each demo
WEBHOOK_PORT = int(os.environ.get("MLOPS_DEMO_WEBHOOK_PORT", "5056"))
WEBHOOK_URL = f"https://127.0.0.1:{WEBHOOK_PORT}/webhooks/mlflow"
WEBHOOK_SECRET = secrets.token_hex(32)

# where the model pods download from: the bridge address when the real node serves them
POD_MLFLOW_URI = f"http://{realnode.BRIDGE_IP}:{MLFLOW_PORT}"


@contextmanager
def step(what: str) -> Iterator[None]:
    print(f"==> {what}", flush=True)
    t0 = time.monotonic()
    yield
    print(f"    done in {time.monotonic() - t0:.1f}s", flush=True)


def kubectl(*args: str, capture: bool = False) -> str:
    out = subprocess.run(
        [str(BIN / "kubectl"), f"--kubeconfig={KUBECONFIG}", *args],
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return out.stdout or ""


def alive(name: str) -> bool:
    f = STATE / f"{name}.pid"
    if not f.exists():
        return False
    try:
        os.kill(int(f.read_text()), 0)
        return True
    except ProcessLookupError:
        return False


def start_background(name: str, cmd: list[str], env: dict[str, str]) -> None:
    if alive(name):
        return
    log = open(STATE / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    p = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (STATE / f"{name}.pid").write_text(str(p.pid))


def wait_for(fn: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}; logs are in {STATE}")


def mlflow_up(host: str) -> None:
    import urllib.request

    if not alive("mlflow"):
        (STATE / "mlflow").mkdir(parents=True, exist_ok=True)
        venv_bin = str(Path(sys.executable).parent)
        start_background(
            "mlflow",
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{STATE / 'mlflow' / 'mlflow.db'}",
                "--artifacts-destination",
                str(STATE / "mlflow" / "artifacts"),
                "--serve-artifacts",
                "--host",
                host,
                "--port",
                str(MLFLOW_PORT),
                "--workers",
                "1",
            ],
            {
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "PATH": f"{venv_bin}:{os.environ['PATH']}",
                # it delivers registry webhooks to the operator on this machine (local settings)
                **mlflow_webhooks.local_mlflow_env(),
            },
        )
    wait_for(
        lambda: urllib.request.urlopen(f"{MLFLOW_URI}/health", timeout=2).status == 200,
        "MLflow /health",
    )


def operator_up(env: dict[str, str]) -> None:
    start_background(
        "operator",
        [sys.executable, "-m", "mlops_operator.cli", "run"],
        {
            "KUBECONFIG": str(KUBECONFIG),
            "MLFLOW_TRACKING_URI": MLFLOW_URI,
            "MLOPS_RESYNC_SECONDS": "5",
            "MLOPS_METRICS_PORT": "0",
            "MLOPS_RUNTIME_IMAGE": "mlops-operator/runtime:dev",
            "MLOPS_WORK_DIR": str(STATE / "runs"),
            # the demo's own namespace only: tests or another operator may share the cluster
            "MLOPS_NAMESPACES": NAMESPACE,
            **mlflow_webhooks.receiver_settings(WEBHOOK_PORT, WEBHOOK_SECRET),
            **env,
        },
    )
    wait_for(
        lambda: "mlops-operator started" in (STATE / "operator.log").read_text(),
        "the operator to start",
    )


def ready_version(name: str) -> str | None:
    o = json.loads(kubectl("-n", NAMESPACE, "get", "mdep", name, "-o", "json", capture=True))
    st = o.get("status", {})
    ok = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))
    return st.get("model", {}).get("version") if ok else None


def run_retrain_job(name: str, checks: dict[str, Any] | None = None, **params: object) -> str:
    """Apply a RetrainJob on iris, wait until it is decided, print the outcome; -> version."""
    doc = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "RetrainJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {"name": "iris-classifier"},
            "backend": "local",
            "pipeline": {
                "name": "tabular-train",
                "parameters": {"data_uri": "sklearn:iris", **params},
            },
            "promotion": {
                "metric": "accuracy",
                "alias": "champion",
                **({"checks": checks} if checks else {}),
            },
        },
    }
    subprocess.run(
        [str(BIN / "kubectl"), f"--kubeconfig={KUBECONFIG}", "apply", "--server-side", "-f", "-"],
        input=json.dumps(doc),
        text=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )

    def decided() -> dict[str, Any] | None:
        o = json.loads(kubectl("-n", NAMESPACE, "get", "rtj", name, "-o", "json", capture=True))
        conds = {c["type"]: c for c in (o.get("status") or {}).get("conditions", [])}
        s = conds.get("Succeeded")
        if s and s["status"] == "False":
            raise SystemExit(f"RetrainJob {name} failed: {s['reason']}: {s['message']}")
        return o if s and "Promoted" in conds else None

    o = wait_for(decided, f"RetrainJob {name}", timeout=600)
    result = o["status"]["result"]
    promoted = next(c for c in o["status"]["conditions"] if c["type"] == "Promoted")
    print(
        f"    version {result['version']}: accuracy {result['metrics'].get('accuracy', 0):.3f}; "
        f"promoted={result['promoted']} ({promoted['reason']}: {promoted['message']})"
    )
    for c in result.get("checks") or []:
        verdict = "passed" if c["passed"] else "FAILED"
        print(f"      {c['check']:<28} {verdict:<7} {c.get('message', '')}")
    return str(result["version"])


def reset() -> None:
    """Start from scratch: a demo re-run should show the same story, not the last one's."""
    stop_processes()
    if f"namespace/{NAMESPACE}" in kubectl("get", "ns", "-o", "name", capture=True):
        # no operator runs now to release the finalizers of unfinished RetrainJobs
        for rtj in kubectl("-n", NAMESPACE, "get", "rtj", "-o", "name", capture=True).split():
            kubectl(
                "-n",
                NAMESPACE,
                "patch",
                rtj,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
            )
        kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s")
    shutil.rmtree(STATE, ignore_errors=True)


def service_url(name: str) -> str:
    """The Service's address, once it answers (its endpoints follow Ready by a moment)."""
    import urllib.request

    svc = json.loads(kubectl("-n", NAMESPACE, "get", "svc", name, "-o", "json", capture=True))
    url = f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}"
    wait_for(
        lambda: urllib.request.urlopen(f"{url}/v2/health/ready", timeout=5).status == 200,
        f"{url} answering",
        30,
    )
    return url


def iris_rows(n: int, seed: int = 0) -> Any:
    from sklearn.datasets import load_iris

    return (
        load_iris(as_frame=True)
        .frame.drop(columns="target")
        .sample(n, replace=True, random_state=seed)
    )


def invoke(url: str, rows: Any, http: Any = None) -> list[Any]:
    import requests

    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
    r = (http or requests).post(f"{url}/invocations", json=body, timeout=10)
    r.raise_for_status()
    return list(r.json()["predictions"])


class Traffic:
    """Requests through the Service, one after another, until stopped: what a client sees.
    `fresh`: a new connection per request, as many clients spread over the pods (one
    keep-alive connection stays with one pod, which a canary must not depend on)."""

    def __init__(self, url: str, fresh: bool = False) -> None:
        import threading

        self.fresh = fresh
        self.url, self.ok, self.failed = url, 0, 0
        self.latencies: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        import requests

        batches = [iris_rows(4, seed=seed) for seed in range(20)]
        with requests.Session() as http:
            for n in range(10**9):
                if self.stop.is_set():
                    return
                t = time.perf_counter()
                try:
                    invoke(self.url, batches[n % len(batches)], None if self.fresh else http)
                    self.ok += 1
                except Exception:
                    self.failed += 1
                self.latencies.append(time.perf_counter() - t)

    def finish(self, during: str = "the roll-forward") -> str:
        self.stop.set()
        self.thread.join(15)
        lat = sorted(self.latencies) or [0.0]
        return (
            f"{self.ok + self.failed} requests during {during}, {self.failed} failed; "
            f"p50 {lat[len(lat) // 2] * 1000:.1f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms"
        )


def prometheus_up() -> str:
    """A real Prometheus that finds the model pods through the API server."""
    from tests.support.prometheus import start_prometheus
    from tests.support.realnode import pod_discovery

    server = start_prometheus(STATE / "prometheus", pod_discovery(NAMESPACE))
    (STATE / "prometheus.pid").write_text(str(server.process.pid))
    return server.url


def apply_examples(real: bool) -> None:
    import yaml

    for f in sorted((ROOT / "examples").glob("model-deployment-*.yaml")):
        doc = yaml.safe_load(f.read_text())
        if (doc["spec"].get("rollout") or {}).get("strategy") == "Canary":
            if not real:
                print(f"    {f.name} left out: simulated pods export no metrics to judge by")
                continue
            doc["spec"].update(CANARY_PACE)
        if real and not doc["spec"].get("gpu"):
            # the demo's own copy asks for the real node (examples stay cluster-neutral)
            doc["spec"]["scheduling"] = realnode.POD_SCHEDULING
        subprocess.run(
            [str(BIN / "kubectl"), f"--kubeconfig={KUBECONFIG}", "-n", NAMESPACE, "apply",
             "--server-side", "-f", "-"],
            input=json.dumps(doc),
            text=True,
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip


def pods_and_nodes() -> str:
    out = kubectl(
        "-n", NAMESPACE, "get", "pods", "-l", "mlops.dev/model-deployment", "-o",
        "custom-columns=POD:.metadata.name,VERSION:.metadata.labels.mlops\\.dev/model-version,"
        "NODE:.spec.nodeName,PHASE:.status.phase",
        capture=True,
    )  # fmt: skip
    lines = out.rstrip().splitlines()
    real, simulated = "real pod (kubelet + containerd)", "simulated (kwok)"
    marked = [lines[0] + "   KIND"] + [
        f"{ln}   {real if realnode.NODE_NAME in ln else simulated}" for ln in lines[1:]
    ]
    return "\n".join(marked)


def up() -> None:
    t0 = time.monotonic()
    with step("local Kubernetes control plane (upstream binaries, kwok nodes, a real node)"):
        subprocess.run(
            [sys.executable, str(ROOT / "hack" / "localcluster.py"), "up"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(
            kubectl(
                "get",
                "nodes",
                "-L",
                "nvidia.com/gpu.product",
                "-o",
                "custom-columns=NODE:.metadata.name,"
                "GPUS:.status.allocatable.nvidia\\.com/gpu,"
                "MIG-1G:.status.allocatable.nvidia\\.com/mig-1g\\.10gb,"
                "PRODUCT:.metadata.labels.nvidia\\.com/gpu\\.product,"
                "RUNTIME:.status.nodeInfo.containerRuntimeVersion",
                capture=True,
            )
        )
    real, why = realnode.node_of_cluster(ROOT / ".cluster")
    if real:
        with step("images: runtime and operator, built here without Docker, loaded into the node"):
            # through the set-up step: a line at the start and end, progress, the output in a log
            subprocess.run(["bash", str(ROOT / "hack" / "setup.sh"), "images"], check=True)
    else:
        print(f"==> no real node ({why}): every pod is simulated by kwok")
    with step(f"reset: stop an earlier demo, delete namespace {NAMESPACE}, fresh MLflow"):
        reset()
        STATE.mkdir(exist_ok=True)
    with step("CRDs"):
        kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
    with step(f"MLflow server at {MLFLOW_URI}" + (f" (pods: {POD_MLFLOW_URI})" if real else "")):
        # reachable from the real node's pods on the bridge, which comes and goes with the node
        mlflow_up("0.0.0.0" if real else "127.0.0.1")
    env = {}
    if real:
        with step("Prometheus, finding the model pods through the API server"):
            env = {
                "MLOPS_RUNTIME_MLFLOW_URI": POD_MLFLOW_URI,
                "MLOPS_PROMETHEUS_URL": prometheus_up(),
            }
    with step("start the operator (mlops-operator run, a process on this machine)"):
        operator_up(env)
    with step(
        f"register the operator's webhook receiver ({WEBHOOK_URL}) in MLflow for alias events: "
        "an alias move reconciles its followers at once, not at the next resync"
    ):
        hook = mlflow_webhooks.register(MLFLOW_URI, "mlops-operator", WEBHOOK_URL, WEBHOOK_SECRET)
        result = mlflow_webhooks.send_test_delivery(MLFLOW_URI, hook)
        print(f"    MLflow's test delivery: HTTP {result.get('response_status')}, "
              f"{result.get('response_body') or result.get('error_message')}")  # fmt: skip
        if not result.get("success"):
            raise SystemExit(f"the webhook test delivery failed; logs are in {STATE}")
    with step(
        "train v1 with a RetrainJob (local backend; noisy labels make it a weak "
        "first model); no holder yet, so the gate promotes it to @champion"
    ):
        if f"namespace/{NAMESPACE}" not in kubectl("get", "ns", "-o", "name", capture=True):
            kubectl("create", "namespace", NAMESPACE)
        v1 = run_retrain_job("train-v1", label_noise=0.3)
    with step(
        "deploy: the examples follow iris-classifier@champion (CPU"
        + (" on the real node" if real else "")
        + ", and 1 x H100 on a simulated node)"
    ):
        apply_examples(real)
        followers = ["iris-classifier", "iris-classifier-gpu", *([CANARY] if real else [])]
        for name in followers:
            wait_for(lambda n=name: ready_version(n) == v1, f"{name} Ready at version {v1}", 300)
        print(kubectl("-n", NAMESPACE, "get", "mdep", capture=True))
        print(pods_and_nodes())
    traffic = None
    if real:
        url = service_url("iris-classifier")
        with step(f"predictions from the real pods, through the Service ({url}/invocations)"):
            rows = iris_rows(5)
            names = ["setosa", "versicolor", "virginica"]
            for row, p in zip(rows.to_numpy().tolist(), invoke(url, rows), strict=True):
                print(f"    {row} -> {p} ({names[int(p)] if str(p).isdigit() else p})")
        traffic = Traffic(url)
        canary_traffic = Traffic(service_url(CANARY), fresh=True)
    with step("retrain on shifted data with clean labels: better, so promoted"):
        v2 = run_retrain_job("retrain-shifted", shift_scale=1.0)
    if real:  # watched as it goes; the other two roll forward meanwhile
        canary_steps(v2, canary_traffic)
    with step(f"the operator rolls both deployments forward to version {v2}"):
        for name in ("iris-classifier", "iris-classifier-gpu"):
            wait_for(lambda n=name: ready_version(n) == v2, f"{name} at version {v2}", 300)
        if traffic:
            wait_for(lambda: v1 not in pods_and_nodes().split(), "the old pods to go", 120)
            print(f"    {traffic.finish()}")
        accepted = (STATE / "operator.log").read_text().count(": accepted (alias ")
        print(f"    alias deliveries accepted by the operator so far: {accepted}")
        print(kubectl("-n", NAMESPACE, "get", "mdep,rtj", capture=True))
    if real:
        show_pod_logs_and_drift(service_url("iris-classifier"), env["MLOPS_PROMETHEUS_URL"])
        bad_release(v2)
    with step("retrain once more with very noisy labels: worse, registered but not promoted"):
        run_retrain_job("retrain-noisy", label_noise=0.6)
    with step(
        "a RetrainJob with promotion.checks: the pipeline's check step loads the candidate "
        "through the runtime's loader and measures latency, robustness, per-slice accuracy and "
        "the signature; the gate judges them and the floor (accuracy 0.95). A candidate trained "
        "on partly wrong labels misses the floor, whatever the holder scores, and is far worse "
        "on long petals than overall (slices)"
    ):
        checks = {
            "floor": 0.95,
            "latency": {"p99": "200ms", "batchSize": 1},
            "robustness": {"noise": 0.05, "maxChangedShare": 0.2},
            "slices": {
                "columns": [{"name": "petal length (cm)", "bins": [0, 2.5, 5, 8]}],
                "minSize": 5,
                "maxGap": 0.2,
            },
            "signature": {},
        }
        run_retrain_job("retrain-floor", checks=checks, label_noise=0.3)
        print(kubectl("-n", NAMESPACE, "get", "rtj", capture=True))
    print(
        f"""
Everything is up ({time.monotonic() - t0:.0f}s). Look around:
  export KUBECONFIG={KUBECONFIG} PATH={BIN}:$PATH
  kubectl -n {NAMESPACE} get mdep,pods -o wide
  kubectl -n {NAMESPACE} logs deploy/iris-classifier      # a real pod"""
        + ("" if real else " (with a real node)")
        + f"""
  kubectl -n {NAMESPACE} describe mdep iris-classifier-gpu
  MLflow UI: {MLFLOW_URI}      operator log: {STATE / "operator.log"}
Stop it all with: make demo-down"""
    )


def rollout_of(name: str) -> dict[str, Any]:
    o = json.loads(kubectl("-n", NAMESPACE, "get", "mdep", name, "-o", "json", capture=True))
    return dict((o.get("status") or {}).get("rollout") or {})


def watch_rollout(name: str, version: str, until: str, timeout: float = 300) -> dict[str, Any]:
    """Print each change of the rollout of `version` (phase, weight, the last analysis with its
    numbers) until its phase is `until`."""
    t0, seen = time.monotonic(), None
    while time.monotonic() - t0 < timeout:
        ro = rollout_of(name)
        if ro.get("version") == version:
            last = ro.get("lastAnalysis") or {}
            key = (ro.get("phase"), ro.get("weight"), last.get("time"))
            if key != seen:
                seen = key
                said = f"{last['result']}: {last['message']}" if last else ro.get("message", "")
                print(
                    f"    {time.monotonic() - t0:5.1f}s  {ro.get('phase', ''):<11} canary at "
                    f"{ro.get('weight', 0):>3}%  {said}"
                )
            if ro.get("phase") == until:
                return ro
        time.sleep(1)
    raise SystemExit(f"timed out waiting for the rollout of {name} to be {until}")


def canary_steps(v2: str, traffic: Traffic) -> None:
    with step(
        f"{CANARY} (strategy Canary) takes version {v2} in steps: 50% of its pods, a pause, an "
        "analysis of the canary's own pods in Prometheus against spec.slo every 10s"
    ):
        watch_rollout(CANARY, v2, "Succeeded")
        wait_for(lambda: ready_version(CANARY) == v2, f"{CANARY} at version {v2}", 180)
        wait_for(lambda: not kubectl(
            "-n", NAMESPACE, "get", "deploy", "-l", "mlops.dev/track=canary", "-o", "name",
            capture=True,
        ).strip(), "the canary Deployment to go", 120)  # fmt: skip
        print(f"    {traffic.finish('the canary')}")


def bad_release(good: str) -> None:
    from mlflow.tracking import MlflowClient

    from tests.support.models import register_misbehaving

    with step(
        "a bad release: a version that fails on a third of the inputs, promoted by hand; "
        f"{CANARY}'s analysis finds it, rolls it back and moves @champion back"
    ):
        reg = MlflowClient(MLFLOW_URI)
        bad = register_misbehaving(
            MLFLOW_URI, "iris-classifier", iris_rows(50), fail_column="sepal width (cm)",
            fail_below=3.0,
        )  # fmt: skip
        traffic = Traffic(service_url(CANARY), fresh=True)
        reg.set_registered_model_alias("iris-classifier", "champion", bad)
        watch_rollout(CANARY, bad, "RolledBack", 240)
        o = json.loads(kubectl("-n", NAMESPACE, "get", "mdep", CANARY, "-o", "json", capture=True))
        stalled = next(c for c in o["status"]["conditions"] if c["type"] == "Stalled")
        print(f"    Stalled={stalled['status']} {stalled['reason']}: {stalled['message']}")
        wait_for(
            lambda: reg.get_model_version_by_alias("iris-classifier", "champion").version == good,
            "@champion back on the good version",
            60,
        )
        print(
            f"    @champion -> version {good} again; version {bad} is tagged mlops.dev/rolled-back"
        )
        # iris-classifier (RollingUpdate) had taken the bad version; the revert brings it back
        wait_for(lambda: ready_version("iris-classifier") == good, "iris-classifier back", 300)
        print(f"    {traffic.finish('the bad canary')} (the canary's share, until rolled back)")
        print(kubectl("-n", NAMESPACE, "get", "mdep", capture=True))


def show_pod_logs_and_drift(url: str, prometheus_url: str) -> None:
    import urllib.parse
    import urllib.request

    with step("kubectl logs of a model pod"):
        pod = kubectl(
            "-n", NAMESPACE, "get", "pods", "-l", "mlops.dev/model-deployment=iris-classifier",
            "-o", "jsonpath={.items[0].metadata.name}", capture=True,
        )  # fmt: skip
        for line in kubectl("-n", NAMESPACE, "logs", pod, "--tail=5", capture=True).splitlines():
            print(f"    {line[:160]}")
    with step(
        "the drift gauge, scraped by Prometheus from the pods: traffic like the original iris "
        "data, which version 2's baseline (it was trained on shifted data) sees as drift"
    ):
        for seed in range(10):
            invoke(url, iris_rows(200, seed=seed))
        q = urllib.parse.urlencode({"query": f'mlops_drift_psi{{namespace="{NAMESPACE}"}}'})

        def series(want: int) -> list[Any]:
            with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{q}", timeout=5) as r:
                got = list(json.load(r)["data"]["result"])
            return got if len(got) >= want else []

        try:  # one series per replica, once each has seen enough rows
            found = wait_for(lambda: series(2), "mlops_drift_psi of both pods", 30)
        except SystemExit:
            found = wait_for(lambda: series(1), "mlops_drift_psi in Prometheus", 30)
        for s in found:
            m, psi = s["metric"], float(s["value"][1])
            band = "stable" if psi < 0.1 else "moderate" if psi <= 0.25 else "significant"
            print(f"    mlops_drift_psi{{pod={m.get('pod')}}} = {psi:.3f}  ({band} drift)")


def down() -> None:
    stop_processes()
    subprocess.run([sys.executable, str(ROOT / "hack" / "localcluster.py"), "down"], check=False)


def stop_processes() -> None:
    for name in ("operator", "mlflow", "prometheus"):
        f = STATE / f"{name}.pid"
        if alive(name):
            pid = int(f.read_text())
            os.killpg(pid, signal.SIGTERM)
            print(f"stopped {name} (pid {pid})")
        f.unlink(missing_ok=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("command", choices=["up", "down"])
    a = ap.parse_args()
    up() if a.command == "up" else down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
