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
    exprs = {
        "requests": q.requests(owner, w, v),
        "error_rate": q.error_rate(owner, w, v),
        "p99_seconds": q.p99(owner, w, v),
    }
    if slo.prediction_drift is not None:
        exprs["prediction_drift"] = q.prediction_drift(owner, v)
    m = await _query(prom, exprs)
    if isinstance(m, Verdict):
        return m, None
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
    m = await _query(
        prom,
        {
            "requests": q.shadow_requests(owner, w, version),
            "error_rate": q.shadow_error_rate(owner, w, version),
            "p99_seconds": q.shadow_p99(owner, w, version),
            "agreement": q.shadow_agreement(owner, w, version),
            "mean_absolute_error": q.shadow_absolute_error(owner, w, version),
            "mean_relative_error": q.shadow_relative_error(owner, w, version),
        },
    )
    if isinstance(m, Verdict):
        return m, None
    return judge(slo, m, min_requests=a.min_requests, subject="shadow"), m


async def _query(prom: Prometheus, exprs: dict[str, str]) -> Measured | Verdict:
    """One query per Measured field, all at once; NaN (0/0: nothing in the window) is a
    missing value. A NoData Verdict when Prometheus cannot be asked."""
    try:
        values = await asyncio.gather(*(prom.scalar(e) for e in exprs.values()))
    except PrometheusError as e:
        return Verdict("NoData", f"Prometheus unreachable: {e}")
    clean = [None if x is None or math.isnan(x) else x for x in values]
    return Measured(**dict(zip(exprs, clean, strict=True)))


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
