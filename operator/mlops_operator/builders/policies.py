"""PURE: the policies around a ModelDeployment's pods: its HorizontalPodAutoscaler,
PodDisruptionBudget and NetworkPolicy (whole objects for server-side apply)."""

from __future__ import annotations

from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.builders.meta import meta, selector, serving_port
from mlops_operator.contract import Owner


def pdb_wanted(spec: ModelDeploymentSpec) -> bool:
    most = spec.autoscaling.max_replicas if spec.autoscaling else spec.replicas
    return most > 1


def get_hpa(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any] | None:
    a = spec.autoscaling
    if a is None:
        return None
    metrics = a.metrics or [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {
                    "type": "Utilization",
                    "averageUtilization": a.target_cpu_utilization or 80,
                },
            },
        }
    ]
    if a.metrics and a.target_cpu_utilization:
        metrics = [
            *a.metrics,
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": a.target_cpu_utilization,
                    },
                },
            },
        ]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(owner),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner.name},
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": metrics,
        },
    }


def get_pdb(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any] | None:
    if not pdb_wanted(spec):
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(owner),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(owner.name)}},
    }


def get_network_policy(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(owner),
        "spec": {
            "podSelector": {"matchLabels": selector(owner.name)},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": serving_port(spec)}]}],
        },
    }
