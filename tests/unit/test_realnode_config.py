"""The real node's daemon configurations (hack/realnode.py), read as the daemons read them.

What these pin is what keeps the node safe and its host intact: no anonymous kubelet, nothing
routed or masqueraded beyond the machine, no pull that could leave it, no NodePort on the
outward interface, the host's conntrack settings left alone.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))
import realnode  # noqa: E402


@pytest.fixture
def host_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(realnode, "HOST_DIR", tmp_path / "host")
    monkeypatch.setattr(realnode, "SOCKET", tmp_path / "host" / "containerd" / "containerd.sock")
    monkeypatch.setattr(realnode, "CONTAINERD_ROOT", tmp_path / "root")
    return tmp_path / "host"


def test_kubelet_refuses_anonymous_requests_and_asks_the_api_server(host_dir: Path) -> None:
    path, kubeconfig = realnode._kubelet_config(Path("/pki"), "https://127.0.0.1:6443")
    cfg: dict[str, Any] = json.loads(path.read_text())
    assert cfg["authentication"]["anonymous"] == {"enabled": False}
    assert cfg["authentication"]["webhook"] == {"enabled": True}
    assert cfg["authentication"]["x509"]["clientCAFile"] == "/pki/ca.crt"
    assert cfg["authorization"] == {"mode": "Webhook"}
    assert cfg["readOnlyPort"] == 0 and cfg["address"] == realnode.BRIDGE_IP
    assert cfg["registerWithTaints"] == [realnode.NODE_TAINT]
    assert cfg["containerRuntimeEndpoint"] == f"unix://{realnode.SOCKET}"
    assert cfg["podLogsDir"].startswith(str(host_dir))
    user = json.loads(kubeconfig.read_text())["users"][0]["user"]
    assert user["client-certificate"] == "/pki/kubelet.crt"


def test_kube_proxy_leaves_the_hosts_settings_and_outward_interface_alone(host_dir: Path) -> None:
    cfg = json.loads(realnode._proxy_config(Path("/pki"), "https://127.0.0.1:6443").read_text())
    assert cfg["mode"] == "iptables"
    assert cfg["nodePortAddresses"] == [f"{realnode.BRIDGE_IP}/32"]
    assert cfg["iptables"]["localhostNodePorts"] is False  # else it sets route_localnet
    assert cfg["conntrack"] == {
        "maxPerCore": 0,
        "min": 0,
        "tcpEstablishedTimeout": "0s",
        "tcpCloseWaitTimeout": "0s",
    }
    assert cfg["clusterCIDR"] == realnode.BRIDGE_CIDR


def test_pods_are_neither_masqueraded_nor_routed_beyond_services(host_dir: Path) -> None:
    cfg_path = realnode._containerd_config()
    (plugin,) = json.loads((host_dir / "cni" / "net.d" / "10-mlops.conflist").read_text())[
        "plugins"
    ]
    assert plugin["type"] == "bridge" and plugin["bridge"] == realnode.BRIDGE
    assert plugin["ipMasq"] is False
    assert plugin["ipam"]["routes"] == [{"dst": realnode.LOCAL_ROUTES[0]}]  # no 0.0.0.0/0
    assert plugin["ipam"]["dataDir"].startswith(str(host_dir))

    cfg = tomllib.loads(cfg_path.read_text())
    cri = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # without CAP_SYS_RESOURCE sandboxes fail
    assert cri["sandbox_image"] == realnode.PAUSE_IMAGE
    assert cfg["grpc"]["address"] == str(realnode.SOCKET)
    assert cfg["root"] == str(realnode.CONTAINERD_ROOT)


def test_containerd_pulls_only_through_a_proxy_nothing_serves() -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY"):
        assert realnode.NO_PULL[var].startswith("http://127.0.0.1:")
    assert realnode.NO_PULL["NO_PROXY"] == ""


def test_the_routes_kept_on_the_machine_cover_services_and_kwoks_pods() -> None:
    import ipaddress

    nets = [ipaddress.ip_network(r) for r in realnode.LOCAL_ROUTES]
    assert ipaddress.ip_address("10.96.0.1") in nets[0]  # the `kubernetes` Service
    assert any(ipaddress.ip_address("10.244.0.1") in n for n in nets)  # kwok's node IP
    assert not any(n.overlaps(ipaddress.ip_network(realnode.BRIDGE_CIDR)) for n in nets)
