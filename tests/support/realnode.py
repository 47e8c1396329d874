"""The real kubelet node of the local cluster (hack/realnode.py), as the tests see it.

Tests on real pods carry the `realnode` marker. With CI=true a missing real node fails them (CI
must test what it claims to); elsewhere they skip with the one-line reason the harness gave.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support.prometheus import PodDiscovery

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".cluster"
sys.path.insert(0, str(ROOT / "hack"))
import node_usage  # noqa: E402
import realnode as harness  # noqa: E402

__all__ = [
    "BRIDGE_IP",
    "NODE_NAME",
    "OPERATOR_IMAGE",
    "RUNTIME_IMAGE",
    "SCHEDULING",
    "ensure_images",
    "harness",
    "node_state",
    "node_usage",
    "pod_discovery",
    "require_real_node",
    "stop_node",
]

NODE_NAME = harness.NODE_NAME
BRIDGE_IP = harness.BRIDGE_IP
# containerd reads a bare `mlops-operator/runtime:dev` as docker.io/...; pods use the bare name
RUNTIME_IMAGE = "mlops-operator/runtime:dev"
OPERATOR_IMAGE = "mlops-operator/operator:dev-pipelines"
SCHEDULING = harness.POD_SCHEDULING  # pods that ask for the real node


@dataclass(frozen=True)
class NodeState:
    real: bool
    reason: str


def node_state() -> NodeState:
    """What the last `localcluster.py up` of this checkout said about the real node."""
    if os.environ.get("MLOPS_TEST_CONTEXT"):
        return NodeState(False, "tests run against MLOPS_TEST_CONTEXT, not the local cluster")
    return NodeState(*harness.node_of_cluster(STATE))


def require_real_node() -> None:
    st = node_state()
    if st.real:
        return
    msg = f"no real node: {st.reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{msg} (CI=true: the real-node tests must run)", pytrace=False)
    pytest.skip(msg)


def ensure_images() -> None:
    """Build/load the images (seconds when nothing changed: hack/images.sh is cached)."""
    r = subprocess.run(
        ["bash", str(ROOT / "hack" / "images.sh")], capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        raise RuntimeError(f"hack/images.sh failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    for image in (RUNTIME_IMAGE,):
        if not harness.image_present(f"docker.io/{image}"):
            raise RuntimeError(f"{image} is not in the node's containerd:\n{r.stderr[-3000:]}")


def stop_node() -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "hack" / "localcluster.py"), "node-down"], check=True
    )


def pod_discovery(namespaces: str) -> PodDiscovery:
    """Prometheus' view of the model pods on the real node (tests/support/prometheus.py)."""
    from tests.support.prometheus import PodDiscovery

    port = json.loads((STATE / "ports.json").read_text())["apiserver"]
    pki = STATE / "pki"
    return PodDiscovery(
        api_server=f"https://127.0.0.1:{port}",
        ca_file=str(pki / "ca.crt"),
        cert_file=str(pki / "admin.crt"),
        key_file=str(pki / "admin.key"),
        namespaces=namespaces,
        node=NODE_NAME,
        pod_range=r"10\.88\.\d+\.\d+",
    )
