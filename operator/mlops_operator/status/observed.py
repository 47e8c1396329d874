"""PURE: what the API server says about a ModelDeployment's children -> typed observations.

served_model reads which version the existing Deployment is pinned to; deployment_state reads
the Deployment and its pods into the DeploymentState that status/model_deployment.py judges.
Container reasons and messages are the kubelet's, quoted so a person can act on them.
"""

from __future__ import annotations

from typing import Any

from mlops_operator.contract import ANNOTATION_MODEL_URI, LABEL_MODEL_VERSION, ResolvedModel
from mlops_operator.status.model_deployment import DeploymentState


def served_model(deployment: dict[str, Any] | None, status: dict[str, Any]) -> ResolvedModel | None:
    """The version the existing Deployment is pinned to, with what status recorded of it."""
    if not deployment:
        return None
    uri = deployment.get("metadata", {}).get("annotations", {}).get(ANNOTATION_MODEL_URI, "")
    parts = uri.removeprefix("models:/").rsplit("/", 1)
    if not uri.startswith("models:/") or len(parts) != 2:
        return None
    rec = status.get("model") or {}
    same = rec.get("name") == parts[0] and rec.get("version") == parts[1]
    return ResolvedModel(
        name=parts[0],
        version=parts[1],
        alias=rec.get("alias") if same else None,
        source=rec.get("source") if same else None,
        run_id=rec.get("runId") if same else None,
    )


# container waiting reasons the kubelet gives for a container that cannot start; waiting
# out ContainerCreating / PodInitializing is normal, these need a fix or a retry to clear
FAILING_WAIT_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "ImageInspectError",
        "RegistryUnavailable",
        "SignatureValidationFailed",
        "CreateContainerConfigError",
        "CreateContainerError",
        "PreCreateHookError",
        "PreStartHookError",
        "PostStartHookError",
        "RunContainerError",
    }
)
MESSAGE_LIMIT = 300  # characters of a kubelet message or error line quoted in the status


def _trim(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _last_line(text: str | None) -> str:
    # FallbackToLogsOnError puts the log tail here: its last line is the runtime's verdict
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return _trim(lines[-1]) if lines else ""


def _container_failure(pod: str, kind: str, cs: dict[str, Any]) -> str | None:
    """A message for a container that cannot start or keeps crashing, else None."""
    state, last = cs.get("state") or {}, cs.get("lastState") or {}
    waiting, now_term = state.get("waiting") or {}, state.get("terminated") or {}
    term = now_term or last.get("terminated") or {}
    exit_ = f"{term.get('reason') or 'Terminated'} (exit code {term.get('exitCode', '?')})"
    restarts = cs.get("restartCount") or 0
    if waiting.get("reason") in FAILING_WAIT_REASONS:
        detail = _trim(waiting.get("message") or "")
        what = waiting["reason"] + (f" ({detail})" if detail else "")
        what += f", last exit {exit_}" if term else ""
    elif now_term:
        # exit 0 is a finished init container (a main one that exits 0 turns CrashLoopBackOff)
        if now_term.get("exitCode", 0) == 0:
            return None
        what = f"terminated {exit_}"
    elif restarts > 0 and last.get("terminated") and not cs.get("ready"):
        # running again between crashes: still failing, or the status would flap to Progressing
        what = f"restarted {restarts} time(s), last exit {exit_}"
    else:
        return None
    line = _last_line(term.get("message"))
    return f"pod {pod} {kind} {cs.get('name', '?')}: {what}" + (
        f"; last error: {line}" if line else ""
    )


def _pod_problems(pod: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(scheduler messages, failing-container messages) of one pod."""
    unschedulable = [
        c.get("message", "Unschedulable")
        for c in pod.get("status", {}).get("conditions", []) or []
        if c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
    ]
    st, name = pod.get("status", {}), pod.get("metadata", {}).get("name", "?")
    if st.get("phase") in ("Succeeded", "Failed"):
        return unschedulable, []  # evicted or done: the ReplicaSet has replaced it
    failing = [
        msg
        for key, kind in (
            ("initContainerStatuses", "init container"),
            ("containerStatuses", "container"),
        )
        for cs in st.get(key, []) or []
        if (msg := _container_failure(name, kind, cs))
    ]
    return unschedulable, failing


def progress_deadline_exceeded(dep: dict[str, Any] | None) -> str:
    """The Deployment controller's message when the Deployment missed its progress deadline;
    empty when it did not."""
    for c in ((dep or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return str(c.get("message") or "ProgressDeadlineExceeded")
    return ""


def deployment_state(dep: dict[str, Any] | None, pods: list[dict[str, Any]]) -> DeploymentState:
    if not dep:
        return DeploymentState()
    spec, st = dep.get("spec", {}), dep.get("status", {})
    tpl_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    version = tpl_labels.get(LABEL_MODEL_VERSION)
    unschedulable: list[str] = []
    failing: list[str] = []
    for p in pods:
        meta = p.get("metadata", {})
        # pods of an older version are being replaced, pods being deleted are going away
        if meta.get("labels", {}).get(LABEL_MODEL_VERSION) != version or meta.get(
            "deletionTimestamp"
        ):
            continue
        sched, fail = _pod_problems(p)
        unschedulable += sched
        failing += fail
    deadline = bool(progress_deadline_exceeded(dep))
    return DeploymentState(
        exists=True,
        generation=dep.get("metadata", {}).get("generation", 0),
        observed_generation=st.get("observedGeneration", 0),
        desired=spec.get("replicas", 1) if spec.get("replicas") is not None else 1,
        replicas=st.get("replicas", 0) or 0,
        updated=st.get("updatedReplicas", 0) or 0,
        ready=st.get("readyReplicas", 0) or 0,
        available=st.get("availableReplicas", 0) or 0,
        serving_version=version,
        progress_deadline_exceeded=deadline,
        unschedulable=unschedulable,
        failing=failing,
    )


def pods_worth_listing(dep: dict[str, Any] | None) -> bool:
    """Whether a wanted pod is not ready or a rollout is under way: the pods then say why."""
    if not dep:
        return False
    want = dep.get("spec", {}).get("replicas") or 0
    st = dep.get("status", {})
    # maxUnavailable 0 keeps the old pods ready during a rollout: a new pod that cannot
    # start shows only as fewer updated replicas than wanted, or one replica too many
    return (
        (st.get("readyReplicas", 0) or 0) < want
        or (st.get("updatedReplicas", 0) or 0) < want
        or (st.get("replicas", 0) or 0) > want
    )
