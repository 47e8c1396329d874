"""Roll-forward without waiting for the resync: the real MLflow server delivers its registry
webhooks (HTTPS, HMAC-signed) to the operator's receiver, and the ModelDeployments that follow
the moved alias reconcile at once.

The operator here resyncs once an hour, so within these tests' waits only a delivery can make
it look at an object again. MLflow runs with the local settings of
tests/support/mlflow_webhooks.py (the receiver is on loopback, its certificate from the local
cluster's CA). Forged, replayed and stale deliveries are sent by the test itself, straight to
the receiver: they must be refused, counted, and wake nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client
from mlflow.tracking import MlflowClient

from mlops_operator.contract import LABEL_MODEL_VERSION, Reason
from mlops_operator.webhooks.verify import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from tests.support import mlflow_webhooks
from tests.support.cluster import eventually
from tests.support.env import Env
from tests.support.kube import fresh_namespace
from tests.support.models import register_iris
from tests.support.objects import make_model_deployment
from tests.support.operator_metrics import free_port, scrape, value
from tests.support.operator_process import OperatorProcess, start_operator

SECRET = "integration-webhook-secret"
DELIVERIES = "mlops_operator_webhook_deliveries_total"
RECONCILES = "mlops_operator_reconcile_total"


def unique(what: str) -> str:
    return f"{what}-{uuid.uuid4().hex[:6]}"


class Hooked:
    """An operator with the receiver on, watching one namespace of its own, and the MLflow
    webhook that delivers to it."""

    def __init__(self, env: Env, op: OperatorProcess, port: int, metrics: int) -> None:
        self.env, self.op, self.port, self.metrics = env, op, port, metrics
        self.url = f"https://127.0.0.1:{port}/webhooks/mlflow"

    def count(self, name: str, **labels: str) -> float:
        return value(scrape(self.metrics), name, **labels)

    def deliveries(self) -> dict[str, float]:
        s = scrape(self.metrics)
        return {
            r: value(s, DELIVERIES, result=r)
            for r in ("accepted", "ignored", "forged", "stale", "replayed", "malformed")
        }

    def reconciles(self) -> float:
        return self.count(RECONCILES, kind="ModelDeployment")

    def quiet(self, seconds: float = 3) -> float:
        """Wait until no reconcile has run for `seconds` (the children's own events settle);
        -> the reconcile count then."""

        def still() -> tuple[float] | None:
            before = self.reconciles()
            time.sleep(seconds)
            after = self.reconciles()
            return (after,) if after == before else None

        return eventually(still, 60, 0, "the operator idle")[0]

    def post(
        self, body: dict[str, Any], delivery: str, secret: str = SECRET, age: float = 0
    ) -> int:
        raw = json.dumps(body).encode()
        ts = str(int(time.time() - age))
        h = {
            "Content-Type": "application/json",
            DELIVERY_ID_HEADER: delivery,
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(secret, delivery, ts, raw),
        }
        r = requests.post(self.url, data=raw, headers=h, timeout=10, verify=str(mlflow_webhooks.CA))
        return r.status_code


@pytest.fixture
def hooked(
    kube: client.ApiClient, kubeconfig: tuple[str, str | None], mlflow_uri: str, tmp_path: Path
) -> Iterator[Hooked]:
    port, metrics = free_port(), free_port()
    with fresh_namespace(kube, "t-hook-") as ns:  # not the session operator's prefix
        op = start_operator(
            kubeconfig[0],
            mlflow_uri,
            tmp_path / "operator.log",
            MLOPS_NAMESPACES=ns,
            MLOPS_RESYNC_SECONDS="3600",
            MLOPS_METRICS_PORT=str(metrics),
            **mlflow_webhooks.receiver_settings(port, SECRET),
        )
        hook = ""
        try:
            h = Hooked(Env(kube, ns, mlflow_uri), op, port, metrics)
            hook = mlflow_webhooks.register(mlflow_uri, unique("operator"), h.url, SECRET)
            yield h
        finally:
            if hook:
                mlflow_webhooks.delete(mlflow_uri, hook)
            op.stop()
            print(f"operator log: {op.log}")


def version_of(env: Env, name: str) -> str | None:
    st = env.md.get(name).get("status") or {}
    return (st.get("model") or {}).get("version")


def test_mlflows_test_delivery_passes_tls_and_the_signature(
    hooked: Hooked, mlflow_uri: str
) -> None:
    """MLflow's own "test webhook" call: an example alias event, signed with the secret it
    stored, over HTTPS to a certificate of the local CA. Accepted; it names a model nobody
    follows, so it wakes nothing."""
    hooks = requests.get(f"{mlflow_uri}/api/2.0/mlflow/webhooks", timeout=10).json()["webhooks"]
    mine = [w for w in hooks if w["url"] == hooked.url]
    assert len(mine) == 1, hooks
    before = hooked.deliveries()
    result = mlflow_webhooks.send_test_delivery(mlflow_uri, mine[0]["webhook_id"])
    assert result.get("success") is True, result
    assert result.get("response_status") == 200, result
    assert json.loads(str(result["response_body"]))["woken"] == 0, result
    after = hooked.deliveries()
    assert after["accepted"] - before["accepted"] == 1, (before, after)


def test_an_alias_move_rolls_forward_at_once_and_a_removed_alias_is_reported(
    hooked: Hooked, mlflow_uri: str
) -> None:
    env = hooked.env
    model = unique("hooked")
    v1 = register_iris(mlflow_uri, model, alias="champion")
    names = ["a", "b"]
    for n in names:
        env.apply(make_model_deployment(n, model={"name": model, "alias": "champion"}))
    # a ModelDeployment pinned to a version, and one following another alias: not woken
    env.apply(make_model_deployment("pinned", model={"name": model, "version": v1, "alias": None}))
    for n in [*names, "pinned"]:
        env.md.wait_ready(n)
        assert version_of(env, n) == v1
    idle = hooked.quiet()
    before = hooked.deliveries()

    v2 = register_iris(mlflow_uri, model, alias="champion", max_iter=150)
    t0 = time.monotonic()
    # with a resync of an hour, only the delivery can do this within the wait
    eventually(lambda: all(version_of(env, n) == v2 for n in names), 60, 0.2, f"a and b at {v2}")
    moved = time.monotonic() - t0
    for n in names:
        assert env.deployment(n).spec.template.metadata.labels[LABEL_MODEL_VERSION] == v2
    assert version_of(env, "pinned") == v1
    after = hooked.deliveries()
    assert after["accepted"] - before["accepted"] >= 1, (before, after)
    assert hooked.reconciles() > idle
    print(f"\nalias move -> both at version {v2}: {moved:.2f}s")

    MlflowClient(mlflow_uri, registry_uri=mlflow_uri).delete_registered_model_alias(
        model, "champion"
    )
    for n in names:
        env.md.wait_cond(n, "Ready", status="False", reason=Reason.ALIAS_NOT_SET, timeout=60)
        # what serves stays as it was
        assert env.deployment(n).spec.template.metadata.labels[LABEL_MODEL_VERSION] == v2
    assert hooked.deliveries()["accepted"] - after["accepted"] >= 1


def test_forged_replayed_and_stale_deliveries_change_nothing_and_are_counted(
    hooked: Hooked, mlflow_uri: str
) -> None:
    env = hooked.env
    model = unique("forged")
    v1 = register_iris(mlflow_uri, model, alias="champion")
    env.apply(make_model_deployment("target", model={"name": model, "alias": "champion"}))
    env.md.wait_ready("target")
    claim = {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2026-12-04T05:00:00+00:00",
        "data": {"name": model, "alias": "champion", "version": "99"},
    }
    idle = hooked.quiet()
    rv = env.md.get("target")["metadata"]["resourceVersion"]
    before = hooked.deliveries()

    assert hooked.post(claim, "forged-1", secret="a-guess") == 401
    assert hooked.post(claim, "stale-1", age=3600) == 400
    time.sleep(2)
    assert hooked.reconciles() == idle, "a refused delivery woke a ModelDeployment"
    assert env.md.get("target")["metadata"]["resourceVersion"] == rv

    assert hooked.post(claim, "genuine-1") == 200  # signed with the secret: it wakes "target"
    eventually(lambda: hooked.reconciles() > idle, 30, 0.2, "the genuine delivery's reconcile")
    woken = hooked.quiet()
    assert hooked.post(claim, "genuine-1") == 409  # the same delivery again
    time.sleep(2)
    assert hooked.reconciles() == woken, "a replayed delivery woke a ModelDeployment"
    # the genuine claim named a version that does not exist: the pass asked MLflow, which
    # still says v1; a delivery's body is a wake-up call, never the truth about the alias
    assert version_of(env, "target") == v1
    after = hooked.deliveries()
    delta = {r: after[r] - before[r] for r in after}
    assert delta == {
        "accepted": 1,
        "ignored": 0,
        "forged": 1,
        "stale": 1,
        "replayed": 1,
        "malformed": 0,
    }, delta
    assert "Traceback" not in hooked.op.logs()
