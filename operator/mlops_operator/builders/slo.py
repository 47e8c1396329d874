"""PURE: spec.slo -> the PrometheusRule that alerts when the endpoint leaves its service level.

The expressions read the runtime's own metrics on the ModelDeployment's pods (the runtime labels
every series with namespace and model_deployment), over the prediction routes only: health
probes and /metrics scrapes must not dilute the error share or the latency.
"""

from __future__ import annotations

import re
from typing import Any

from mlops_operator.api.slo import Slo, seconds
from mlops_operator.builders.meta import labels, owner_reference
from mlops_operator.contract import (
    METRIC_LABEL_MODEL_DEPLOYMENT,
    METRIC_LABEL_MODEL_VERSION,
    METRIC_LABEL_NAMESPACE,
    METRIC_LABEL_SHADOW_VERSION,
    METRIC_PREDICTION_DRIFT_PSI,
    METRIC_REQUEST_DURATION,
    METRIC_REQUESTS,
    METRIC_SHADOW_ABS_ERROR,
    METRIC_SHADOW_AGREEMENTS,
    METRIC_SHADOW_DURATION,
    METRIC_SHADOW_NUMERIC,
    METRIC_SHADOW_PREDICTIONS,
    METRIC_SHADOW_REL_ERROR,
    METRIC_SHADOW_REQUESTS,
    PROMETHEUS_RULE_API_VERSION,
    PROMETHEUS_RULE_KIND,
    ROUTE_INFER,
    ROUTE_INVOCATIONS,
    Owner,
)

ALERT_ERRORS = "ModelDeploymentErrorRate"
ALERT_LATENCY = "ModelDeploymentLatencyP99"
ALERT_DRIFT = "ModelDeploymentPredictionDrift"


def _routes() -> str:
    # an RE2 alternation, escaped, as a PromQL string body (backslashes doubled)
    return "|".join(re.sub(r"([{}.])", r"\\\\\1", r) for r in (ROUTE_INVOCATIONS, ROUTE_INFER))


def selector(owner: Owner, *extra: str) -> str:
    parts = [
        f'{METRIC_LABEL_NAMESPACE}="{owner.namespace}"',
        f'{METRIC_LABEL_MODEL_DEPLOYMENT}="{owner.name}"',
        *extra,
    ]
    return "{" + ",".join(parts) + "}"


def version(v: str) -> str:
    """The matcher of one model version's pods (a canary's analysis)."""
    return f'{METRIC_LABEL_MODEL_VERSION}="{v}"'


def requests(owner: Owner, window: str, *extra: str) -> str:
    """Prediction requests answered over `window`."""
    answered = selector(owner, f'route=~"{_routes()}"', *extra)
    return f"sum(increase({METRIC_REQUESTS}_total{answered}[{window}]))"


def error_rate(owner: Owner, window: str, *extra: str) -> str:
    """The 5xx share of the prediction requests over `window`."""
    routes = f'route=~"{_routes()}"'
    errors = selector(owner, routes, 'status=~"5.."', *extra)
    # `or vector(0)`: no 5xx at all is a share of 0, not a missing one
    return (
        f"(sum(rate({METRIC_REQUESTS}_total{errors}[{window}])) or vector(0)) / "
        f"sum(rate({METRIC_REQUESTS}_total{selector(owner, routes, *extra)}[{window}]))"
    )


def p99(owner: Owner, window: str, *extra: str) -> str:
    """The 99th percentile of the prediction requests' duration over `window`, in seconds."""
    matchers = selector(owner, f"route=~{_q(_routes())}", *extra)
    bucket = f"{METRIC_REQUEST_DURATION}_bucket{matchers}"
    return f"histogram_quantile(0.99, sum by (le) (rate({bucket}[{window}])))"


def prediction_drift(owner: Owner, *extra: str) -> str:
    return f"max({METRIC_PREDICTION_DRIFT_PSI}{selector(owner, *extra)})"


# -- a shadow phase: what the stable pods measured of the copies they sent to version v ------


def _shadow(owner: Owner, v: str, *extra: str) -> str:
    return selector(owner, f'{METRIC_LABEL_SHADOW_VERSION}="{v}"', *extra)


