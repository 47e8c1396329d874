"""The Services and route weights of a Gateway API canary (builders/traffic.py), table by table."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.builders import traffic
from mlops_operator.contract import Owner
from tests.support.objects import make_spec

pytestmark = pytest.mark.unit

OWNER = Owner(name="fraud", namespace="ml", uid="u-1")
STABLE = {"name": "fraud-stable", "port": 8080}
CANARY = {"name": "fraud-canary", "port": 8080}


@pytest.mark.parametrize(
    ("refs", "found", "want"),
    [
        ([STABLE, CANARY], 1, [80, 20]),
        ([{**STABLE, "weight": 1}, {**CANARY, "weight": 7}], 1, [80, 20]),
        # a ref elsewhere or of another kind is not ours, even with our name
        ([{**STABLE, "namespace": "other"}, CANARY], 0, [None, None]),
        ([{**STABLE, "group": "example.com", "kind": "Backend"}, CANARY], 0, [None, None]),
        ([STABLE], 0, [None]),  # both must be named: a rule with one is left alone
        ([STABLE, CANARY, {"name": "mirror", "port": 80, "weight": 5}], 1, [80, 20, 5]),
    ],
    ids=["plain", "reweighed", "other-namespace", "other-kind", "stable-only", "third-ref"],
)
def test_weighted_rules(refs: list[dict[str, Any]], found: int, want: list[int | None]) -> None:
    rules = [{"matches": [{"path": {"value": "/"}}], "backendRefs": refs}]
    out, n = traffic.weighted_rules(rules, OWNER, 20)
    assert n == found
    assert [r.get("weight") for r in out[0]["backendRefs"]] == [
        w if w is not None else r.get("weight") for w, r in zip(want, refs, strict=True)
    ]
    assert out[0]["matches"] == rules[0]["matches"]
    assert rules[0]["backendRefs"] == refs  # the input is not changed


def test_the_services_select_the_stable_version_and_the_canary_track() -> None:
    stable, canary = traffic.services(OWNER, make_spec(), "7")
    assert stable["metadata"]["name"] == "fraud-stable"
    assert stable["spec"]["selector"] == {
        "mlops.dev/model-deployment": "fraud",
        "mlops.dev/model-version": "7",
    }
    assert canary["metadata"]["name"] == "fraud-canary"
    assert canary["spec"]["selector"]["mlops.dev/track"] == "canary"
    for svc in (stable, canary):
        assert svc["metadata"]["ownerReferences"][0]["uid"] == "u-1"
