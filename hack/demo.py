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


def mlflow_up() -> None:
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
                "127.0.0.1",
                "--port",
                str(MLFLOW_PORT),
                "--workers",
                "1",
            ],
            {
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "PATH": f"{venv_bin}:{os.environ['PATH']}",
            },
        )
    wait_for(
        lambda: urllib.request.urlopen(f"{MLFLOW_URI}/health", timeout=2).status == 200,
        "MLflow /health",
    )


def operator_up() -> None:
    start_background(
        "operator",
        [sys.executable, "-m", "mlops_operator.cli", "run"],
        {
            "KUBECONFIG": str(KUBECONFIG),
            "MLFLOW_TRACKING_URI": MLFLOW_URI,
            "MLOPS_RESYNC_SECONDS": "5",
            "MLOPS_METRICS_PORT": "0",
            "MLOPS_RUNTIME_IMAGE": "mlops-operator/runtime:dev",
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


def up() -> None:
    STATE.mkdir(exist_ok=True)
    t0 = time.monotonic()
    with step("local Kubernetes control plane (upstream binaries, kwok nodes)"):
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
                "PRODUCT:.metadata.labels.nvidia\\.com/gpu\\.product",
                capture=True,
            )
        )
    with step("CRDs"):
        kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
    with step(f"MLflow server at {MLFLOW_URI}"):
        mlflow_up()
    with step("register iris-classifier v1 (scikit-learn, iris) and point @champion at it"):
        from tests.support.models import register_iris

        v = register_iris(MLFLOW_URI, "iris-classifier", alias="champion")
        print(f"    iris-classifier version {v} is @champion")
    with step("start the operator (mlops-operator run)"):
        operator_up()
    with step("apply the examples (a CPU and a GPU model deployment)"):
        if f"namespace/{NAMESPACE}" not in kubectl("get", "ns", "-o", "name", capture=True):
            kubectl("create", "namespace", NAMESPACE)
        for f in sorted((ROOT / "examples").glob("model-deployment-*.yaml")):
            kubectl("-n", NAMESPACE, "apply", "--server-side", "-f", str(f))
    with step("wait until both are Ready"):
        for name in ("iris-classifier", "iris-classifier-gpu"):
            wait_for(lambda n=name: ready_version(n), f"{name} Ready")
        print(kubectl("-n", NAMESPACE, "get", "mdep", capture=True))
    with step("register v2 and move @champion: the operator rolls both forward"):
        v2 = register_iris(MLFLOW_URI, "iris-classifier", alias="champion", max_iter=400)
        for name in ("iris-classifier", "iris-classifier-gpu"):
            wait_for(lambda n=name: ready_version(n) == v2, f"{name} at version {v2}")
        print(kubectl("-n", NAMESPACE, "get", "mdep,deploy,pods", "-o", "wide", capture=True))
    print(f"""
Everything is up ({time.monotonic() - t0:.0f}s). Look around:
  export KUBECONFIG={KUBECONFIG} PATH={BIN}:$PATH
  kubectl -n {NAMESPACE} get mdep
  kubectl -n {NAMESPACE} describe mdep iris-classifier-gpu
  MLflow UI: {MLFLOW_URI}      operator log: {STATE / "operator.log"}
Stop it all with: make demo-down""")


def down() -> None:
    for name in ("operator", "mlflow"):
        f = STATE / f"{name}.pid"
        if alive(name):
            pid = int(f.read_text())
            os.killpg(pid, signal.SIGTERM)
            print(f"stopped {name} (pid {pid})")
        f.unlink(missing_ok=True)
    subprocess.run([sys.executable, str(ROOT / "hack" / "localcluster.py"), "down"], check=False)


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
