"""The operator as users install it: the Helm chart, the operator image built here, a real pod
on the real node under the chart's ServiceAccount, RBAC and Pod Security `restricted`, talking
to the API server through the `kubernetes` Service and to MLflow on the bridge.

The namespace does not match the session operator's (tests/conftest.py NS_PREFIX), so whatever
reconciles the ModelDeployment here is the pod.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import requests
from kubernetes import client

from tests.support.env import Env
from tests.support.helm import CHART, helm
from tests.support.models import local_predict, oip, register_diabetes, register_iris, rows
from tests.support.realnode import (
    NODE_NAME,
    OPERATOR_IMAGE,
    RUNTIME_IMAGE,
    SCHEDULING,
    node_usage,
)
from tests.support.retrain_jobs import rtj

WORK_DIR = "/var/lib/mlops-operator"  # the chart's pipelines.workDir

pytestmark = [pytest.mark.realnode, pytest.mark.usefixtures("real_node")]


@pytest.fixture
def installed(
    kube: client.ApiClient, kubeconfig: tuple[str, str | None], pod_mlflow_uri: str
) -> Iterator[tuple[str, str]]:
    core = client.CoreV1Api(kube)
    ns = f"mlops-incl-{uuid.uuid4().hex[:6]}"
    core.create_namespace(
        {
            "metadata": {
                "name": ns,
                "labels": {
                    "mlops.dev/test": "true",
                    "pod-security.kubernetes.io/enforce": "restricted",
                },
            }
        }
    )
    release = f"mlops-operator-{uuid.uuid4().hex[:6]}"  # the chart names its objects so
    repo, tag = OPERATOR_IMAGE.split(":")
    try:
        helm(
            "install", release, str(CHART), "-n", ns, "--wait", "--timeout", "180s",
            "--set", f"image.repository={repo}",
            "--set", f"image.tag={tag}",
            "--set", f"mlflow.trackingUri={pod_mlflow_uri}",
            "--set", f"runtime.image={RUNTIME_IMAGE}",
            "--set", f"operator.watchNamespaces={{{ns}}}",
            "--set", "operator.resyncSeconds=5",
            "--set-json", f"nodeSelector={json.dumps(SCHEDULING['nodeSelector'])}",
            "--set-json", f"tolerations={json.dumps(SCHEDULING['tolerations'])}",
            kubeconfig=kubeconfig[0],
        )  # fmt: skip
        yield ns, release
    finally:
        helm("uninstall", release, "-n", ns, "--wait", kubeconfig=kubeconfig[0], check=False)
        core.delete_namespace(ns, propagation_policy="Background")


def test_the_helm_installed_operator_pod_serves_a_model_end_to_end(
    installed: tuple[str, str], kube: client.ApiClient, mlflow_uri: str
) -> None:
    from mlflow.tracking import MlflowClient

    ns, release = installed
    core = client.CoreV1Api(kube)
    selector = f"app.kubernetes.io/instance={release}"
    (op,) = core.list_namespaced_pod(ns, label_selector=selector).items
    assert op.spec.node_name == NODE_NAME and op.status.phase == "Running"
    assert op.spec.service_account_name == release
    assert op.spec.containers[0].image == OPERATOR_IMAGE

    model = f"incl-{uuid.uuid4().hex[:6]}"
    version = register_diabetes(mlflow_uri, model, alpha=0.3)
    MlflowClient(mlflow_uri).set_registered_model_alias(model, "champion", version)
    env = Env(kube, ns, mlflow_uri)  # the release's namespace: the pod there reconciles
    env.apply_md("served", model)
    try:
        env.md.wait_serving("served", version)
    except AssertionError as e:
        log = core.read_namespaced_pod_log(op.metadata.name, ns, tail_lines=40)
        raise AssertionError(f"{e}\noperator pod log:\n{log}") from None
    s = env.served("served", model)
    df = rows(5)
    r = requests.post(f"{s.url}/v2/models/served/infer", json=oip(df), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == local_predict(mlflow_uri, model, version, df)
    # it was the pod: it holds the Lease, and it watches only this namespace
    lease = client.CoordinationV1Api(kube).read_namespaced_lease(release, ns)
    assert lease.spec.holder_identity.startswith(f"{op.metadata.name}_")
    log = core.read_namespaced_pod_log(op.metadata.name, ns)
    assert f"namespaces ['{ns}']" in log and "Handler 'modeldeployment' succeeded" in log, log

    # a RetrainJob on the local backend: the pipeline runs inside the pod (its work dir on an
    # emptyDir under a read-only root), trains, registers and promotes in the real registry
    iris = f"incl-iris-{uuid.uuid4().hex[:6]}"
    v1 = register_iris(mlflow_uri, iris, alias="champion", tags={"metric.accuracy": "0.5"})
    env.apply(rtj("retrain", iris))
    try:
        st = env.rtj.finished("retrain", timeout=300)["status"]
    except AssertionError as e:
        log = core.read_namespaced_pod_log(op.metadata.name, ns, tail_lines=60)
        raise AssertionError(f"{e}\noperator pod log:\n{log}") from None
    promoted = env.rtj.cond("retrain", "Promoted")
    assert env.rtj.cond("retrain", "Succeeded")["status"] == "True", st
    assert (promoted["status"], promoted["reason"]) == ("True", "Better"), promoted
    assert st["run"]["logs"].startswith(WORK_DIR + "/"), st["run"]  # the pod's, not the host's
    new = st["result"]["version"]
    assert st["result"]["previousVersion"] == v1 and new != v1
    assert env.mlflow.get_model_version_by_alias(iris, "champion").version == new

    # what the pods cost (hack/node_usage.py; `python hack/realnode.py usage` prints it all)
    print("\nreal node usage (MB):", json.dumps(node_usage.usage()))
    rss = node_usage.containers_rss()
    assert rss.get(f"{ns}/{op.metadata.name}/operator", 0) > 0, rss
    (model_pod,) = env.pods("served")
    assert rss.get(f"{ns}/{model_pod.metadata.name}/model", 0) > 0, rss
