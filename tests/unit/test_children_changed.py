"""Which watch events of a child make its owner's children be written again: changes by
someone else, not the operator's own writes coming back or the child's controller's status."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.reconcilers.children import AppliedCache, Written


def child(
    rv: str = "10",
    generation: int | None = 1,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    kind: str = "Deployment",
    name: str = "fraud",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "resourceVersion": rv,
        "labels": {"app.kubernetes.io/managed-by": "mlops-operator"} if labels is None else labels,
        "annotations": {"mlops.dev/model-uri": "models:/fraud/3"}
        if annotations is None
        else annotations,
    }
    if generation is not None:
        meta["generation"] = generation
    return {"kind": kind, "metadata": meta}


WRITTEN = child()
OURS = {"app.kubernetes.io/managed-by": "mlops-operator"}
URI = {"mlops.dev/model-uri": "models:/fraud/3"}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("why", "event_type", "seen", "changed"),
    [
        ("our own write coming back", "ADDED", child(), False),
        ("its controller wrote status", "MODIFIED", child(rv="11"), False),
        ("others added a label and the revision annotation", "MODIFIED",
         child(rv="12", labels={**OURS, "team": "a"},
               annotations={**URI, "deployment.kubernetes.io/revision": "2"}), False),
        ("deleted", "DELETED", child(rv="13"), True),
        ("its spec edited (a new generation)", "MODIFIED", child(rv="14", generation=2), True),
        ("a label we set edited away", "MODIFIED", child(rv="15", labels={}), True),
        ("an annotation we set changed", "MODIFIED",
         child(rv="16", annotations={"mlops.dev/model-uri": "models:/fraud/1"}), True),
    ],
)  # fmt: skip
def test_a_change_to_correct_is_a_change_by_someone_else(
    why: str, event_type: str, seen: dict[str, Any], changed: bool
) -> None:
    assert Written.of(WRITTEN).changed_in(event_type, seen) is changed, why


@pytest.mark.unit
def test_a_kind_without_generations_counts_any_other_version_as_changed() -> None:
    svc = child(generation=None, kind="Service")
    w = Written.of(svc)
    assert w.changed_in("MODIFIED", svc) is False
    assert w.changed_in("MODIFIED", child(rv="11", generation=None, kind="Service")) is True


@pytest.mark.unit
def test_the_cache_marks_the_owner_dirty_only_for_recorded_children_changed_by_others() -> None:
    cache = AppliedCache()
    svc = child(kind="Service", generation=None)
    cache.record("ml", "fraud", [(WRITTEN, WRITTEN), (svc, svc)])
    cache.child_seen("ml", "fraud", "MODIFIED", child(rv="11"))  # status only
    assert cache.dirty == set()
    cache.child_seen("ml", "fraud", "MODIFIED", child(rv="12", generation=2))
    assert cache.dirty == {("ml", "fraud")}
    cache.dirty.clear()
    # a child it removed itself (the canary, the shadow) going away is not a change to correct
    canary = child(name="fraud-canary")
    cache.record("ml", "fraud", [(canary, canary)])
    cache.removed("ml", "fraud", "Deployment", "fraud-canary")
    cache.child_seen("ml", "fraud", "DELETED", child(name="fraud-canary"))
    assert cache.dirty == set()
    cache.child_seen("ml", "fraud", "DELETED", child(kind="Service", generation=None))
    assert cache.dirty == {("ml", "fraud")}
    cache.forget("ml", "fraud")
    assert cache.written == {} and cache.dirty == set()


@pytest.mark.unit
def test_only_the_keys_it_sent_are_its_own() -> None:
    # the answer carries the revision annotation the Deployment controller added: when that
    # controller changes it on the next rollout, nothing of ours was touched
    answered = child(annotations={**URI, "deployment.kubernetes.io/revision": "1"})
    w = Written.of(answered, sent=child())
    later = child(rv="11", annotations={**URI, "deployment.kubernetes.io/revision": "2"})
    assert w.changed_in("MODIFIED", later) is False
