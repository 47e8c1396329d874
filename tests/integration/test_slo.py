"""spec.slo for real: the PrometheusRule the operator writes, on the Prometheus Operator's own
CRD (installed here from its Go module, hack/build-binaries.sh), loaded into a real Prometheus
that scrapes a real runtime serving a model that fails on some inputs: the alert fires.

Without the CRD (a plain cluster) no rule is written and status says why; what serves is not
touched either way. The runtime runs as a host process labelled as the ModelDeployment's pod
(its pods here are kwok's and run nothing), as in test_drift_trigger.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kubernetes import client

from mlops_operator.builders.slo import ALERT_ERRORS, ALERT_LATENCY
from tests.support.cluster import eventually
from tests.support.env import Env
from tests.support.helm import find_binary
from tests.support.kube import apply_crds
from tests.support.objects import make_model_deployment, unique
from tests.support.prometheus import start_prometheus
from tests.support.runtime_process import start_runtime

pytestmark = pytest.mark.usefixtures("operator")

RULE_CRD = "prometheusrules.monitoring.coreos.com"
SLO = {"latency": {"p99": "5s"}, "errorRate": 0.05, "window": "10s"}


@pytest.fixture
def rule_crd(kube: client.ApiClient) -> Iterator[None]:
    """The PrometheusRule CRD, as the Prometheus Operator v0.85.0 publishes it; removed after."""
    crd = find_binary("prometheusrules-crd-v0.85.0.yaml")
    assert crd is not None, "run `make setup` (hack/build-binaries.sh fetches it)"
    apply_crds(kube, [Path(crd)])
    yield
    client.ApiextensionsV1Api(kube).delete_custom_resource_definition(RULE_CRD)


def register_failing_model(mlflow_uri: str, name: str) -> str:
    """A model with a bug on rows with a negative `x`: it raises RuntimeError, which the runtime
    answers 500 (a ValueError would read as the client's bad input, a 400)."""
    import mlflow
    from mlflow.pyfunc.model import PythonModel

    class FailsOnNegatives(PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            if (model_input["x"] < 0).any():
                raise RuntimeError("the model broke on a negative input")
            return model_input["x"] * 2

    mlflow.set_tracking_uri(mlflow_uri)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=FailsOnNegatives(), registered_model_name=name
        )
    return str(info.registered_model_version)


def test_without_the_prometheus_operator_no_rule_is_written_and_status_says_why(
    env: Env, kube: client.ApiClient
) -> None:
    ext = client.ApiextensionsV1Api(kube)
    assert RULE_CRD not in {c.metadata.name for c in ext.list_custom_resource_definition().items}
    model = unique("slo-plain")
    from tests.support.models import register_iris

    register_iris(env.mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment("plain", model={"name": model, "alias": "champion"}, slo=SLO))
    c = env.md.wait_cond("plain", "SLORules", status="False", timeout=60)
    assert c["reason"] == "PrometheusRuleUnavailable" and "not installed" in c["message"]
    env.md.wait_ready("plain", timeout=90)  # what serves does not depend on the alerts
    env.md.wait_event("plain", "Warning", "PrometheusRuleUnavailable")


def test_the_written_rule_fires_in_a_real_prometheus_on_a_failing_model(
    env: Env, kube: client.ApiClient, rule_crd: None, tmp_path: Path
) -> None:
    model = unique("slo-failing")
    version = register_failing_model(env.mlflow_uri, model)
    env.apply(
        make_model_deployment(
            "guarded", model={"name": model, "alias": None, "version": version}, slo=SLO
        )
    )
    # the discovery answer is cached for a few seconds: the rule comes once the kind is seen
    env.md.wait_cond("guarded", "SLORules", status="True", timeout=90)
    custom = client.CustomObjectsApi(kube)
    rule = custom.get_namespaced_custom_object(
        "monitoring.coreos.com", "v1", env.ns, "prometheusrules", "guarded"
    )
    md_uid = env.md.get("guarded")["metadata"]["uid"]
    assert rule["metadata"]["ownerReferences"][0]["uid"] == md_uid

    rt = start_runtime(
        f"models:/{model}/{version}", "guarded", env.ns, env.mlflow_uri, tmp_path / "rt.log"
    )
    prom = start_prometheus(tmp_path / "prometheus", rule_groups=rule["spec"]["groups"])
    try:
        prom.set_targets([f"127.0.0.1:{rt.port}"])
        eventually(
            lambda: prom.rule_health() and all(h == "ok" for _, h in prom.rule_health()),
            30,
            what=f"the rules evaluated without error: {prom.rule_health()}",
        )
        rng = np.random.default_rng(1)
        statuses: list[int] = []

        def traffic_until_firing() -> bool:
            # a third of the requests carry a negative input: a 5xx share far over 5%
            for _ in range(6):
                x = rng.normal(1, 1, 3)
                statuses.append(rt.invocations(pd.DataFrame({"x": x})))
            return prom.alerts().get(ALERT_ERRORS) == "firing"

        eventually(traffic_until_firing, 120, 0.5, f"{ALERT_ERRORS} firing: {prom.alerts()}")
        assert 500 in statuses and 200 in statuses
        # the model is fast: the latency budget (5 s) holds, so that alert stays quiet
        assert ALERT_LATENCY not in prom.alerts()
    finally:
        prom.stop()
        rt.stop()


@pytest.mark.parametrize(
    ("slo", "words"),
    [
        ({"latency": {"p99": "fast"}, "errorRate": 0.01}, "spec.slo.latency.p99"),
        ({"latency": {"p99": "200ms"}, "errorRate": 1.5}, "spec.slo.errorRate"),
        ({"errorRate": 0.01}, "spec.slo.latency"),
    ],
)
def test_a_bad_slo_is_refused_by_the_api_server(env: Env, slo: dict[str, Any], words: str) -> None:
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as e:
        env.apply(make_model_deployment("bad-slo", slo=slo))
    assert e.value.status == 422 and words in str(e.value.body)
