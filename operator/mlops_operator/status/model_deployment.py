"""PURE: what was observed about a ModelDeployment -> its status.

Ready aggregates the components, as KServe does: the model resolved (or, during a registry
outage, the last resolved version still serving) and the Deployment available at the pinned
version. Reconciling and Stalled follow kstatus, so Argo CD and Flux read health from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlops_operator.api.model_deployment import ModelDeploymentStatus, ServedModel
from mlops_operator.contract import STALLING_REASONS, CondType, Reason, ResolvedModel
from mlops_operator.status.conditions import Condition, make


@dataclass(frozen=True)
class Resolution:
    """The outcome of asking the registry what to serve."""

    model: ResolvedModel | None
    reason: str = Reason.RESOLVED
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.model is not None and self.reason == Reason.RESOLVED


@dataclass(frozen=True)
class DeploymentState:
    """What the Deployment and its pods say (None fields: no Deployment yet)."""

    exists: bool = False
    generation: int = 0
    observed_generation: int = 0
    desired: int = 0
    replicas: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    serving_version: str | None = None  # version in the Deployment's pod template
    progress_deadline_exceeded: bool = False
    unschedulable: list[str] = field(default_factory=list)  # scheduler messages
    # containers of pods at serving_version that cannot start or keep crashing, one message
    # each with the kubelet's reason and the container's last error line
    failing: list[str] = field(default_factory=list)

    def settled_at(self, n: int) -> bool:
        """It runs n available pods of its current template, and no others."""
        return (
            self.observed_generation >= self.generation
            and self.updated >= n
            and self.replicas <= n
            and self.available >= n
        )


@dataclass(frozen=True)
class StatusInput:
    generation: int
    name: str
    alias: str | None
    resolution: Resolution
    deployment: DeploymentState
    endpoint: str
    selector: str
    served: ResolvedModel | None  # what the pods are pinned to (for status.model)
    slo: SloRules | None = None  # spec.slo's alerting rules; None when spec.slo is not set
    rollout: RolloutView | None = None  # a canary in progress, or one that failed
    # (reason, message) of a part of the spec that cannot work (a schedule that never fires)
    # while the rest does: the object is Stalled, what serves goes on serving
    spec_problem: tuple[str, str] | None = None


@dataclass(frozen=True)
class RolloutView:
    """What status says of a canary: the stable Deployment is judged at stable_version while
    it runs (the new version is the canary's), and a failed one stalls the object."""

    stable_version: str
    reason: str  # Reason.ROLLOUT_PROGRESSING | ROLLOUT_PAUSED | ROLLED_BACK | ...
    message: str
    stalled: bool = False


@dataclass(frozen=True)
class SloRules:
    served: bool  # the cluster serves the PrometheusRule kind
    name: str = ""  # the PrometheusRule written
    alerts: int = 0


def slo_rules_condition(s: SloRules, gen: int) -> Condition:
    if not s.served:
        return make(
            CondType.SLO_RULES,
            False,
            Reason.PROMETHEUS_RULE_UNAVAILABLE,
            "this cluster does not serve monitoring.coreos.com/v1 PrometheusRule (the "
            "Prometheus Operator's CRDs are not installed): no alerting rules were written",
            gen,
        )
    return make(
        CondType.SLO_RULES,
        True,
        Reason.RULES_WRITTEN,
        f"PrometheusRule {s.name} holds {s.alerts} alert(s) for spec.slo",
        gen,
    )


def _available(
    d: DeploymentState, want_version: str | None, gen: int, rollout: bool = False
) -> Condition:
    if not d.exists:
        return make(
            CondType.AVAILABLE, False, Reason.PROGRESSING, "waiting for the Deployment", gen
        )
    if d.unschedulable:
        return make(
            CondType.AVAILABLE,
            False,
            Reason.UNSCHEDULABLE,
            f"{len(d.unschedulable)} pod(s) cannot be scheduled: {d.unschedulable[0]}",
            gen,
        )
    settled = d.settled_at(d.desired)
    at_version = want_version is None or d.serving_version == want_version
    # beside a canary the stable share grows and shrinks: its pods serving is what counts
    if rollout:
        settled = d.available > 0
    if settled and at_version:
        return make(
            CondType.AVAILABLE,
            True,
            Reason.MINIMUM_REPLICAS_AVAILABLE,
            f"{d.available}/{d.desired} replicas available at version {d.serving_version}",
            gen,
        )
    # after the settled check: a settled Deployment serves even if a stray pod crashes
    if d.failing and at_version:
        return make(
            CondType.AVAILABLE,
            False,
            Reason.CONTAINER_FAILING,
            f"{len(d.failing)} container(s) failing: {d.failing[0]}",
            gen,
        )
    if d.progress_deadline_exceeded:
        return make(
            CondType.AVAILABLE,
            False,
            Reason.PROGRESS_DEADLINE_EXCEEDED,
            f"rollout stuck: {d.updated}/{d.desired} updated, {d.available} available",
            gen,
        )
    return make(
        CondType.AVAILABLE,
        False,
        Reason.PROGRESSING,
        f"rolling out version {want_version or d.serving_version}: {d.updated}/"
        f"{d.desired} updated, {d.ready} ready",
        gen,
    )


def _model_resolved(i: StatusInput) -> Condition:
    r, gen = i.resolution, i.generation
    if r.ok and r.model:
        what = (
            f"alias {i.alias} -> version {r.model.version}"
            if i.alias
            else f"version {r.model.version}"
        )
        return make(CondType.MODEL_RESOLVED, True, Reason.RESOLVED, f"{r.model.name}: {what}", gen)
    return make(CondType.MODEL_RESOLVED, False, r.reason, r.message, gen)


def compute(i: StatusInput) -> ModelDeploymentStatus:
    """The whole status but status.retraining (the triggers' part); conditions get their
    transition times when they are merged (conditions.merge_all)."""
    gen, d, r = i.generation, i.deployment, i.resolution
    resolved = _model_resolved(i)
    target = r.model.version if r.ok and r.model else d.serving_version
    if i.rollout is not None:
        target = i.rollout.stable_version  # the new version runs beside, in <name>-canary
    available = _available(d, target, gen, rollout=i.rollout is not None)
    stalled_reason = r.reason if not r.ok and r.reason in STALLING_REASONS else None
    # a registry outage keeps the last version serving: still Ready, and said so
    model_ok = r.ok or (r.reason == Reason.REGISTRY_UNAVAILABLE and d.serving_version is not None)

    if model_ok and available.status == "True":
        note = (
            ""
            if r.ok
            else f" (registry unreachable, serving the last resolved version: {r.message})"
        )
        ready = make(
            CondType.READY,
            True,
            Reason.AVAILABLE,
            f"serving {i.served.name if i.served else ''} version "
            f"{d.serving_version} at {i.endpoint}{note}",
            gen,
        )
    elif not model_ok:
        ready = make(CondType.READY, False, resolved.reason, resolved.message, gen)
    else:
        ready = make(CondType.READY, False, available.reason, available.message, gen)

    if i.spec_problem and not stalled_reason:
        reason, message = i.spec_problem
        if ready.status == "True":
            message = f"{message} (version {d.serving_version} serves meanwhile)"
        ready = make(CondType.READY, False, reason, message, gen)
        stalled = make(CondType.STALLED, True, reason, message, gen)
        reconciling = make(CondType.RECONCILING, False, reason, "stalled; fix the spec", gen)
    elif stalled_reason:
        stalled = make(CondType.STALLED, True, stalled_reason, r.message, gen)
        reconciling = make(
            CondType.RECONCILING, False, stalled_reason, "stalled; fix the spec", gen
        )
    elif d.progress_deadline_exceeded and i.rollout is None and ready.status != "True":
        # the Deployment controller gave up waiting (kstatus: Failed); it stays so until the
        # next change of the pods' template, so this is no progress, it is stuck
        msg = f"the Deployment missed its progress deadline: {available.message}"
        stalled = make(CondType.STALLED, True, Reason.PROGRESS_DEADLINE_EXCEEDED, msg, gen)
        reconciling = make(CondType.RECONCILING, False, Reason.PROGRESS_DEADLINE_EXCEEDED, msg, gen)
    elif i.rollout is not None and i.rollout.stalled:
        # kstatus reads this as Failed (Argo CD: Degraded) while the stable version serves
        ro = i.rollout
        stalled = make(CondType.STALLED, True, ro.reason, ro.message, gen)
        reconciling = make(CondType.RECONCILING, False, ro.reason, ro.message, gen)
    elif i.rollout is not None and ready.status == "True":
        stalled = make(CondType.STALLED, False, Reason.NOT_STALLED, "", gen)
        reconciling = make(CondType.RECONCILING, True, i.rollout.reason, i.rollout.message, gen)
    else:
        stalled = make(CondType.STALLED, False, Reason.NOT_STALLED, "", gen)
        if ready.status == "True":
            reconciling = make(CondType.RECONCILING, False, Reason.RECONCILED, "", gen)
        else:
            reconciling = make(CondType.RECONCILING, True, ready.reason, ready.message, gen)

    served = None
    if i.served:
        m = i.served
        # empty strings are left out, as the registry leaves them unset
        served = ServedModel(
            name=m.name,
            version=m.version,
            alias=m.alias or None,
            source=m.source or None,
            run_id=m.run_id or None,
        )
    conditions = [ready, reconciling, stalled, resolved, available]
    if i.slo is not None:
        conditions.append(slo_rules_condition(i.slo, gen))
    return ModelDeploymentStatus(
        observed_generation=gen,
        conditions=conditions,
        endpoint=i.endpoint,
        replicas=d.replicas,
        ready_replicas=d.ready,
        selector=i.selector,
        model=served,
    )


def stalled_status(
    generation: int, reason: str, message: str, endpoint: str | None = None
) -> ModelDeploymentStatus:
    """For a spec the operator cannot honour at all (nothing is built from it)."""
    return ModelDeploymentStatus(
        observed_generation=generation,
        conditions=[
            make(CondType.READY, False, reason, message, generation),
            make(CondType.RECONCILING, False, reason, "stalled; fix the spec", generation),
            make(CondType.STALLED, True, reason, message, generation),
        ],
        endpoint=endpoint,
    )
