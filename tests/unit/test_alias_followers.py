"""Which ModelDeployments an accepted alias event wakes (wiring.follows): those whose
spec.model follows that model's alias, not the ones pinned to a version or following another."""

from __future__ import annotations

import pytest

from mlops_operator.wiring import follows

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "model, woken",
    [
        ({"name": "fraud", "alias": "champion"}, True),
        ({"name": "fraud", "alias": "challenger"}, False),
        ({"name": "other", "alias": "champion"}, False),
        ({"name": "fraud", "version": "3"}, False),  # pinned: an alias move is not its business
        (None, False),
    ],
)
def test_an_alias_event_wakes_the_followers_of_that_model_and_alias(
    model: dict[str, str] | None, woken: bool
) -> None:
    body = {"metadata": {"name": "x"}, "spec": {"model": model} if model else {}}
    assert follows(body, "fraud", "champion") is woken
