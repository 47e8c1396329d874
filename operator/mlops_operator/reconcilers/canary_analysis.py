"""One analysis interval of a canary, measured in Prometheus on the canary's own pods (the
runtime's model_version label) and judged against spec.slo (analysis.judge, pure); and one of a
shadow phase, measured by the stable pods on the copies they sent (shadow_version label)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math

from mlops_operator.analysis import Measured, Slo, Verdict, judge
from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.api.rollout import Analysis, AnalysisSpec, Shadow
from mlops_operator.api.slo import seconds
from mlops_operator.builders import slo as q
from mlops_operator.clients.prometheus import Prometheus, PrometheusError
from mlops_operator.contract import Owner, format_time


async def measure(
    prom: Prometheus, owner: Owner, spec: ModelDeploymentSpec, version: str, a: AnalysisSpec
) -> tuple[Verdict, Measured | None]:
    """Judge the canary's last interval on its own pods (the model_version label)."""
    assert spec.slo is not None
    slo = Slo(seconds(spec.slo.latency.p99), spec.slo.error_rate, spec.slo.prediction_drift)
    v, w = q.version(version), a.interval
    exprs = [q.requests(owner, w, v), q.error_rate(owner, w, v), q.p99(owner, w, v)]
    if slo.prediction_drift is not None:
        exprs.append(q.prediction_drift(owner, v))
    try:
        values = await asyncio.gather(*(prom.scalar(e) for e in exprs))
    except PrometheusError as e:
        return Verdict("NoData", f"Prometheus unreachable: {e}"), None
    clean = [None if x is None or math.isnan(x) else x for x in values]
    m = Measured(
        requests=clean[0],
        error_rate=clean[1],
        p99_seconds=clean[2],
        prediction_drift=clean[3] if len(clean) > 3 else None,
    )
    return judge(slo, m, min_requests=a.min_requests), m


async def measure_shadow(
    prom: Prometheus,
    owner: Owner,
    spec: ModelDeploymentSpec,
    version: str,
    a: AnalysisSpec,
    shadow: Shadow,
) -> tuple[Verdict, Measured | None]:
    """Judge the last interval of copies to `version`: its errors and p99 against spec.slo,
    its agreement with the stable answers against the shadow's own gates."""
    assert spec.slo is not None
    slo = Slo(
        seconds(spec.slo.latency.p99),
        spec.slo.error_rate,
        min_agreement=shadow.min_agreement,
        max_relative_error=shadow.max_relative_error,
    )
    w = a.interval
    exprs = [
        q.shadow_requests(owner, w, version),
        q.shadow_error_rate(owner, w, version),
        q.shadow_p99(owner, w, version),
        q.shadow_agreement(owner, w, version),
        q.shadow_absolute_error(owner, w, version),
        q.shadow_relative_error(owner, w, version),
    ]
    try:
        values = await asyncio.gather(*(prom.scalar(e) for e in exprs))
    except PrometheusError as e:
        return Verdict("NoData", f"Prometheus unreachable: {e}"), None
    c = [None if x is None or math.isnan(x) else x for x in values]
    m = Measured(
        requests=c[0],
        error_rate=c[1],
        p99_seconds=c[2],
        agreement=c[3],
        mean_absolute_error=c[4],
        mean_relative_error=c[5],
    )
    return judge(slo, m, min_requests=a.min_requests, subject="shadow"), m


def record(v: Verdict, m: Measured | None, now: dt.datetime) -> Analysis:
    return Analysis(
        time=format_time(now),
        result=v.result,
        message=v.message,
        requests=m.requests if m else None,
        error_rate=m.error_rate if m else None,
        p99_seconds=m.p99_seconds if m else None,
        prediction_drift=m.prediction_drift if m else None,
        agreement=m.agreement if m else None,
        mean_absolute_error=m.mean_absolute_error if m else None,
        mean_relative_error=m.mean_relative_error if m else None,
    )
