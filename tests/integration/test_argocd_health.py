"""The Argo CD health checks (Lua, run with lupa) on ModelDeployments the operator reconciled
on the live cluster, one per phase: Healthy, Progressing (waiting for GPUs no node has),
Degraded (the registered model does not exist: Stalled).

RetrainJob phases are checked on hand-written objects in tests/unit/test_argocd_health_lua.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from mlops_operator.contract import GROUP, MODEL_DEPLOYMENT_PLURAL, RETRAIN_JOB_PLURAL, VERSION
from tests.support import kstatus
from tests.support.argocd_lua import health
from tests.support.cluster import eventually
from tests.support.kube import server_side_apply
from tests.support.models import register_iris
from tests.support.objects import make_model_deployment
from tests.support.operator_launch import launch
from tests.support.operator_process import OperatorProcess
from tests.support.retrain_jobs import make_retrain_job

PLURAL = MODEL_DEPLOYMENT_PLURAL


@pytest.fixture(scope="module")
def watched(kube: client.ApiClient) -> Iterator[str]:
    name = f"t-argo-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"mlops.dev/test": "1"}))
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="module")
def own_operator(
    kubeconfig: tuple[str, str | None],
    mlflow_uri: str,
    watched: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    # an operator for this module's namespace alone, so the phases are this code's doing
    log = tmp_path_factory.mktemp("argocd") / "operator.log"
    op = launch(kubeconfig[0], mlflow_uri, log, MLOPS_NAMESPACES=watched)
    yield op
    op.stop()
    print(f"operator log: {log}")


def _get(kube: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(kube).get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    )


def _settled(o: dict[str, Any], type_: str, status: str) -> bool:
    st = o.get("status", {})
    return st.get("observedGeneration") == o["metadata"]["generation"] and any(
        c["type"] == type_ and c["status"] == status for c in st.get("conditions", [])
    )


@pytest.mark.parametrize(
    ("case", "expected", "words"),
    [
        ("healthy", "Healthy", "serving"),
        ("unschedulable", "Progressing", "Unschedulable"),
        ("missing-model", "Degraded", "ModelNotFound"),
    ],
)
def test_health_of_live_objects(
    kube: client.ApiClient,
    mlflow_uri: str,
    watched: str,
    own_operator: OperatorProcess,
    case: str,
    expected: str,
    words: str,
) -> None:
    model = f"argo-{uuid.uuid4().hex[:6]}"
    if case != "missing-model":
        register_iris(mlflow_uri, model, alias="champion")
    spec: dict[str, Any] = {"model": {"name": model, "alias": "champion"}}
    if case == "unschedulable":
        spec["gpu"] = {"count": 16}  # no node has 16 GPUs
    server_side_apply(kube, make_model_deployment(case, watched, **spec))
    settled_on = {
        "healthy": ("Ready", "True"),
        "unschedulable": ("Reconciling", "True"),
        "missing-model": ("Stalled", "True"),
    }[case]

    def observed() -> dict[str, Any] | None:
        o = _get(kube, watched, case)
        if case == "unschedulable":
            available = [
                c for c in o.get("status", {}).get("conditions", []) if c["type"] == "Available"
            ]
            if not (available and available[0].get("reason") == "Unschedulable"):
                return None
        return o if _settled(o, *settled_on) else None

    o = eventually(observed, 120, what=f"{case}: {settled_on}")
    status, message = health(o)
    assert (status, words in message) == (expected, True), message
    # and Flux's reader, kstatus itself, agrees
    ((verdict, why),) = kstatus.judge(o)
    assert verdict == KSTATUS[expected], (verdict, why)


KSTATUS = {"Healthy": "Current", "Progressing": "InProgress", "Degraded": "Failed"}


def test_an_object_no_operator_has_reconciled_yet_is_in_progress(kube: client.ApiClient) -> None:
    # kstatus calls an object without status Current (healthy): the CRD's status default makes
    # it InProgress from the first second, until the operator's first write
    name = f"t-unwatched-{uuid.uuid4().hex[:6]}"  # no operator watches this namespace
    core = client.CoreV1Api(kube)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"mlops.dev/test": "1"}))
    )
    try:
        server_side_apply(kube, make_model_deployment("new", name, model={"name": "m"}))
        o = _get(kube, name, "new")
        assert o["status"] == {"observedGeneration": -1}
        assert health(o)[0] == "Progressing"
        ((verdict, why),) = kstatus.judge(o)
        assert verdict == "InProgress", why
        # the same object without the default, as before: what kstatus got wrong
        bare = {k: v for k, v in o.items() if k != "status"}
        assert kstatus.judge(bare)[0][0] == "Current"
        # a RetrainJob too
        server_side_apply(kube, make_retrain_job("job", name, "m"))
        job = client.CustomObjectsApi(kube).get_namespaced_custom_object(
            GROUP, VERSION, name, RETRAIN_JOB_PLURAL, "job"
        )
        assert job["status"] == {"observedGeneration": -1}
        assert kstatus.judge(job)[0][0] == "InProgress"
    finally:
        core.delete_namespace(name, propagation_policy="Background")
