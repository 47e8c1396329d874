"""The Argo CD health checks (Lua, run for real with lupa) on hand-written objects.

ModelDeployments are also checked against objects the operator produced on the live cluster
(tests/integration/test_argocd_health.py); RetrainJobs here follow DESIGN.md's conditions:
Reconciling while running, Succeeded=True + Ready=True on success, Succeeded=False +
Stalled=True on failure, Promoted with Better / NotBetter / NoMetric / NoHolder.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.argocd_lua import ARGOCD, SCRIPTS, health


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def obj(
    kind: str, *conditions: dict[str, Any], generation: int = 1, **status: Any
) -> dict[str, Any]:
    o: dict[str, Any] = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ml", "generation": generation},
        "spec": {},
    }
    if conditions or status:
        o["status"] = {"observedGeneration": generation, "conditions": list(conditions), **status}
    return o


def md(*conditions: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return obj("ModelDeployment", *conditions, **kw)


def rtj(*conditions: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return obj("RetrainJob", *conditions, **kw)


def test_argocd_cm_snippet_carries_the_scripts() -> None:
    cm = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert (cm["kind"], cm["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert cm["data"] == {
        f"resource.customizations.health.mlops.dev_{kind}": path.read_text()
        for kind, path in SCRIPTS.items()
    }


READY = cond("Ready", "True", "Available", "serving fraud version 7 at http://fraud.ml.svc:8080")


@pytest.mark.parametrize(
    ("o", "status", "words"),
    [
        (md(), "Progressing", "Waiting for the operator"),
        (
            md(READY, generation=3, observedGeneration=2),
            "Progressing",
            "observe generation 3",
        ),
        (
            md(
                cond("Ready", "False", "ModelNotFound", "no registered model fraud"),
                cond("Reconciling", "False", "ModelNotFound"),
                cond("Stalled", "True", "ModelNotFound", "no registered model fraud"),
            ),
            "Degraded",
            "ModelNotFound: no registered model fraud",
        ),
        (md(READY, cond("Stalled", "False", "NotStalled")), "Healthy", "serving fraud version 7"),
        (
            md(
                READY,
                cond("ModelResolved", "False", "RegistryUnavailable", "connection refused"),
            ),
            "Healthy",
            "serving",
        ),
        (
            md(
                cond("Ready", "False", "Unschedulable", "0/5 nodes are available"),
                cond("Reconciling", "True", "Unschedulable", "1 pod(s) cannot be scheduled"),
                cond("Available", "False", "Unschedulable"),
            ),
            "Progressing",
            "Unschedulable: 1 pod(s) cannot be scheduled",
        ),
        (
            md(
                cond("Ready", "False", "ProgressDeadlineExceeded"),
                cond("Reconciling", "False", "ProgressDeadlineExceeded"),
                cond("Stalled", "True", "ProgressDeadlineExceeded", "rollout stuck"),
                cond("Available", "False", "ProgressDeadlineExceeded", "rollout stuck"),
            ),
            "Degraded",
            "rollout stuck",
        ),
        (
            md(
                cond("Ready", "False", "ContainerFailing"),
                cond("Reconciling", "True", "ContainerFailing"),
                cond("Available", "False", "ContainerFailing", "CrashLoopBackOff; last error: x"),
            ),
            "Degraded",
            "CrashLoopBackOff",
        ),
        (
            md(READY, cond("Reconciling", "True", "RolloutProgressing", "canary version 8 at 20%")),
            "Progressing",
            "canary version 8 at 20%",
        ),
        (
            md(READY, cond("Reconciling", "True", "RolloutPaused", "waiting for measurements")),
            "Suspended",
            "waiting for measurements",
        ),
        (
            md(
                READY,
                cond("Reconciling", "False", "RolledBack"),
                cond("Stalled", "True", "RolledBack", "version 8 rolled back: error rate 9%"),
            ),
            "Degraded",
            "RolledBack: version 8 rolled back",
        ),
    ],
    ids=[
        "new",
        "stale",
        "stalled",
        "ready",
        "registry-down",
        "unschedulable",
        "deadline",
        "container-failing",
        "canary",
        "canary-paused",
        "rolled-back",
    ],
)
def test_model_deployment(o: dict[str, Any], status: str, words: str) -> None:
    got, message = health(o)
    assert got == status and words in message, message


@pytest.mark.parametrize(
    ("o", "status", "words"),
    [
        (rtj(), "Progressing", "Waiting for the operator"),
        (
            rtj(
                cond("Reconciling", "True", "Running", "pipeline run r-1 is running"),
                cond("Ready", "False", "Running"),
            ),
            "Progressing",
            "pipeline run r-1 is running",
        ),
        (
            rtj(
                cond("Succeeded", "True", "Succeeded", "run r-1 succeeded"),
                cond("Ready", "True", "Succeeded"),
                cond("Promoted", "True", "Better", "accuracy 0.97 > 0.95"),
                cond("Reconciling", "False", "Succeeded"),
                result={"version": "8", "promoted": True, "previousVersion": "7"},
            ),
            "Healthy",
            "version 8 registered; promoted (Better: accuracy 0.97 > 0.95)",
        ),
        (
            rtj(
                cond("Succeeded", "True", "Succeeded"),
                cond("Ready", "True", "Succeeded"),
                cond("Promoted", "False", "NotBetter", "accuracy 0.91 < 0.95"),
                result={"version": "9", "promoted": False},
            ),
            "Healthy",
            "version 9 registered; not promoted (NotBetter",
        ),
        (
            rtj(
                cond("Succeeded", "False", "ValidationFailed", "column age has 12 nulls"),
                cond("Stalled", "True", "ValidationFailed", "column age has 12 nulls"),
                cond("Ready", "False", "ValidationFailed"),
            ),
            "Degraded",
            "ValidationFailed: column age has 12 nulls",
        ),
        (
            rtj(cond("Stalled", "True", "OrphanedRun", "the operator restarted mid-run")),
            "Degraded",
            "OrphanedRun",
        ),
    ],
    ids=["new", "running", "promoted", "not-promoted", "failed", "stalled-only"],
)
def test_retrain_job(o: dict[str, Any], status: str, words: str) -> None:
    got, message = health(o)
    assert got == status and words in message, message


def test_scripts_only_use_what_argocd_offers() -> None:
    # health() removes os/io/require...; a script that used them would fail above. Also no
    # goto/integer division: gopher-lua is Lua 5.1.
    for path in SCRIPTS.values():
        text = path.read_text()
        assert "goto" not in text and "//" not in text
