"""Which cluster the tests use, and small helpers on top of the kubernetes client.

The local control plane (hack/localcluster.py) unless MLOPS_TEST_CONTEXT names a context of
the kubeconfig in KUBECONFIG (e.g. kind-mlops for `make e2e`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
LOCAL_KUBECONFIG = ROOT / ".cluster" / "kubeconfig"

T = TypeVar("T")


def ensure_cluster() -> tuple[str, str | None]:
    """(kubeconfig path, context) of the cluster the tests run against."""
    context = os.environ.get("MLOPS_TEST_CONTEXT")
    if context:
        return os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config")), context
    subprocess.run([sys.executable, str(ROOT / "hack" / "localcluster.py"), "up"], check=True)
    return str(LOCAL_KUBECONFIG), None


def eventually(
    fn: Callable[[], T | None], timeout: float = 60, interval: float = 0.25, what: str = "condition"
) -> T:
    """Poll fn until it returns something truthy; fail with the last value or error."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except AssertionError as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s; last: {last!r}")
        time.sleep(interval)


def local_pid(name: str) -> int | None:
    """The pid of a process of the local control plane (hack/localcluster.py's pid file), or
    None when the tests run against another cluster (MLOPS_TEST_CONTEXT)."""
    if os.environ.get("MLOPS_TEST_CONTEXT"):
        return None
    f = LOCAL_KUBECONFIG.parent / f"{name}.pid"
    return int(f.read_text()) if f.exists() else None
