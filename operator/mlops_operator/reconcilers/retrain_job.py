"""Reconcile one RetrainJob: submit (once), follow the run, then gate and promote.

Every step is recoverable from what is recorded outside the process: the run is found by its
deterministic name before anything is submitted, the version by its mlops.dev/retrainjob tag,
and the promotion decision is written (result.previousVersion) before the alias moves. An
operator killed at any point and restarted picks up where it was, without a second run or a
second version.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mlops_operator.api.retrain_job import RetrainJobSpec, RetrainJobStatus, RunStatus
from mlops_operator.clients.kube import ApiError, Kube
from mlops_operator.clients.pipelines import (
    BackendUnavailable,
    Busy,
    JobId,
    PipelineBackend,
    RunRef,
)
from mlops_operator.clients.registry import Registry, RegistryError
from mlops_operator.contract import (
    API_VERSION,
    FINALIZER_STOP_RUN,
    LABEL_MODEL_DEPLOYMENT,
    RETRAIN_JOB_KIND,
    TAG_RETRAINJOB,
    Reason,
    Requeue,
    format_time,
)
from mlops_operator.gate import Decision, decide, run_checks
from mlops_operator.pipelines import catalog
from mlops_operator.reconcilers import gate_inputs, rollback
from mlops_operator.reconcilers.retrain_plan import Observed, Start, Step, plan, plan_start
from mlops_operator.reconcilers.status_write import (
    EventSink,
    StaleBody,
    after_api_failure,
    checked,
    write_status,
)
from mlops_operator.seams import AFTER_SUBMIT, CrashPoint, no_crash
from mlops_operator.status import conditions as cond
from mlops_operator.status import events
from mlops_operator.status import retrain_job as rs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    kube: Kube
    registry: Registry
    backends: dict[str, PipelineBackend]
    default_backend: str
    mlflow_uri: str
    event: EventSink
    promoted: Callable[[str, str | None], None]  # (namespace, owning ModelDeployment)
    pipelines: catalog.Catalog = catalog.SHIPPED
    crash_point: CrashPoint = no_crash  # a test seam (seams.py); production never crashes


def job_id(body: dict[str, Any]) -> JobId:
    m = body["metadata"]
    return JobId(namespace=m["namespace"], name=m["name"], uid=m["uid"])


def stamp(now: dt.datetime) -> str:
    return format_time(now)


async def _patch_status(
    deps: Deps,
    body: dict[str, Any],
    patch: dict[str, Any],
    conditions: list[cond.Condition] | None,
    now: dt.datetime,
) -> None:
    patch = {**patch, "observedGeneration": body["metadata"].get("generation", 1)}
    patch = checked(RetrainJobStatus, patch)  # run and result are written whole
    out = await write_status(
        deps.kube, deps.event, body, patch, conditions, now, events.RETRAIN_JOB
    )
    if out is not None:
        # later steps of this pass see what was written (and its resourceVersion)
        body["status"] = out.get("status", {})
        body["metadata"]["resourceVersion"] = out["metadata"]["resourceVersion"]


async def _set_finalizer(deps: Deps, body: dict[str, Any], present: bool) -> None:
    m = body["metadata"]
    for _ in range(5):
        fins = list(m.get("finalizers") or [])
        if (FINALIZER_STOP_RUN in fins) == present:
            return
        fins = (
            [*fins, FINALIZER_STOP_RUN] if present else [f for f in fins if f != FINALIZER_STOP_RUN]
        )
        try:
            # resourceVersion makes this a compare-and-swap: other finalizers survive
            out = await deps.kube.patch_merge(
                API_VERSION,
                RETRAIN_JOB_KIND,
                m["namespace"],
                m["name"],
                {"metadata": {"finalizers": fins, "resourceVersion": m["resourceVersion"]}},
            )
        except ApiError as e:
            if e.status != 409:
                raise
            fresh = await deps.kube.get(API_VERSION, RETRAIN_JOB_KIND, m["namespace"], m["name"])
            if fresh is None:
                return
            m.update(fresh["metadata"])
            continue
        m.update(out["metadata"])
        return


def _run_ref(status: dict[str, Any]) -> RunRef | None:
    run = status.get("run") or {}
    if not run.get("id"):
        return None
    return RunRef(id=run["id"], name=run.get("name", ""), url=run.get("url"), logs=run.get("logs"))


async def reconcile(body: dict[str, Any], deps: Deps, now: dt.datetime) -> Requeue | None:
    try:
        return await _reconcile(body, deps, now)
    except StaleBody:
        # written to meanwhile (a label, another pass's finalizer): the next pass reads it again
        return Requeue(0.5, "status changed meanwhile")
    except Exception as e:
        return await after_api_failure(e, deps.kube, deps.event, body, now, events.RETRAIN_JOB)


async def _reconcile(body: dict[str, Any], deps: Deps, now: dt.datetime) -> Requeue | None:
    # A watch event may carry an older version than the last pass wrote (status first, then
    # the finalizer): read the object itself, since every step here depends on its status.
    m = body["metadata"]
    fresh = await deps.kube.get(API_VERSION, RETRAIN_JOB_KIND, m["namespace"], m["name"])
    if fresh is None or fresh["metadata"].get("uid") != m.get("uid"):
        return None
    body = fresh
    m = body["metadata"]
    gen = int(m.get("generation", 1))
    status = body.get("status", {}) or {}
    job = job_id(body)

    spec: RetrainJobSpec | None = None
    spec_error = None
    try:
        spec = RetrainJobSpec.model_validate(body.get("spec", {}))
    except ValidationError as e:
        spec_error = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
    backend_name = (spec.backend if spec else None) or deps.default_backend
    backend = deps.backends.get(backend_name)
    start = plan_start(
        Start(
            generation=gen,
            deleting=bool(m.get("deletionTimestamp")),
            finished=rs.is_finished(status.get("conditions", []) or []),
            spec_error=spec_error,
            backend=backend_name,
            configured=backend is not None,
        )
    )
    if start.action == "stop":
        return await _on_delete(body, deps, status)
    if start.action != "run" or spec is None or backend is None:
        if start.release_finalizer and spec is not None:  # finished
            await _note_rollback(deps, body, spec, now)
        return await _apply(deps, body, start, now)

    try:
        ref = _run_ref(status) or await _submit(body, deps, spec, backend, job, gen, now)
        if ref is None:
            return Requeue(5.0, "queued")
        state = await backend.poll(ref)
    except BackendUnavailable as e:
        await _patch_status(
            deps, body, {}, rs.pending(gen, Reason.BACKEND_UNAVAILABLE, str(e)), now
        )
        return Requeue(5.0, "backend unavailable", backoff=True)
    except catalog.UnknownPipelineError as e:
        await _patch_status(deps, body, {}, rs.failed(gen, Reason.PIPELINE_NOT_FOUND, str(e)), now)
        return None

    step = plan(Observed(gen, dict(status.get("run") or {}), state, backend.traits, stamp(now)))
    if step.action == "restart":
        log.warning("%s/%s: worker lost, restarting the run once", job.namespace, job.name)
        await backend.restart(ref)
    elif step.action == "gate":
        run = step.run or {}
        try:
            return await _gate(body, deps, spec, job, run, gen, now)
        except RegistryError as e:
            pending = rs.pending(gen, Reason.REGISTRY_UNAVAILABLE, e.message)
            await _patch_status(deps, body, {"run": run}, pending, now)
            return Requeue(5.0, "registry unavailable", backoff=True)
    return await _apply(deps, body, step, now)


async def _note_rollback(
    deps: Deps, body: dict[str, Any], spec: RetrainJobSpec, now: dt.datetime
) -> None:
    """A version this job promoted that a canary rolled back: recorded in status.result."""
    status = body.get("status") or {}
    found = await rollback.rolled_back(deps.registry, spec.model.name, status, now)
    if found is not None:
        version, why = found
        result = {**(status.get("result") or {}), "rolledBack": why}
        await _patch_status(deps, body, {"result": result}, None, now)
        deps.event(body, "Warning", Reason.ROLLED_BACK, f"version {version} rolled back: {why}")


async def _apply(deps: Deps, body: dict[str, Any], step: Step, now: dt.datetime) -> Requeue | None:
    """Write what a planned step says: conditions and run record, then the finalizer."""
    if step.writes:
        patch = {"run": step.run} if step.run is not None else {}
        await _patch_status(deps, body, patch, step.conditions, now)
    if step.release_finalizer:
        await _set_finalizer(deps, body, present=False)
    return step.requeue


async def _submit(
    body: dict[str, Any],
    deps: Deps,
    spec: RetrainJobSpec,
    backend: PipelineBackend,
    job: JobId,
    gen: int,
    now: dt.datetime,
) -> RunRef | None:
    await _set_finalizer(deps, body, present=True)
    ref = await backend.find(job)
    if ref is None:
        package = deps.pipelines.package_path(spec.pipeline.name)
        declared = catalog.package_parameters(package)
        given = {
            **(spec.pipeline.parameters or {}),
            "mlflow_tracking_uri": deps.mlflow_uri,
            "model_name": spec.model.name,
            "retrainjob": job.lineage,
        }
        measure = gate_inputs.checks_parameter(spec.promotion)
        if measure is not None:
            given[gate_inputs.CHECKS_PARAMETER] = measure
        params = catalog.coerce_parameters(declared, given)
        problems = catalog.check_values(declared, params)
        if measure is not None and gate_inputs.CHECKS_PARAMETER not in declared:
            # said in the spec's words, in place of "checks: unknown parameter"
            unknown = f"{gate_inputs.CHECKS_PARAMETER}: unknown parameter"
            problems = [
                f"pipeline {spec.pipeline.name!r} has no check step (no parameter "
                f"{gate_inputs.CHECKS_PARAMETER!r}), so spec.promotion.checks "
                f"{', '.join(k for k in measure if k not in ('metric', 'alias'))} cannot be "
                "measured",
                *(p for p in problems if not p.startswith(unknown)),
            ]
        if problems:
            # refused before anything runs: a typo must not cost a training run
            await _patch_status(
                deps, body, {}, rs.failed(gen, Reason.INVALID_PARAMETERS, "; ".join(problems)), now
            )
            await _set_finalizer(deps, body, present=False)
            return None
        try:
            ref = await backend.submit(job, package, params, spec.credentials_secret)
        except Busy as e:
            await _patch_status(deps, body, {}, rs.pending(gen, Reason.QUEUED, str(e)), now)
            return None
        log.info("%s/%s: submitted run %s (%s)", job.namespace, job.name, ref.id, backend.name)
        deps.crash_point(AFTER_SUBMIT)
    run = RunStatus(
        id=ref.id,
        name=ref.name,
        url=ref.url,
        logs=ref.logs or None,
        backend=backend.name,
        started_at=stamp(now),
        state="Submitted",
    ).to_wire()
    await _patch_status(
        deps,
        body,
        {"run": run},
        rs.running(gen, f"run {ref.name} submitted to {backend.name}"),
        now,
    )
    return ref


async def _gate(
    body: dict[str, Any],
    deps: Deps,
    spec: RetrainJobSpec,
    job: JobId,
    run: dict[str, Any],
    gen: int,
    now: dt.datetime,
) -> Requeue | None:
    name, p = spec.model.name, spec.promotion
    found = await deps.registry.find_version_by_tag(name, TAG_RETRAINJOB, job.lineage)
    if found is None:
        await _patch_status(
            deps,
            body,
            {"run": run},
            rs.failed(
                gen,
                Reason.NO_VERSION,
                f"the run succeeded but registered no version of {name!r} "
                f"tagged {TAG_RETRAINJOB}={job.lineage}",
            ),
            now,
        )
        await _set_finalizer(deps, body, present=False)
        return None
    result = dict((body.get("status") or {}).get("result") or {})
    if result.get("version") != found.version:
        result = {"version": found.version, "metrics": found.metrics}
    holder = await deps.registry.alias_holder(name, p.alias)
    if holder == found.version:
        # it holds the alias already: this operator moved it just before a restart
        decision = Decision(
            True,
            Reason.BETTER if result.get("previousVersion") else Reason.NO_HOLDER,
            f"version {found.version} holds the alias {p.alias}",
        )
    else:
        holder_metric = None
        if holder:
            holder_metric = (await deps.registry.version_info(name, holder)).metrics.get(p.metric)
        candidate = found.metrics.get(p.metric)
        checks = run_checks(
            p.metric, candidate, p.greater_is_better, p.checks.floor if p.checks else None
        ) + gate_inputs.judge(found.tags, p.checks, p.greater_is_better, holder)
        if checks:
            result["checks"] = [c.to_wire() for c in checks]
        decision = decide(
            p.metric, candidate, holder, holder_metric, p.greater_is_better, p.min_delta, checks
        )
        result["previousVersion"] = holder or ""
        if decision.promote:
            # what the alias pointed to is on record before it moves
            await _patch_status(deps, body, {"run": run, "result": result}, None, now)
            await deps.registry.set_alias(name, p.alias, found.version)
            log.info(
                "%s/%s: %s@%s -> version %s (%s)",
                job.namespace,
                job.name,
                name,
                p.alias,
                found.version,
                decision.message,
            )
    result["promoted"] = decision.promote
    await _patch_status(
        deps, body, {"run": run, "result": result}, rs.succeeded(gen, found.version, decision), now
    )
    await _set_finalizer(deps, body, present=False)
    if decision.promote:
        deps.promoted(
            job.namespace, (body["metadata"].get("labels") or {}).get(LABEL_MODEL_DEPLOYMENT)
        )
    return None


async def _on_delete(body: dict[str, Any], deps: Deps, status: dict[str, Any]) -> Requeue | None:
    ref = _run_ref(status)
    if ref and not rs.is_finished(status.get("conditions", []) or []):
        backend = deps.backends.get((status.get("run") or {}).get("backend") or "")
        if backend is not None:
            try:
                await backend.stop(ref)
                log.info(
                    "%s/%s: stopped run %s",
                    body["metadata"]["namespace"],
                    body["metadata"]["name"],
                    ref.id,
                )
            except BackendUnavailable:
                return Requeue(5.0, "cannot stop the run yet", backoff=True)
    await _set_finalizer(deps, body, present=False)
    return None
