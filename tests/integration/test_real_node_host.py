"""The real node leaves the machine as it found it.

kubelet, kube-proxy, containerd and the CNI plugin change the host: sysctls, the nftables
ruleset, links, routes, mounts, network namespaces, cgroups, directories. The harness records
all of that before it starts the node (HOST_DIR/before.json); here the node is stopped with a
pod running on it and the host compared with that record, then started again for the tests
that follow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from tests.support.cluster import eventually
from tests.support.realnode import NODE_NAME, RUNTIME_IMAGE, SCHEDULING, harness, node_state

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("real_node")]


def test_a_second_cluster_on_the_machine_gets_no_real_node(tmp_path: Path) -> None:
    """One node per machine: while this cluster holds it, another cluster directory is told
    why in one line (and `localcluster.py up` there carries on with kwok nodes only)."""
    got = harness.claim(tmp_path / "other-cluster")
    assert isinstance(got, str) and str(ROOT / ".cluster") in got and "\n" not in got
    assert node_state().real  # ours is untouched


def test_node_down_restores_the_host_and_up_brings_the_node_back(
    kube: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube)
    before = json.loads((harness.HOST_DIR / "before.json").read_text())
    # a running pod: its sandbox, veth, netns, mounts and cgroups must all go at `down`
    core.create_namespaced_pod(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "sleeper"},
            "spec": {
                **SCHEDULING,
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "c",
                        "image": RUNTIME_IMAGE,
                        "command": ["python", "-c", "import time; time.sleep(3600)"],
                    }
                ],
            },
        },
    )
    eventually(
        lambda: core.read_namespaced_pod("sleeper", namespace).status.phase == "Running",
        90,
        0.5,
        "the pod running on the real node",
    )
    assert harness.host_state() != before  # the node did change the host

    subprocess.run(
        [sys.executable, str(ROOT / "hack" / "localcluster.py"), "node-down"], check=True
    )
    after = harness.host_state()
    for key in before:
        assert after[key] == before[key], f"{key} differs after node-down"
    assert not node_state().real

    subprocess.run([sys.executable, str(ROOT / "hack" / "localcluster.py"), "up"], check=True)
    assert node_state().real
    nodes = client.CoreV1Api(kube).list_node(label_selector="mlops.dev/node-kind=real").items
    assert [n.metadata.name for n in nodes] == [NODE_NAME]


def test_a_node_whose_processes_were_killed_is_taken_over_by_the_next_up(
    kube: client.ApiClient,
) -> None:
    """As when CI starts right after a session's processes were all killed: the lock's keeper
    and the node's daemons are gone, their bridge, rules and containers are not."""
    import os
    import signal

    owner = json.loads((harness.HOST_DIR / "owner.json").read_text())
    for name in ("kube-proxy", "kubelet", "containerd"):
        os.kill(int(owner["pids"][name]), signal.SIGKILL)
    os.kill(int(owner["keeper"]), signal.SIGKILL)
    eventually(lambda: not node_state().real, 10, 0.1, "the lock free once its keeper is gone")
    assert "mlops0" in harness.host_state()["links"]  # left behind

    subprocess.run([sys.executable, str(ROOT / "hack" / "localcluster.py"), "up"], check=True)
    assert node_state().real
    new = json.loads((harness.HOST_DIR / "owner.json").read_text())
    assert new["keeper"] != owner["keeper"]
    assert all(new["pids"][n] != owner["pids"][n] for n in ("kubelet", "containerd"))
    # the record of the host it restores at the end is still the one from before any node
    before = json.loads((harness.HOST_DIR / "before.json").read_text())
    assert "mlops0" not in before["links"]
    eventually(
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for c in client.CoreV1Api(kube).read_node(NODE_NAME).status.conditions
        ),
        60,
        0.5,
        "the node Ready again",
    )
