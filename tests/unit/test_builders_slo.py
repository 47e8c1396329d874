"""spec.slo -> the PrometheusRule of its alerts (builders/slo.py)."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.api.slo import Slo, seconds
from mlops_operator.builders import slo as b
from tests.support.objects import OWNER

pytestmark = pytest.mark.unit


def make(**over: Any) -> Slo:
    return Slo.model_validate({"latency": {"p99": "200ms"}, "errorRate": 0.01, **over})


@pytest.mark.parametrize(
    ("text", "want"), [("200ms", 0.2), ("1.5s", 1.5), ("5m", 300.0), ("1h", 3600.0)]
)
def test_seconds(text: str, want: float) -> None:
    assert seconds(text) == pytest.approx(want)


def test_the_rule_is_owned_and_names_its_alerts() -> None:
    rule = b.prometheus_rule(OWNER, make())
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    meta = rule["metadata"]
    assert (meta["name"], meta["namespace"]) == ("fraud", "ml")
    assert meta["ownerReferences"][0]["uid"] == OWNER.uid
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "mlops-operator"
    [group] = rule["spec"]["groups"]
    assert [r["alert"] for r in group["rules"]] == [b.ALERT_ERRORS, b.ALERT_LATENCY]
    with_drift = b.rule_groups(OWNER, make(predictionDrift=0.25))[0]["rules"]
    assert [r["alert"] for r in with_drift][-1] == b.ALERT_DRIFT


def test_the_expressions_read_this_deployments_prediction_routes_against_the_budgets() -> None:
    rules = {r["alert"]: r for r in b.rule_groups(OWNER, make(window="30s"))[0]["rules"]}
    errors, latency = rules[b.ALERT_ERRORS], rules[b.ALERT_LATENCY]
    for r in (errors, latency):
        assert 'namespace="ml",model_deployment="fraud"' in r["expr"]
        assert '/invocations|/v2/models/\\\\{model\\\\}/infer"' in r["expr"]  # never /metrics
        assert "[30s]" in r["expr"] and r["for"] == "30s"
        assert r["labels"]["severity"] == "warning"
    assert errors["expr"].endswith("> 0.01") and 'status=~"5.."' in errors["expr"]
    assert latency["expr"].startswith("histogram_quantile(0.99,")
    assert latency["expr"].endswith("> 0.2")


@pytest.mark.parametrize(
    "bad",
    [
        {"latency": {"p99": "fast"}, "errorRate": 0.01},
        {"latency": {"p99": "200ms"}, "errorRate": 1.5},
        {"latency": {"p99": "200ms"}, "errorRate": 0.01, "predictionDrift": 0},
        {"latency": {"p99": "200ms"}, "errorRate": 0.01, "window": "5 minutes"},
        {"errorRate": 0.01},
    ],
)
def test_a_bad_slo_is_refused_by_the_model(bad: dict[str, Any]) -> None:
    # the CRD schema generated from the same model refuses these at admission
    with pytest.raises(ValueError):
        Slo.model_validate(bad)
