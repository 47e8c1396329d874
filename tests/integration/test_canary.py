"""Canary rollouts for real: model pods on the real node, a real Prometheus that finds them
through the API server and scrapes the runtime's metrics, traffic through the ClusterIP, and the
operator judging each analysis interval of the canary's own pods against spec.slo.

Intervals are seconds long here (the defaults are 30 s and 1 m pauses); what is judged is the
same. The paths that need minutes or many restarts to reach are also walked against fakes in
tests/unit/test_rollout_flow.py.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from mlops_operator.contract import TAG_RETRAINJOB, TAG_ROLLED_BACK
from tests.support.cluster import eventually
from tests.support.env import Env
from tests.support.models import (
    body_with_age,
    oip,
    register_diabetes,
    register_misbehaving,
    rows,
    set_alias,
)
from tests.support.objects import unique
from tests.support.operator_process import OperatorProcess
from tests.support.prometheus import PrometheusServer
from tests.support.traffic import Traffic

pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("real_node", "operator")]

SLO = {"latency": {"p99": "500ms"}, "errorRate": 0.05, "window": "10s"}
ANALYSIS = {"interval": "6s", "failureLimit": 2, "minRequests": 3}


@pytest.fixture(autouse=True)
def restricted(env: Env) -> None:
    env.restrict()


def canary(steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"strategy": "Canary", "analysis": ANALYSIS, **({"steps": steps} if steps else {})}


def rollout(env: Env, name: str) -> dict[str, Any]:
    return dict(env.md.get(name).get("status", {}).get("rollout") or {})


def wait_phase(env: Env, name: str, phase: str, timeout: float) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        r = rollout(env, name)
        return r if r.get("phase") == phase else None

    return eventually(
        check, timeout, 0.5, f"rollout {phase}: {rollout(env, name)}; pods {env.debug(name)}"
    )


def canary_deployment(env: Env, name: str) -> Any:
    try:
        return env.deployment(f"{name}-canary")
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def canary_pods(env: Env, name: str) -> list[Any]:
    return [p for p in env.pods(name) if (p.metadata.labels or {}).get("mlops.dev/track")]


def serving_v1_under_traffic(
    env: Env, mlflow_uri: str, traffic: Callable[..., Traffic], name: str, pause: str
) -> tuple[str, str, str, Traffic]:
    """A diabetes model with versions v1 (serving, alias champion) and v2; a Canary of steps
    50%, pause, analysis; traffic flowing through its Service. -> (model, v1, v2, traffic)"""
    model = unique(name)
    v1 = register_diabetes(mlflow_uri, model, alpha=0.5)
    v2 = register_diabetes(mlflow_uri, model, alpha=2.0)
    set_alias(mlflow_uri, model, "champion", v1)
    steps: list[dict[str, Any]] = [
        {"setWeight": 50},
        {"pause": {"duration": pause}},
        {"analysis": {}},
    ]
    env.apply_md(name, model, slo=SLO, rollout=canary(steps))
    env.md.wait_serving(name, v1)
    s = env.served(name, model)
    t = traffic(f"{s.url}/v2/models/{name}/infer", oip(rows(5)), fresh=True)
    eventually(lambda: t.ok >= 20, 60, 0.2, "traffic before the canary")
    return model, v1, v2, t


def test_a_good_version_is_promoted_step_by_step_and_no_request_is_lost(
    env: Env, mlflow_uri: str, traffic: Callable[..., Traffic]
) -> None:
    model, v1, v2, t = serving_v1_under_traffic(env, mlflow_uri, traffic, "good", "8s")

    moved = time.monotonic()
    set_alias(mlflow_uri, model, "champion", v2)
    at_50 = eventually(lambda: rollout(env, "good").get("weight") == 50, 60, 0.5, "canary at 50%")
    assert at_50
    dep = eventually(lambda: canary_deployment(env, "good"), 30, 0.5, "good-canary")
    assert dep.spec.selector.match_labels == {
        "mlops.dev/model-deployment": "good",
        "mlops.dev/track": "canary",
    }
    assert dep.spec.template.metadata.labels["mlops.dev/model-version"] == v2
    # the stable Deployment keeps its name, selector and version while the canary runs
    stable = env.deployment("good")
    assert stable.spec.template.metadata.labels["mlops.dev/model-version"] == v1
    assert env.md.cond("good", "Ready")["status"] == "True"
    assert env.md.cond("good", "Reconciling")["reason"] in ("RolloutProgressing", "RolloutPaused")

    ro = wait_phase(env, "good", "Succeeded", 240)
    promoted = time.monotonic() - moved
    last = ro["lastAnalysis"]
    assert last["result"] == "Pass" and last["requests"] >= 3, last
    assert last["errorRate"] == 0 and last["p99Seconds"] < 0.5, last
    env.md.wait_serving("good", v2)
    eventually(lambda: canary_deployment(env, "good") is None, 120, 0.5, "canary removed")
    env.wait_pods_at("good", v2)
    during = t.ok
    eventually(lambda: t.ok >= during + 30, 60, 0.2, "traffic after the promotion")
    t.finish()
    print(
        f"canary promoted {promoted:.1f} s after the alias moved (steps: 50%, pause 8s, "
        f"analysis every 6s); {t.ok} ok, {len(t.failed)} failed"
    )
    assert t.failed == [], t.failed[:5]
    assert t.versions == {v1, v2}  # the canary answered too: traffic really was split
    reasons = [r for _, r, _ in env.md.event_list("good")]
    for reason in ("RolloutStarted", "RolloutStep", "RolloutSucceeded"):
        assert reason in reasons, reasons


@pytest.mark.parametrize("bad", ["errors", "slow"])
def test_a_bad_version_is_rolled_back_by_analysis_and_the_alias_reverted(
    env: Env, mlflow_uri: str, traffic: Callable[..., Traffic], bad: str
) -> None:
    from mlflow.tracking import MlflowClient

    model = unique(f"bad-{bad}")
    v1 = register_diabetes(mlflow_uri, model, alpha=0.5)
    # registered as a RetrainJob registers: the rollback reverts the alias by default
    v2 = register_misbehaving(
        mlflow_uri,
        model,
        rows(50),
        fail_column="age" if bad == "errors" else None,
        sleep_seconds=1.0 if bad == "slow" else 0.0,
        tags={TAG_RETRAINJOB: f"{env.ns}/retrain-1/uid-1"},
    )
    set_alias(mlflow_uri, model, "champion", v1)
    env.apply_md("bad", model, slo=SLO, rollout=canary())  # the default steps: 20% first
    env.md.wait_serving("bad", v1)
    s = env.served("bad", model)
    url = f"{s.url}/v2/models/bad/infer"
    bodies = (body_with_age(negative=False), body_with_age(negative=True))
    ts = [traffic(url, *bodies, fresh=True) for _ in range(3 if bad == "slow" else 1)]
    eventually(lambda: ts[0].ok >= 20, 60, 0.2, "traffic before the canary")

    moved = time.monotonic()
    set_alias(mlflow_uri, model, "champion", v2)
    ro = wait_phase(env, "bad", "RolledBack", 240)
    took = time.monotonic() - moved
    last = ro["lastAnalysis"]
    assert last["result"] == "Fail", last
    judged = "error rate" if bad == "errors" else "p99 latency"
    stalled = env.md.cond("bad", "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "RolledBack", stalled
    assert judged in stalled["message"] and "budget" in stalled["message"], stalled
    assert env.md.cond("bad", "Ready")["status"] == "True"  # the stable version serves
    env.md.wait_event("bad", "Warning", "RolledBack")
    eventually(lambda: canary_deployment(env, "bad") is None, 60, 0.5, "canary removed")
    eventually(lambda: not canary_pods(env, "bad"), 90, 0.5, "canary pods gone")

    # the alias is back on the stable version, and the failed version says why
    reg = MlflowClient(mlflow_uri)
    eventually(
        lambda: reg.get_model_version_by_alias(model, "champion").version == v1,
        30,
        0.5,
        "alias reverted",
    )
    tag = reg.get_model_version(model, v2).tags.get(TAG_ROLLED_BACK, "")
    assert tag.startswith(f"{env.ns}/bad: ") and judged in tag, tag
    assert eventually(lambda: rollout(env, "bad").get("aliasReverted"), 30, 0.5, "recorded")
    env.md.wait_event("bad", "Normal", "AliasReverted")
    assert env.deployment("bad").spec.template.metadata.labels["mlops.dev/model-version"] == v1
    print(f"{bad}: rolled back {took:.1f} s after the alias moved: {stalled['message']}")

    # from now on the stable pods answer everything: no canary is tried again
    failed = sum(len(t.failed) for t in ts)
    ok = ts[0].ok
    eventually(lambda: ts[0].ok >= ok + 30, 60, 0.2, "traffic after the rollback")
    assert sum(len(t.failed) for t in ts) == failed
    assert canary_deployment(env, "bad") is None
    assert env.md.cond("bad", "Stalled")["reason"] == "RolledBack"


@pytest.mark.chaos
def test_prometheus_lost_and_the_operator_killed_mid_rollout_pause_it_then_it_resumes(
    env: Env,
    mlflow_uri: str,
    traffic: Callable[..., Traffic],
    prometheus: PrometheusServer,
    operator: OperatorProcess,
) -> None:
    model, _, v2, t = serving_v1_under_traffic(env, mlflow_uri, traffic, "chaos", "10s")
    set_alias(mlflow_uri, model, "champion", v2)

    def judged(result: str) -> dict[str, Any] | None:
        ro = rollout(env, "chaos")
        return ro if (ro.get("lastAnalysis") or {}).get("result") == result else None

    eventually(lambda: judged("Pass"), 120, 0.5, f"a passing interval: {rollout(env, 'chaos')}")
    started = rollout(env, "chaos")["startedAt"]
    prometheus.stop()
    try:
        ro = eventually(lambda: judged("NoData"), 60, 0.5, "an interval without Prometheus")
        assert ro["phase"] == "Paused" and ro["weight"] == 50, ro
        assert "Prometheus unreachable" in ro["lastAnalysis"]["message"], ro
        assert env.md.cond("chaos", "Reconciling")["reason"] == "RolloutPaused"
        assert env.md.cond("chaos", "Ready")["status"] == "True"
        # killed without a chance to clean up, and started again while Prometheus is away
        operator.stop(signal.SIGKILL)
        operator.start_again()
        time.sleep(12)  # longer than the pause: nothing is promoted without a measurement
        ro = rollout(env, "chaos")
        assert (ro["phase"], ro["weight"], ro["startedAt"]) == ("Paused", 50, started), ro
        names = {d.metadata.name for d in env.apps.list_namespaced_deployment(env.ns).items}
        assert names == {"chaos", "chaos-canary"}
    finally:
        prometheus.restart()
        if operator.process.poll() is not None:
            operator.start_again()
    wait_phase(env, "chaos", "Succeeded", 180)
    env.md.wait_serving("chaos", v2)
    eventually(lambda: canary_deployment(env, "chaos") is None, 120, 0.5, "canary removed")
    t.finish()
    assert t.failed == [], t.failed[:5]
    reasons = [r for _, r, _ in env.md.event_list("chaos")]
    assert reasons.count("RolloutStarted") == 1, reasons  # resumed, never restarted


def test_a_shadow_whose_agreement_is_below_the_gate_stops_before_user_traffic_moves(
    env: Env, mlflow_uri: str, traffic: Callable[..., Traffic], prometheus: PrometheusServer
) -> None:
    """v2 (another regularisation) predicts other numbers than v1: the stable pods copy half
    the requests to it, compare, and the shadow analysis fails on agreement before a single
    user request reaches v2."""
    model = unique("shadow")
    v1 = register_diabetes(mlflow_uri, model, alpha=0.5)
    v2 = register_diabetes(mlflow_uri, model, alpha=2.0)
    set_alias(mlflow_uri, model, "champion", v1)
    shadow = {"percent": 50, "duration": "60s", "minAgreement": 0.95}
    env.apply_md("shadow", model, slo=SLO, rollout={**canary(), "shadow": shadow})
    env.md.wait_serving("shadow", v1)
    stable_pods = {p.metadata.uid for p in env.pods("shadow")}
    s = env.served("shadow", model)
    t = traffic(f"{s.url}/v2/models/shadow/infer", oip(rows(5)), fresh=True)
    eventually(lambda: t.ok >= 20, 60, 0.2, "traffic before the shadow")

    set_alias(mlflow_uri, model, "champion", v2)
    t.mark("the alias move")

    def shadowing() -> dict[str, Any] | None:
        ro = rollout(env, "shadow")
        return ro if ro.get("shadow") else None

    ro = eventually(shadowing, 60, 0.5, "the shadow phase")
    t.mark("the shadow phase")
    assert ro["weight"] == 0 and ro["version"] == v2, ro
    ro = wait_phase(env, "shadow", "RolledBack", 240)
    t.mark("the rollback")
    last = ro["lastAnalysis"]
    assert last["result"] == "Fail" and last["agreement"] < 0.95, last
    assert last["requests"] >= 3 and last["meanRelativeError"] > 0, last
    assert last["errorRate"] == 0, last  # v2 answered every copy: it only disagreed
    stalled = env.md.cond("shadow", "Stalled")
    assert stalled["reason"] == "RolledBack" and "shadow analysis failed" in stalled["message"]
    assert "agreement" in stalled["message"], stalled
    assert env.md.cond("shadow", "Ready")["status"] == "True"
    # no user traffic moved: no canary ever ran, and the stable pods were never restarted
    assert canary_deployment(env, "shadow") is None
    assert {p.metadata.uid for p in env.pods("shadow")} == stable_pods
    reasons = [r for _, r, _ in env.md.event_list("shadow")]
    assert "RolloutStep" not in reasons, reasons
    for kind in ("deployment", "service", "config_map"):
        read = getattr(env.apps if kind == "deployment" else env.core, f"read_namespaced_{kind}")

        def gone(read: Callable[..., Any] = read) -> bool:
            try:
                read("shadow-shadow", env.ns)
            except ApiException as e:
                return bool(e.status == 404)
            return False

        eventually(gone, 60, 0.5, f"shadow-shadow {kind} removed")
    t.mark("the shadow's children gone")
    # the kubelet empties the optional volume of the deleted ConfigMap: the copies stop
    share = f'mlops_shadow_percent{{namespace="{env.ns}",model_deployment="shadow"}}'

    def copying() -> list[str]:
        return [r["value"][1] for r in prometheus.query(share)]

    eventually(lambda: copying() == ["0"], 90, 1, f"the stable pods stop copying: {copying()}")
    t.finish()
    assert t.failed == [], t.failed[:5]
    assert t.versions == {v1}, t.versions  # every answer a caller got was the stable one's
    print(f"shadow rolled back: {stalled['message']}")
