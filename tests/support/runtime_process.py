"""The model server (`mlops-runtime`) as a process on the host, labelled as a ModelDeployment's
pod would be (MLOPS_MODEL_DEPLOYMENT, POD_NAMESPACE), for tests whose pods are simulated by
kwok but whose metrics must be real (a Prometheus scrapes this process instead of a pod)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cluster import eventually
from tests.support.mlflow_server import free_port


@dataclass
class RuntimeProcess:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path

    def invocations(self, rows: Any) -> int:
        """POST a DataFrame to /invocations; the HTTP status."""
        body = json.dumps(
            {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
        ).encode()
        req = urllib.request.Request(
            f"{self.url}/invocations", body, {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)


def start_runtime(
    model_uri: str, name: str, namespace: str, mlflow_uri: str, log: Path, **env: str
) -> RuntimeProcess:
    port = free_port()
    out = open(log, "ab")  # noqa: SIM115 - lives as long as the process
    p = subprocess.Popen(
        [sys.executable, "-m", "mlops_operator.runtime.cli"],
        env={
            **os.environ,
            "MODEL_URI": model_uri,
            "MODEL_NAME": name,
            "MLOPS_MODEL_DEPLOYMENT": name,
            "POD_NAMESPACE": namespace,
            "MLFLOW_TRACKING_URI": mlflow_uri,
            "PORT": str(port),
            "MLOPS_HOST": "127.0.0.1",
            **env,
        },
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    rt = RuntimeProcess(p, f"http://127.0.0.1:{port}", port, log)

    def ready() -> bool:
        if p.poll() is not None:
            raise AssertionError(f"runtime exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{rt.url}/v2/health/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    eventually(ready, timeout=120, what="runtime ready")
    return rt
