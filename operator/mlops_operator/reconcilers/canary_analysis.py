"""One analysis interval of a canary, measured in Prometheus on the canary's own pods (the
runtime's model_version label) and judged against spec.slo (analysis.judge, pure)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math

from mlops_operator.analysis import Measured, Slo, Verdict, judge
from mlops_operator.api.model_deployment import Analysis, ModelDeploymentSpec
from mlops_operator.api.rollout import AnalysisSpec
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


def record(v: Verdict, m: Measured | None, now: dt.datetime) -> Analysis:
    return Analysis(
        time=format_time(now),
        result=v.result,
        message=v.message,
        requests=m.requests if m else None,
        error_rate=m.error_rate if m else None,
        p99_seconds=m.p99_seconds if m else None,
        prediction_drift=m.prediction_drift if m else None,
    )
