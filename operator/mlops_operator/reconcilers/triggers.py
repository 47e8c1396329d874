"""Retraining triggers of a ModelDeployment: a cron schedule and sustained drift.

They create RetrainJobs from spec.retraining.template, owned by the ModelDeployment and
labelled with it, the way a CronJob owns its Jobs: never two at once (a firing while one runs
is skipped), deterministic names (a repeated firing cannot create a duplicate), and only
`historyLimit` finished ones are kept. Their memory (last schedule time, drift since) is in
status.retraining, so a restarted operator neither misses nor repeats a firing.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from croniter import CroniterBadDateError, CroniterError, croniter

from mlops_operator.api.model_deployment import Retraining
from mlops_operator.api.slo import Slo
from mlops_operator.builders.retrain_job import job_body
from mlops_operator.clients.kube import ApiError, Kube
from mlops_operator.clients.prometheus import Prometheus, PrometheusError
from mlops_operator.contract import (
    API_VERSION,
    LABEL_MODEL_DEPLOYMENT,
    METRIC_DRIFT_PSI,
    METRIC_LABEL_MODEL_DEPLOYMENT,
    METRIC_LABEL_NAMESPACE,
    RETRAIN_JOB_KIND,
    Owner,
    format_time,
    parse_time,
)
from mlops_operator.status import retrain_job as rs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TriggerDeps:
    kube: Kube
    prometheus: Prometheus | None


def parse_duration(s: str) -> dt.timedelta:
    total = 0
    for n, unit in re.findall(r"(\d+)([smh])", s):
        total += int(n) * {"s": 1, "m": 60, "h": 3600}[unit]
    return dt.timedelta(seconds=total)


def schedule_problem(schedule: str) -> str | None:
    """Why `schedule` can never fire, in the parser's words; None when it is valid (PURE)."""
    try:
        croniter(schedule, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).get_next(dt.datetime)
    except CroniterBadDateError:
        return f"schedule {schedule!r} matches no date (e.g. 30 February): it would never fire"
    except (CroniterError, ValueError, KeyError) as e:
        return f"schedule {schedule!r} is not a valid cron schedule: {e}"
    return None


def seconds_until_due(schedule: str, now: dt.datetime) -> float | None:
    """How long until the next firing after `now` (a moment past it, so that the pass then
    finds it due); None for a schedule that cannot fire (PURE)."""
    if schedule_problem(schedule):
        return None
    nxt = croniter(schedule, now).get_next(dt.datetime)
    return max(0.0, (nxt - now).total_seconds()) + 0.05


