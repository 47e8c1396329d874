"""Operator processes for the install and high-availability tests.

Like operator_process.start_operator, but the caller says which log line means "up": a
standby never logs "mlops-operator started", it logs that it stands by.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.operator_process import OperatorProcess

STARTED = "mlops-operator started"
STANDING_BY = "leader election: standing by"


def launch(
    kubeconfig: str, mlflow_uri: str, log: Path, wait_for: str = STARTED, **env: str
) -> OperatorProcess:
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
    out = open(log, "ab")  # noqa: SIM115 - lives as long as the process
    p = subprocess.Popen(
        [sys.executable, "-m", "mlops_operator.cli", "run"],
        env=full,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    op = OperatorProcess(p, log, ours)
    deadline = time.monotonic() + 60
    while wait_for not in op.logs():
        if p.poll() is not None:
            raise RuntimeError(f"operator exited ({p.returncode}):\n{op.logs()[-3000:]}")
        if time.monotonic() > deadline:
            op.stop(signal.SIGKILL)
            raise RuntimeError(f"operator did not log {wait_for!r}:\n{op.logs()[-3000:]}")
        time.sleep(0.2)
    return op
