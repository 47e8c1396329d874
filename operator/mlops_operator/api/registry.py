"""The custom resources this operator defines, with their CRD presentation."""

from __future__ import annotations

from mlops_operator.api import model_deployment as md
from mlops_operator.api.crdgen import CrdSpec


def _cond(type_: str) -> str:
    return f'.status.conditions[?(@.type=="{type_}")].status'


CRDS = [
    CrdSpec(
        kind=md.KIND,
        plural=md.PLURAL,
        short_names=["mdep"],
        spec_model=md.ModelDeploymentSpec,
        status_model=md.ModelDeploymentStatus,
        description="ModelDeployment serves a model from the MLflow registry (name@alias or a "
        "pinned version) as a Deployment and Service, optionally on GPUs, with an HPA, a "
        "PodDisruptionBudget and a NetworkPolicy.",
        printer_columns=[
            {"name": "Ready", "type": "string", "jsonPath": _cond("Ready")},
            {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
            {"name": "Version", "type": "string", "jsonPath": ".status.model.version"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    ),
]
