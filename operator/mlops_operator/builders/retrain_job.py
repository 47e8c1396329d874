"""PURE: the RetrainJob a ModelDeployment's trigger creates from spec.retraining.template."""

from __future__ import annotations

from typing import Any

from mlops_operator.api.model_deployment import Retraining
from mlops_operator.api.slo import Slo
from mlops_operator.builders.meta import owner_reference
from mlops_operator.contract import (
    ANNOTATION_TRIGGER_REASON,
    API_VERSION,
    LABEL_MODEL_DEPLOYMENT,
    LABEL_TRIGGER,
    RETRAIN_JOB_KIND,
    Owner,
)


def job_body(
    owner: Owner,
    retraining: Retraining,
    name: str,
    trigger: str,
    reason: str,
    slo: Slo | None = None,
) -> dict[str, Any]:
    spec = retraining.template.to_wire()
    latency = ((spec["promotion"].get("checks") or {}).get("latency")) or None
    if latency is not None and "p99" not in latency and slo is not None:
        # the budget the endpoint is held to is the one the candidate is tested against
        latency["p99"] = slo.latency.p99
    return {
        "apiVersion": API_VERSION,
        "kind": RETRAIN_JOB_KIND,
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": {LABEL_MODEL_DEPLOYMENT: owner.name, LABEL_TRIGGER: trigger},
            "annotations": {ANNOTATION_TRIGGER_REASON: reason[:1000]},
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": spec,
    }
