"""The operator as a real process: `mlops-operator run` as users run it, started through the
tests' entry point (operator_main.py), which adds only the test seams."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def start_again(self, **extra: str) -> OperatorProcess:
        """Stop, then start a new process with the original settings plus `extra` (only for
        this process), logging to the same file."""
        self.stop()
        base = {k: v for k, v in self.env.items() if k.startswith("MLOPS_")}
        new = start_operator(
            self.env["KUBECONFIG"], self.env["MLFLOW_TRACKING_URI"], self.log, **{**base, **extra}
        )
        self.process = new.process
        return self

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


STARTED = "mlops-operator started"


def start_operator(
    kubeconfig: str, mlflow_uri: str, log: Path, wait_for: str = STARTED, **env: str
) -> OperatorProcess:
    """Start `mlops-operator run` and wait until its log shows `wait_for` (a standby logs that
    it stands by instead of STARTED)."""
    ours = {
        "KUBECONFIG": kubeconfig,
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MLOPS_RESYNC_SECONDS": "3",
        "MLOPS_RUNTIME_IMAGE": "mlops-operator/runtime:test",
        "MLOPS_METRICS_PORT": "0",
        "MLOPS_LOG_LEVEL": "INFO",
        **env,
    }
    full = {**os.environ, **ours}
    offset = len(log.read_text(errors="replace")) if log.exists() else 0
    out = open(log, "ab")  # noqa: SIM115 - lives as long as the process
    p = subprocess.Popen(
        [sys.executable, "-m", "tests.support.operator_main", "run"],
        cwd=ROOT,
        env=full,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    op = OperatorProcess(p, log, ours)
    deadline = time.monotonic() + 60
    while wait_for not in op.logs()[offset:]:
        if p.poll() is not None:
            raise RuntimeError(f"operator exited ({p.returncode}):\n{op.logs()[-3000:]}")
        if time.monotonic() > deadline:
            op.stop(signal.SIGKILL)
            raise RuntimeError(f"operator did not log {wait_for!r}:\n{op.logs()[-3000:]}")
        time.sleep(0.2)
    return op
