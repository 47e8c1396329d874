"""A real `mlflow server` on 127.0.0.1 (SQLite backend, local artifact root).

Used by the pytest fixture, the benchmarks and `make demo`. One worker and no job
consumers: ~10 s to /health and ~500 MB instead of ~15 s and 1.7 GB with the defaults.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MlflowServer:
    url: str
    root: Path
    process: subprocess.Popen[bytes]
    port: int
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=dict)  # added to the server's environment

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def restart(self, timeout: float = 90) -> None:
        """Start again on the same port and store (for outage tests)."""
        self.stop()
        self.process = _spawn(self.root, self.port, self.host, self.env)
        wait_healthy(self, timeout)


def _spawn(root: Path, port: int, host: str, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        **extra,
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        # the venv's bin must be on PATH: mlflow execs uvicorn/gunicorn from it
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    )
    log = open(root / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--serve-artifacts",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def wait_healthy(server: MlflowServer, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = (server.root / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"mlflow server exited ({server.process.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"mlflow server at {server.url} not healthy after {timeout}s")


def start_mlflow(
    root: Path,
    port: int | None = None,
    timeout: float = 90,
    host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
) -> MlflowServer:
    """host: the address it listens on; clients on this machine use loopback either way.
    0.0.0.0 makes it reachable from the real node's pods too, on the bridge address (which
    comes and goes with the node, so it cannot be the one address it listens on).
    env: added to its environment (mlflow_webhooks.local_mlflow_env(), for webhooks)."""
    port = port or free_port()
    extra = dict(env or {})
    proc = _spawn(root, port, host, extra)
    server = MlflowServer(f"http://127.0.0.1:{port}", root, proc, port, host, extra)
    try:
        wait_healthy(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server