def shadow_requests(owner: Owner, window: str, v: str) -> str:
    """Copies sent to version v over `window` (those the full queue dropped never left)."""
    sent = _shadow(owner, v, 'outcome!="dropped"')
    return f"sum(increase({METRIC_SHADOW_REQUESTS}_total{sent}[{window}]))"


def shadow_error_rate(owner: Owner, window: str, v: str) -> str:
    """The share of the copies version v failed: an error, a non-200 answer or a timeout."""
    failed = _shadow(owner, v, 'outcome=~"error|timeout"')
    sent = _shadow(owner, v, 'outcome!="dropped"')
    return (
        f"(sum(rate({METRIC_SHADOW_REQUESTS}_total{failed}[{window}])) or vector(0)) / "
        f"sum(rate({METRIC_SHADOW_REQUESTS}_total{sent}[{window}]))"
    )


def shadow_p99(owner: Owner, window: str, v: str) -> str:
    bucket = f"{METRIC_SHADOW_DURATION}_bucket{_shadow(owner, v)}"
    return f"histogram_quantile(0.99, sum by (le) (rate({bucket}[{window}])))"


def _ratio(owner: Owner, window: str, v: str, top: str, bottom: str) -> str:
    m = _shadow(owner, v)
    return f"sum(increase({top}_total{m}[{window}])) / sum(increase({bottom}_total{m}[{window}]))"


def shadow_agreement(owner: Owner, window: str, v: str) -> str:
    """The share of compared predictions version v gave identically."""
    return _ratio(owner, window, v, METRIC_SHADOW_AGREEMENTS, METRIC_SHADOW_PREDICTIONS)


def shadow_absolute_error(owner: Owner, window: str, v: str) -> str:
    return _ratio(owner, window, v, METRIC_SHADOW_ABS_ERROR, METRIC_SHADOW_NUMERIC)


def shadow_relative_error(owner: Owner, window: str, v: str) -> str:
    return _ratio(owner, window, v, METRIC_SHADOW_REL_ERROR, METRIC_SHADOW_NUMERIC)


def _q(s: str) -> str:
    return f'"{s}"'


def rule_groups(owner: Owner, slo: Slo) -> list[dict[str, Any]]:
    """The groups of a Prometheus rule file (and of a PrometheusRule's spec)."""
    window = slo.window
    where = f"{owner.namespace}/{owner.name}"
    common = {
        "severity": "warning",
        METRIC_LABEL_NAMESPACE: owner.namespace,
        METRIC_LABEL_MODEL_DEPLOYMENT: owner.name,
    }
    rules: list[dict[str, Any]] = [
        {
            "alert": ALERT_ERRORS,
            "expr": f"{error_rate(owner, window)} > {slo.error_rate:g}",
            "for": window,
            "labels": common,
            "annotations": {
                "summary": f"{where}: more than {slo.error_rate:.2%} of predictions fail",
                "description": "5xx share of the prediction requests over "
                f"{window} is {{{{ $value | humanizePercentage }}}} (SLO {slo.error_rate:.2%}).",
            },
        },
        {
            "alert": ALERT_LATENCY,
            "expr": f"{p99(owner, window)} > {seconds(slo.latency.p99):g}",
            "for": window,
            "labels": common,
            "annotations": {
                "summary": f"{where}: p99 latency above {slo.latency.p99}",
                "description": f"p99 of the prediction requests over {window} is "
                f"{{{{ $value | humanizeDuration }}}} (SLO {slo.latency.p99}).",
            },
        },
    ]
    if slo.prediction_drift is not None:
        rules.append(
            {
                "alert": ALERT_DRIFT,
                "expr": f"{prediction_drift(owner)} > {slo.prediction_drift:g}",
                "for": window,
                "labels": common,
                "annotations": {
                    "summary": f"{where}: predictions drift from the training baseline",
                    "description": "PSI of the live predictions is {{ $value }} "
                    f"(SLO {slo.prediction_drift:g}).",
                },
            }
        )
    return [{"name": f"mlops-slo-{owner.namespace}-{owner.name}", "rules": rules}]


def prometheus_rule(owner: Owner, slo: Slo) -> dict[str, Any]:
    return {
        "apiVersion": PROMETHEUS_RULE_API_VERSION,
        "kind": PROMETHEUS_RULE_KIND,
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": labels(owner.name),
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {"groups": rule_groups(owner, slo)},
    }
