"""A canary's weight in a Gateway API HTTPRoute (spec.rollout.trafficRouting.gatewayAPI), on the
real API server with the HTTPRoute CRD of sigs.k8s.io/gateway-api v1.6.3 (hack/build-binaries.sh
fetches it from the Go module).

Object level only: no gateway data plane runs here (no Envoy, no controller programs the
route), so what is checked is what the operator writes into the route and the Services it
weighs; the pods are kwok's. Their analysis has no metrics to judge (simulated pods export
none), so the test moves the rollout on with the one-shot promote action, as a person would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support.cluster import eventually
from tests.support.env import Env
from tests.support.helm import find_binary
from tests.support.kube import apply_crds
from tests.support.models import register_iris, set_alias
from tests.support.objects import make_model_deployment, unique

pytestmark = pytest.mark.usefixtures("operator")

ROUTE_CRD = "httproutes.gateway.networking.k8s.io"
SLO = {"latency": {"p99": "200ms"}, "errorRate": 0.01}


@pytest.fixture(scope="module")
def route_crd(kube: client.ApiClient) -> Iterator[None]:
    crd = find_binary("httproutes-crd-v1.6.3.yaml")
    assert crd is not None, "run `make setup` (hack/build-binaries.sh fetches it)"
    apply_crds(kube, [Path(crd)])
    yield
    client.ApiextensionsV1Api(kube).delete_custom_resource_definition(ROUTE_CRD)


def route(env: Env, name: str, refs: list[dict[str, Any]]) -> None:
    env.apply(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": name},
            "spec": {
                "parentRefs": [{"name": "public"}],  # a Gateway nobody runs here
                "rules": [{"backendRefs": refs}],
            },
        }
    )


def weights(env: Env, name: str) -> dict[str, int]:
    obj = env.custom.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", env.ns, "httproutes", name
    )
    return {r["name"]: r.get("weight", 1) for r in obj["spec"]["rules"][0]["backendRefs"]}


def canary_md(env: Env, name: str, model: str, http_route: str) -> None:
    env.apply(
        make_model_deployment(
            name,
            model={"name": model, "alias": "champion"},
            replicas=4,
            slo=SLO,
            rollout={
                "strategy": "Canary",
                "trafficRouting": {"gatewayAPI": {"httpRoute": http_route}},
            },
        )
    )


def test_the_canary_weight_is_written_into_the_route_and_handed_back(
    env: Env, route_crd: None
) -> None:
    model = unique("routed")
    v1 = register_iris(env.mlflow_uri, model, alias="champion")
    route(
        env,
        "public",
        [
            {"name": "routed-stable", "port": 8080, "weight": 100},
            {"name": "routed-canary", "port": 8080, "weight": 0},
        ],
    )
    canary_md(env, "routed", model, "public")
    env.md.wait_ready("routed", timeout=90)
    stable = env.core.read_namespaced_service("routed-stable", env.ns)
    assert stable.spec.selector == {
        "mlops.dev/model-deployment": "routed",
        "mlops.dev/model-version": v1,
    }
    canary = env.core.read_namespaced_service("routed-canary", env.ns)
    assert canary.spec.selector == {
        "mlops.dev/model-deployment": "routed",
        "mlops.dev/track": "canary",
    }

    v2 = register_iris(env.mlflow_uri, model, max_iter=300)
    set_alias(env.mlflow_uri, model, "champion", v2)
    # the default first step: 20% of the route's weight, and ceil(20% x 4) = 1 canary pod
    eventually(
        lambda: weights(env, "public") == {"routed-stable": 80, "routed-canary": 20},
        60,
        0.5,
        f"weights 80/20: {weights(env, 'public')}",
    )
    assert env.deployment("routed-canary").spec.replicas == 1
    assert env.deployment("routed").spec.replicas == 3

    env.custom.patch_namespaced_custom_object(
        "mlops.dev",
        "v1alpha1",
        env.ns,
        "modeldeployments",
        "routed",
        {"metadata": {"annotations": {"mlops.dev/rollout-action": "promote"}}},
    )
    eventually(
        lambda: (env.md.get("routed")["status"].get("rollout") or {}).get("phase") == "Succeeded",
        60,
        0.5,
        "promoted",
    )
    eventually(
        lambda: weights(env, "public") == {"routed-stable": 100, "routed-canary": 0},
        60,
        0.5,
        "weights back to the stable Service",
    )
    stable = env.core.read_namespaced_service("routed-stable", env.ns)
    assert stable.spec.selector["mlops.dev/model-version"] == v2
    env.md.wait_serving("routed", v2, timeout=120)


def test_a_route_that_does_not_exist_stalls_and_nothing_rolls(env: Env, route_crd: None) -> None:
    model = unique("unrouted")
    v1 = register_iris(env.mlflow_uri, model, alias="champion")
    canary_md(env, "unrouted", model, "no-such-route")
    env.md.wait_ready("unrouted", timeout=90)
    v2 = register_iris(env.mlflow_uri, model, max_iter=300)
    set_alias(env.mlflow_uri, model, "champion", v2)
    c = env.md.wait_cond("unrouted", "Stalled", status="True", timeout=60)
    assert c["reason"] == "RolloutUnavailable", c
    assert "HTTPRoute no-such-route does not exist" in c["message"], c
    assert env.md.cond("unrouted", "Ready")["status"] == "True"
    dep = env.deployment("unrouted")
    assert dep.spec.template.metadata.labels["mlops.dev/model-version"] == v1
    names = {d.metadata.name for d in env.apps.list_namespaced_deployment(env.ns).items}
    assert names == {"unrouted"}
