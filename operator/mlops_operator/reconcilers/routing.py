"""spec.rollout.trafficRouting.gatewayAPI: the user's HTTPRoute that carries a canary's weight.

read() says whether the route can carry it (the kind is served, the route exists, a rule names
both Services); write_weight() sets the two backendRefs' weights, guarded by the route's
resourceVersion, and only when they differ. The route is never created, deleted or otherwise
changed: it belongs to whoever applied it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.api.rollout import GatewayApi
from mlops_operator.builders import traffic
from mlops_operator.clients.kube import ApiError, Kube
from mlops_operator.contract import HTTP_ROUTE_API_VERSION, HTTP_ROUTE_KIND, Owner


@dataclass(frozen=True)
class Route:
    name: str
    obj: dict[str, Any] | None
    problem: str = ""  # why it cannot carry the weight; empty when it can


def gateway_api(spec: ModelDeploymentSpec) -> GatewayApi | None:
    ro = spec.rollout
    if ro is None or ro.strategy != "Canary" or ro.traffic_routing is None:
        return None
    return ro.traffic_routing.gateway_api


async def read(kube: Kube, owner: Owner, spec: ModelDeploymentSpec) -> Route | None:
    g = gateway_api(spec)
    if g is None:
        return None
    name = g.http_route
    if not await kube.serves(HTTP_ROUTE_API_VERSION, HTTP_ROUTE_KIND):
        return Route(
            name,
            None,
            f"this cluster does not serve {HTTP_ROUTE_API_VERSION} {HTTP_ROUTE_KIND} (the "
            "Gateway API CRDs are not installed): rollout.trafficRouting.gatewayAPI cannot work",
        )
    obj = await kube.get(HTTP_ROUTE_API_VERSION, HTTP_ROUTE_KIND, owner.namespace, name)
    if obj is None:
        return Route(name, None, f"HTTPRoute {name} does not exist in namespace {owner.namespace}")
    _, found = traffic.weighted_rules(_rules(obj), owner, 0)
    if not found:
        stable = traffic.stable_service_name(owner.name)
        canary = traffic.canary_service_name(owner.name)
        return Route(
            name,
            obj,
            f"HTTPRoute {name} has no rule whose backendRefs name both Services {stable} and "
            f"{canary} (the operator creates them; the route decides what reaches them)",
        )
    return Route(name, obj)


async def write_weight(kube: Kube, owner: Owner, route: Route, canary_weight: int) -> bool:
    """True when the route was written."""
    if route.obj is None or route.problem:
        return False
    rules = _rules(route.obj)
    new, _ = traffic.weighted_rules(rules, owner, canary_weight)
    if new == rules:
        return False
    patch = {
        "metadata": {"resourceVersion": route.obj["metadata"]["resourceVersion"]},
        "spec": {"rules": new},
    }
    try:
        await kube.patch_merge(
            HTTP_ROUTE_API_VERSION, HTTP_ROUTE_KIND, owner.namespace, route.name, patch
        )
    except ApiError as e:
        if e.status == 409:  # edited meanwhile: the next pass writes over what it is then
            return False
        raise
    return True


def _rules(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("spec") or {}).get("rules") or [])
