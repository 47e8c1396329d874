"""Several worker processes on one port (MLOPS_WORKERS above 1): the supervisor and the socket.

Why processes: the model's predict holds the GIL for most of its time, so one process uses one
core however many requests wait; N processes, each with its own copy of the model, use N. Why
SO_REUSEPORT rather than a listening socket handed down: each worker has its own accept queue,
and the kernel spreads new connections over the workers evenly, so a worker busy with a long
call does not also take the next connections, and a worker needs nothing from the supervisor.

The supervisor (the container's PID 1) does no serving. It makes the private directory the
workers meet in (runtime/peers.py), starts them, hands SIGTERM and SIGINT on to them, and
waits. A worker that ends by itself (its model could not load, or it crashed) ends the pod:
the supervisor stops the others and exits with that worker's status, so the kubelet restarts
the container with back-off and the pod's termination message is the failing worker's last
line, as with one worker. Restarting a single worker in place would leave a pod serving from
fewer copies than it was sized for while reporting Ready.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from mlops_operator.runtime.config import RuntimeConfig
from mlops_operator.runtime.peers import WorkerGroup

log = logging.getLogger("mlops_operator.runtime")

PR_SET_PDEATHSIG = 1
# after SIGTERM a worker drains for up to MLOPS_DRAIN_SECONDS; past that and this, it is killed
KILL_GRACE_SECONDS = 10.0


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port that other processes of this user may bind as well."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _die_with_parent() -> None:
    # a supervisor killed outright must not leave workers holding the port (outside a
    # container nothing else would end them)
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def supervise(cfg: RuntimeConfig) -> int:
    """Run cfg.workers workers until a signal or until one of them ends; their exit status."""
    meet = Path(tempfile.mkdtemp(prefix="mlops-runtime-"))
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def pass_on(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            log.info("signal %s: passing it on to %d workers", sig, len(procs))
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(sig)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    log.info("supervisor: starting %d workers on port %d", cfg.workers, cfg.port)
    try:
        for i in range(cfg.workers):
            if stopping:  # a signal while starting: the ones not yet started never are
                break
            cmd = [sys.executable, "-m", "mlops_operator.runtime.cli"]
            cmd += ["--worker", str(i), "--worker-dir", str(meet)]
            # a group of their own: a terminal's Ctrl-C reaches the supervisor alone, which
            # hands it on once (a second signal would make uvicorn skip the drain)
            procs.append(subprocess.Popen(cmd, preexec_fn=_die_with_parent, process_group=0))
        failed = _wait(procs, lambda: stopping)
        if failed is not None:
            index, status = failed
            log.error("worker %d ended by itself (status %s): stopping the others", index, status)
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + cfg.drain_seconds + cfg.drain_delay_seconds
        deadline += KILL_GRACE_SECONDS
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if failed is None:
            return max((_status(p.returncode) for p in procs), default=0)
        index, status = failed
        error = WorkerGroup(index, cfg.workers, meet).error_file(index)
        if error.exists():  # the pod's termination message: the failing worker's last line
            print(error.read_text(), file=sys.stderr)
        return status or 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(meet, ignore_errors=True)


def _status(code: int) -> int:
    # Popen's -N (ended by signal N) as a shell would report it
    return 128 - code if code < 0 else code


def _wait(
    procs: list[subprocess.Popen[bytes]], stopping: Callable[[], bool]
) -> tuple[int, int] | None:
    """Until a signal arrives (None) or a worker ends by itself: (its index, its status)."""
    while not stopping():
        for i, p in enumerate(procs):
            status = p.poll()
            if status is not None and not stopping():
                return i, _status(status)
        time.sleep(0.2)
    return None
