"""The custom resources this operator defines, with their CRD presentation."""

from __future__ import annotations

from mlops_operator.api import model_deployment as md
from mlops_operator.api import retrain_job as rtj
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
            {"name": "Rollout", "type": "string", "jsonPath": ".status.rollout.phase"},
            {"name": "Weight", "type": "integer", "jsonPath": ".status.rollout.weight"},
            {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    ),
    CrdSpec(
        kind=rtj.KIND,
        plural=rtj.PLURAL,
        short_names=["rtj"],
        spec_model=rtj.RetrainJobSpec,
        status_model=rtj.RetrainJobStatus,
        description="RetrainJob is one retraining run, like a batch Job: it runs a pipeline "
        "that registers a new MLflow model version with its lineage, then moves the promotion "
        "alias to it only if it beats the current holder.",
        printer_columns=[
            {"name": "Succeeded", "type": "string", "jsonPath": _cond("Succeeded")},
            {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
            {"name": "Version", "type": "string", "jsonPath": ".status.result.version"},
            {"name": "Promoted", "type": "string", "jsonPath": _cond("Promoted")},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        spec_validations=[rtj.IMMUTABLE_SPEC, rtj.LATENCY_BUDGET_SET],
    ),
]
