"""PURE: a canary's weight in a Gateway API HTTPRoute (spec.rollout.trafficRouting.gatewayAPI).

Two Services give the route something to weigh: <name>-stable selects the pods of the version
the stable Deployment serves (by its model-version label: no pod changes, so the stable pods
are never restarted for it), <name>-canary the canary's pods (by the track label). The route is
the user's: only the weights of the backendRefs naming those two Services are written, as
Argo Rollouts' Gateway API plugin does.
"""

from __future__ import annotations

import copy
from typing import Any

from mlops_operator.api.model_deployment import ModelDeploymentSpec
from mlops_operator.builders.meta import canary_name, selector, service
from mlops_operator.contract import LABEL_MODEL_VERSION, LABEL_TRACK, TRACK_CANARY, Owner

STABLE_SUFFIX = "-stable"


def stable_service_name(name: str) -> str:
    return f"{name}{STABLE_SUFFIX}"


def canary_service_name(name: str) -> str:
    return canary_name(name)


def services(owner: Owner, spec: ModelDeploymentSpec, stable_version: str) -> list[dict[str, Any]]:
    """<name>-stable (the pods at stable_version) and <name>-canary (the canary's pods)."""
    return [
        service(
            owner,
            spec,
            stable_service_name(owner.name),
            {**selector(owner.name), LABEL_MODEL_VERSION: stable_version},
        ),
        service(
            owner,
            spec,
            canary_service_name(owner.name),
            {**selector(owner.name), LABEL_TRACK: TRACK_CANARY},
        ),
    ]


def _names_service(ref: dict[str, Any], name: str, namespace: str) -> bool:
    return (
        ref.get("name") == name
        and ref.get("kind", "Service") == "Service"
        and ref.get("group", "") == ""
        and ref.get("namespace", namespace) == namespace
    )


def weighted_rules(
    rules: list[dict[str, Any]], owner: Owner, canary_weight: int
) -> tuple[list[dict[str, Any]], int]:
    """The route's rules with the two Services' weights set (stable 100 - w, canary w), and
    how many rules name both (0: the route does not route to this ModelDeployment's canary)."""
    stable, canary = stable_service_name(owner.name), canary_service_name(owner.name)
    out = copy.deepcopy(rules)
    found = 0
    for rule in out:
        refs = rule.get("backendRefs") or []
        has = [any(_names_service(r, n, owner.namespace) for r in refs) for n in (stable, canary)]
        if not all(has):
            continue
        found += 1
        for ref in refs:
            if _names_service(ref, stable, owner.namespace):
                ref["weight"] = 100 - canary_weight
            elif _names_service(ref, canary, owner.namespace):
                ref["weight"] = canary_weight
    return out, found