def last_due(schedule: str, since: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The latest scheduled time in (since, now], or None (PURE)."""
    it = croniter(schedule, since)
    due = None
    for _ in range(10_000):  # bounded: a long outage catches up with one run, not many
        nxt = it.get_next(dt.datetime)
        if nxt > now:
            break
        due = nxt
    return due


def is_finished(rtj: dict[str, Any]) -> bool:
    return rs.is_finished((rtj.get("status") or {}).get("conditions", []) or [])


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S")


async def reconcile_triggers(
    body: dict[str, Any],
    owner: Owner,
    retraining: Retraining,
    deps: TriggerDeps,
    now: dt.datetime,
    slo: Slo | None = None,
) -> dict[str, Any]:
    """Fire what is due; returns the new status.retraining."""
    old = dict((body.get("status") or {}).get("retraining") or {})
    st: dict[str, Any] = dict(old)
    jobs = [
        j
        for j in await deps.kube.list(
            API_VERSION, RETRAIN_JOB_KIND, owner.namespace, f"{LABEL_MODEL_DEPLOYMENT}={owner.name}"
        )
        if any(r.get("uid") == owner.uid for r in j["metadata"].get("ownerReferences", []) or [])
    ]
    running = [j["metadata"]["name"] for j in jobs if not is_finished(j)]
    st["active"] = sorted(running)
    newest = max(
        (j for j in jobs if is_finished(j)),
        key=lambda j: j["metadata"].get("creationTimestamp", ""),
        default=None,
    )
    if newest is not None:  # kept when historyLimit has pruned every job since
        st["lastResult"] = rs.verdict(newest)

    async def create(trigger: str, when: dt.datetime, reason: str) -> None:
        name = f"{owner.name}-{trigger}-{_ts(when)}"[:253]
        try:
            await deps.kube.create(job_body(owner, retraining, name, trigger, reason, slo))
            log.info("%s/%s: created RetrainJob %s (%s)", owner.namespace, owner.name, name, reason)
        except ApiError as e:
            if e.status != 409:  # already there: this firing was handled before a restart
                raise
        st["lastTriggered"] = {
            "name": name,
            "trigger": trigger,
            "reason": reason,
            "time": format_time(now),
        }
        running.append(name)
        st["active"] = sorted(running)

    if retraining.schedule and (problem := schedule_problem(retraining.schedule)):
        st["message"] = problem  # and the object is Stalled (reconcilers/model_deployment.py)
    elif retraining.schedule:
        created = parse_time(body["metadata"].get("creationTimestamp")) or now
        since = parse_time(old.get("lastScheduleTime")) or created
        due = last_due(retraining.schedule, since, now)
        if due is not None:
            st["lastScheduleTime"] = format_time(due)
            if running:
                st["message"] = (
                    f"skipped the run due at {format_time(due)}: {running[0]} is still running"
                )
            else:
                await create(
                    "schedule",
                    due,
                    f"schedule {retraining.schedule!r} due at {format_time(due)}",
                )
                st["message"] = ""

    if retraining.on_drift:
        await _drift(owner, retraining, deps, now, st, running, create)

    await _prune(deps, owner, jobs, retraining.history_limit, running)
    return st


async def _drift(
    owner: Owner,
    retraining: Retraining,
    deps: TriggerDeps,
    now: dt.datetime,
    st: dict[str, Any],
    running: list[str],
    create: Any,
) -> None:
    d = retraining.on_drift
    assert d is not None
    if deps.prometheus is None:
        st["drift"] = {"message": "drift trigger inactive: MLOPS_PROMETHEUS_URL is not set"}
        return
    where = (
        f'{METRIC_LABEL_NAMESPACE}="{owner.namespace}",'
        f'{METRIC_LABEL_MODEL_DEPLOYMENT}="{owner.name}"'
    )
    expr = f"max({METRIC_DRIFT_PSI}{{{where}}})"
    try:
        psi = await deps.prometheus.scalar(expr)
    except PrometheusError as e:
        st["drift"] = {**(st.get("drift") or {}), "message": str(e)[:500]}
        return
    log.debug("%s/%s: %s = %s", owner.namespace, owner.name, expr, psi)
    drift = dict(st.get("drift") or {})
    drift["psi"] = None if psi is None else round(psi, 4)
    drift["message"] = ""
    if psi is None or psi <= d.threshold:
        drift.pop("since", None)
    else:
        since = parse_time(drift.get("since")) or now
        drift["since"] = format_time(since)
        lasting = now - since
        if lasting >= parse_duration(d.for_):
            if running:
                drift["message"] = f"drifting, but {running[0]} is still running"
            else:
                await create(
                    "drift",
                    now,
                    f"overall PSI {psi:.3f} above {d.threshold} for "
                    f"{int(lasting.total_seconds())}s",
                )
                drift.pop("since", None)  # the next trigger needs another full period
    st["drift"] = drift


async def _prune(
    deps: TriggerDeps, owner: Owner, jobs: list[dict[str, Any]], limit: int, running: list[str]
) -> None:
    done = sorted(
        (j for j in jobs if is_finished(j) and j["metadata"]["name"] not in running),
        key=lambda j: j["metadata"].get("creationTimestamp", ""),
    )
    for j in done[: max(0, len(done) - limit)]:
        await deps.kube.delete(
            API_VERSION,
            RETRAIN_JOB_KIND,
            owner.namespace,
            j["metadata"]["name"],
            uid=j["metadata"]["uid"],
        )
        log.info(
            "%s/%s: pruned RetrainJob %s (historyLimit %d)",
            owner.namespace,
            owner.name,
            j["metadata"]["name"],
            limit,
        )
