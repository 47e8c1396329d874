"""One ModelDeployment reconcile pass, step by step, against the FAKE Kube and Registry
(tests/support/fakes.py). These add to the integration tests on the real API server and MLflow
(tests/integration/test_model_deployment.py), which stay the judges of behaviour."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from mlops_operator.clients.kube import ApiError
from mlops_operator.contract import (
    API_VERSION,
    LABEL_MODEL_DEPLOYMENT,
    MODEL_DEPLOYMENT_KIND,
    RETRAIN_JOB_KIND,
    Reason,
    Requeue,
)
from mlops_operator.reconcilers import model_deployment as mdr
from mlops_operator.reconcilers.triggers import TriggerDeps
from tests.support.fakes import FakeKube, FakeRegistry
from tests.support.objects import CTX, make_model_deployment

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
NS = "ml"


class World:
    def __init__(self, **spec: Any) -> None:
        self.kube, self.registry = FakeKube(), FakeRegistry()
        self.events: list[tuple[str, str]] = []
        self.version = self.registry.add("fraud-detector", alias="champion", accuracy=0.9)
        body = make_model_deployment("fraud", NS, **spec)
        body["metadata"]["creationTimestamp"] = "2026-12-01T09:00:00Z"
        self.kube.put(body)
        self.deps = mdr.Deps(
            kube=self.kube,
            registry=self.registry,
            build=CTX,
            event=lambda _b, type_, reason, _m: self.events.append((type_, reason)),
            triggers=TriggerDeps(kube=self.kube, prometheus=None),
        )

    def body(self) -> dict[str, Any]:
        got = asyncio.run(self.kube.get(API_VERSION, MODEL_DEPLOYMENT_KIND, NS, "fraud"))
        assert got is not None
        return got

    def reconcile(self, now: dt.datetime = NOW) -> Requeue | None:
        return asyncio.run(mdr.reconcile(self.body(), self.deps, now))

    def conditions(self) -> dict[str, tuple[str, str]]:
        st = self.body().get("status") or {}
        return {c["type"]: (c["status"], c["reason"]) for c in st.get("conditions", [])}

    def deployment(self) -> dict[str, Any]:
        dep = asyncio.run(self.kube.get("apps/v1", "Deployment", NS, "fraud"))
        assert dep is not None
        return dep

    def roll_out(self) -> None:
        """What the Deployment controller would report once the pods are available."""
        dep = self.deployment()
        n = dep["spec"].get("replicas", 1)
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": n,
            "updatedReplicas": n,
            "readyReplicas": n,
            "availableReplicas": n,
        }
        self.kube.objects[("apps/v1", "Deployment", NS, "fraud")] = dep

    def status_writes(self) -> int:
        return sum(1 for w in self.kube.writes_of("patch") if w.subresource == "status")


def test_a_new_model_deployment_gets_its_children_and_one_status_write() -> None:
    w = World()
    assert w.reconcile() is None
    applied = {x.kind for x in w.kube.writes_of("apply")}
    assert {"Deployment", "Service", "NetworkPolicy"} <= applied
    assert w.status_writes() == 1
    assert w.conditions()["Ready"] == ("False", Reason.PROGRESSING)
    assert w.conditions()["ModelResolved"] == ("True", Reason.RESOLVED)
    tpl = w.deployment()["spec"]["template"]["metadata"]["labels"]
    assert tpl["mlops.dev/model-version"] == w.version


def test_an_unchanged_world_costs_no_write() -> None:
    w = World()
    w.reconcile()
    w.roll_out()
    w.reconcile()
    assert w.conditions()["Ready"] == ("True", Reason.AVAILABLE)
    before = len(w.kube.writes)
    w.reconcile()  # a resync: the same desired children, the same status
    assert w.kube.writes[before:] == []


def test_a_registry_outage_keeps_the_pinned_version_serving_and_says_so() -> None:
    w = World()
    w.reconcile()
    w.roll_out()
    w.reconcile()
    w.registry.down = True
    requeue = w.reconcile()
    assert requeue is not None and requeue.backoff
    assert w.conditions()["Ready"] == ("True", Reason.AVAILABLE)
    assert w.conditions()["ModelResolved"] == ("False", Reason.REGISTRY_UNAVAILABLE)
    ready = next(c for c in w.body()["status"]["conditions"] if c["type"] == "Ready")
    assert "registry unreachable" in ready["message"]
    labels = w.deployment()["spec"]["template"]["metadata"]["labels"]
    assert labels["mlops.dev/model-version"] == w.version  # never rolled to nothing


def test_a_deployment_it_does_not_own_stalls_and_is_left_alone() -> None:
    w = World()
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fraud", "namespace": NS},
        "spec": {"replicas": 3},
    }
    w.kube.put(foreign)
    w.reconcile()
    assert w.conditions()["Stalled"] == ("True", Reason.NAME_CONFLICT)
    assert w.kube.writes_of("apply") == []
    assert w.deployment()["spec"] == {"replicas": 3}
    assert ("Warning", Reason.NAME_CONFLICT) in w.events


def test_a_due_schedule_creates_a_job_and_its_memory_goes_out_in_the_same_status_write() -> None:
    w = World(
        retraining={
            "schedule": "*/30 * * * *",
            "template": {
                "model": {"name": "fraud-detector"},
                "pipeline": {"name": "tabular-train", "parameters": {"data_uri": "sklearn:iris"}},
                "promotion": {"metric": "accuracy", "alias": "champion"},
            },
        }
    )
    w.reconcile()  # 10:00: the 09:30 and 10:00 firings are due since creation at 09:00
    [job] = w.kube.writes_of("create", RETRAIN_JOB_KIND)
    assert job.name.startswith("fraud-schedule-")
    assert job.body["metadata"]["labels"][LABEL_MODEL_DEPLOYMENT] == "fraud"
    assert w.status_writes() == 1  # conditions, model and status.retraining together
    st = w.body()["status"]
    assert st["retraining"]["lastScheduleTime"] == "2026-12-01T10:00:00Z"
    assert st["retraining"]["active"] == [job.name]
    assert "Ready" in {c["type"] for c in st["conditions"]}
    # the queue is woken for the next firing (10:30), not left to the next resync
    later = NOW + dt.timedelta(minutes=29, seconds=50)
    wake = w.reconcile(later)
    assert wake is not None and wake.after == pytest.approx(10.05)
    # the job still runs at the next firing: skipped, and said so
    w.reconcile(NOW + dt.timedelta(minutes=30))
    assert len(w.kube.writes_of("create", RETRAIN_JOB_KIND)) == 1
    assert "still running" in w.body()["status"]["retraining"]["message"]


def test_a_firing_is_not_made_again_from_a_body_older_than_it() -> None:
    w = World(
        retraining={
            "schedule": "0 10 * * *",
            "historyLimit": 0,
            "template": {
                "model": {"name": "fraud-detector"},
                "pipeline": {"name": "tabular-train", "parameters": {"data_uri": "sklearn:iris"}},
                "promotion": {"metric": "accuracy", "alias": "champion"},
            },
        }
    )
    stale = w.body()  # what a watch event still carries after the firing's status write
    w.reconcile()
    [job] = w.kube.writes_of("create", RETRAIN_JOB_KIND)
    stored = w.kube.objects[(API_VERSION, RETRAIN_JOB_KIND, NS, job.name)]
    stored["status"] = {"conditions": [{"type": "Succeeded", "status": "False", "reason": "X"}]}
    later = NOW + dt.timedelta(minutes=1)
    w.reconcile(later)  # historyLimit 0: the finished job is pruned
    assert (API_VERSION, RETRAIN_JOB_KIND, NS, job.name) not in w.kube.objects
    asyncio.run(mdr.reconcile(stale, w.deps, later))
    assert len(w.kube.writes_of("create", RETRAIN_JOB_KIND)) == 1  # no second run of 10:00
    assert "skipped" not in w.body()["status"]["retraining"].get("message", "")


def test_the_fake_refuses_a_stale_status_write() -> None:
    # the resourceVersion guard the reconciler relies on (status_write.StaleBody) is modelled
    w = World()
    body = w.body()
    w.reconcile()  # moves the resourceVersion on
    with pytest.raises(Exception, match="modified"):
        asyncio.run(
            w.kube.patch_merge(
                API_VERSION,
                MODEL_DEPLOYMENT_KIND,
                NS,
                "fraud",
                {
                    "status": {},
                    "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
                },
                "status",
            )
        )


SLO = {"latency": {"p99": "200ms"}, "errorRate": 0.01}
RULE = ("monitoring.coreos.com/v1", "PrometheusRule", NS, "fraud")


def test_an_slo_on_a_cluster_without_prometheus_rules_says_so_and_serves_anyway() -> None:
    w = World(slo=SLO)
    w.reconcile()
    w.roll_out()
    w.reconcile()
    assert w.conditions()["SLORules"] == ("False", Reason.PROMETHEUS_RULE_UNAVAILABLE)
    assert w.conditions()["Ready"] == ("True", Reason.AVAILABLE)
    assert RULE not in w.kube.objects and not w.kube.writes_of("apply", "PrometheusRule")


def test_an_slo_where_prometheus_rules_are_served_gets_its_rule_and_loses_it_with_the_slo() -> None:
    w = World(slo=SLO)
    w.kube.unserved.clear()
    w.reconcile()
    assert w.conditions()["SLORules"] == ("True", Reason.RULES_WRITTEN)
    rule = w.kube.objects[RULE]
    assert rule["metadata"]["ownerReferences"][0]["uid"] == w.body()["metadata"]["uid"]
    # the spec drops its SLO: the rule and the condition go
    body = w.body()
    del body["spec"]["slo"]
    w.kube.objects[(API_VERSION, MODEL_DEPLOYMENT_KIND, NS, "fraud")] = body
    w.reconcile()
    assert RULE not in w.kube.objects
    assert "SLORules" not in w.conditions()


# what the API server answers a child it will not take (the integration tests meet the real
# ones: tests/integration/test_model_deployment.py)
INVALID = ApiError(422, "Invalid", 'Service "fraud" is invalid: metadata.name: must be no more')
SSA_TYPE_ERROR = ApiError(
    500,
    "InternalError",
    "failed to create typed patch object (ml/fraud; apps/v1, Kind=Deployment): "
    '.spec.template.spec.containers[name="model"].env[0].x: field not declared in schema',
)
FORBIDDEN = ApiError(403, "Forbidden", 'deployments.apps "fraud" is forbidden: quota exceeded')


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (INVALID, Reason.INVALID_SPEC),
        (SSA_TYPE_ERROR, Reason.INVALID_SPEC),
        (FORBIDDEN, Reason.FORBIDDEN),
    ],
    ids=["422", "ssa-500", "403"],
)
def test_a_child_the_api_server_refuses_stalls_and_is_not_sent_again(
    error: ApiError, reason: str
) -> None:
    w = World()
    w.kube.faults[("apply", "Deployment")] = error
    assert w.reconcile() is None  # no retry loop: the next attempt is the next generation's
    assert w.conditions()["Stalled"] == ("True", reason)
    stalled = next(c for c in w.body()["status"]["conditions"] if c["type"] == "Stalled")
    assert error.message in stalled["message"]
    assert ("Warning", reason) in w.events
    tried, writes = len(w.kube.faulted), len(w.kube.writes)
    assert w.reconcile() is None  # a resync: the same children would meet the same answer
    assert (len(w.kube.faulted), len(w.kube.writes)) == (tried, writes)
    # a new generation is tried again, and once taken the object recovers
    asyncio.run(
        w.kube.patch_merge(
            API_VERSION, MODEL_DEPLOYMENT_KIND, NS, "fraud", {"spec": {"replicas": 2}}
        )
    )
    del w.kube.faults[("apply", "Deployment")]
    w.reconcile()
    w.roll_out()
    w.reconcile()
    assert w.conditions()["Stalled"] == ("False", Reason.NOT_STALLED)
    assert w.conditions()["Ready"] == ("True", Reason.AVAILABLE)


def test_an_api_server_that_does_not_answer_is_said_and_retried_with_backoff() -> None:
    w = World()
    w.kube.faults[("apply", "*")] = TimeoutError()
    r = w.reconcile()  # no exception (the work queue would log a traceback per pass)
    assert r is not None and r.backoff
    assert w.conditions()["Reconciling"] == ("True", Reason.API_UNAVAILABLE)
    assert w.conditions()["Ready"] == ("False", Reason.API_UNAVAILABLE)  # never reconciled
    del w.kube.faults[("apply", "*")]
    w.reconcile()
    w.roll_out()
    w.reconcile()
    assert w.conditions()["Ready"] == ("True", Reason.AVAILABLE)
    # overloaded while the model serves: what serves is untouched, and Ready stays
    w.kube.faults[("get", "Deployment")] = ApiError(429, "TooManyRequests", "slow down")
    r = w.reconcile()
    assert r is not None and r.backoff
    assert w.conditions()["Ready"] == ("True", Reason.AVAILABLE)
    assert w.conditions()["Reconciling"] == ("True", Reason.API_UNAVAILABLE)
    # and when the status write fails too, the pass still ends quietly, to be retried
    w.kube.faults[("patch", "*")] = ApiError(503, "ServiceUnavailable", "etcd leader changed")
    r = w.reconcile()
    assert r is not None and r.backoff


def test_a_namespace_being_deleted_is_let_go() -> None:
    w = World()
    w.kube.faults[("apply", "*")] = ApiError(
        403,
        "Forbidden",
        'deployments.apps "fraud" is forbidden: unable to create new content in namespace ml '
        "because it is being terminated",
    )
    assert w.reconcile() is None
    assert w.kube.writes_of("patch") == []  # no Forbidden stall, no status at all
