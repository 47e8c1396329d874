"""The operator as a real process (`mlops-operator run`), as users run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_operator(kubeconfig: str, mlflow_uri: str, log: Path, **env: str) -> OperatorProcess:
    full = dict(
        os.environ,
        KUBECONFIG=kubeconfig,
        MLFLOW_TRACKING_URI=mlflow_uri,
        MLOPS_RESYNC_SECONDS="3",
        MLOPS_RUNTIME_IMAGE="mlops-operator/runtime:test",
        MLOPS_METRICS_PORT="0",
        MLOPS_LOG_LEVEL="INFO",
        **env,
    )
    out = open(log, "ab")  # noqa: SIM115 - lives as long as the process
    p = subprocess.Popen(
        [sys.executable, "-m", "mlops_operator.cli", "run"],
        env=full,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    op = OperatorProcess(p, log)
    deadline = time.monotonic() + 60
    while "mlops-operator started" not in op.logs():
        if p.poll() is not None:
            raise RuntimeError(f"operator exited ({p.returncode}):\n{op.logs()[-3000:]}")
        if time.monotonic() > deadline:
            op.stop(signal.SIGKILL)
            raise RuntimeError(f"operator did not start:\n{op.logs()[-3000:]}")
        time.sleep(0.2)
    return op
