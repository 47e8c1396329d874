"""kind cannot run here (no Docker engine): its config is at least checked by parsing."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_kind_config_mirrors_the_local_gpu_nodes() -> None:
    cfg = yaml.safe_load((ROOT / "hack" / "kind" / "cluster.yaml").read_text())
    assert (cfg["kind"], cfg["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    roles = [n["role"] for n in cfg["nodes"]]
    assert roles.count("control-plane") == 1 and roles.count("worker") >= 3
    gpu = [n for n in cfg["nodes"] if n.get("labels", {}).get("nvidia.com/gpu.present")]
    local = [
        d
        for d in yaml.safe_load_all((ROOT / "hack/cluster/nodes.yaml").read_text())
        if d and "nvidia.com/gpu.product" in d["metadata"]["labels"]
    ]
    assert {n["labels"]["nvidia.com/gpu.product"] for n in gpu} == {
        d["metadata"]["labels"]["nvidia.com/gpu.product"] for d in local
    }
    for n in gpu:
        patch = yaml.safe_load(n["kubeadmConfigPatches"][0])
        assert patch["nodeRegistration"]["taints"] == [
            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
        ]


def test_local_nodes_file_has_the_fleet_the_tests_expect() -> None:
    nodes = [d for d in yaml.safe_load_all((ROOT / "hack/cluster/nodes.yaml").read_text()) if d]
    gpu = [n for n in nodes if "nvidia.com/gpu" in n["status"]["capacity"]]
    assert len(nodes) - len(gpu) >= 2 and len(gpu) >= 3
    for n in gpu:
        assert n["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        assert {"nvidia.com/gpu.product", "nvidia.com/gpu.memory", "nvidia.com/gpu.count"} <= set(
            n["metadata"]["labels"]
        )
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in n["spec"][
            "taints"
        ]
    assert any("nvidia.com/mig-1g.10gb" in n["status"]["capacity"] for n in gpu)
    assert len({n["metadata"]["labels"]["nvidia.com/gpu.product"] for n in gpu}) == 2
