"""The Helm chart on the real API server: lint, server-side dry-run, install and uninstall, and
the RBAC proven both ways with a token of the chart's ServiceAccount: the operator runs with
nothing else and reconciles (enough), SelfSubjectAccessReviews show what it cannot do (not
too much).

The operator pod helm installs is simulated by kwok and runs nothing; the token test is what
exercises the RBAC.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from mlops_operator.contract import GROUP, MODEL_DEPLOYMENT_PLURAL, VERSION
from tests.support.cluster import eventually
from tests.support.helm import CHART, find_binary, helm
from tests.support.kube import server_side_apply
from tests.support.models import register_iris
from tests.support.objects import make_model_deployment
from tests.support.operator_launch import launch
from tests.support.operator_metrics import free_port, nonzero, scrape, value
from tests.support.retrain_jobs import (
    conditions,
    make_retrain_job,
    release_all,
    stop_workers,
    wait_finished,
    wait_released,
)

PLURAL = MODEL_DEPLOYMENT_PLURAL
PSS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


@dataclass
class Cluster:
    kubeconfig: str
    context: str | None

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        ctx = ["--kube-context", self.context] if self.context else []
        return helm(*args, *ctx, kubeconfig=self.kubeconfig, check=check)

    def kubectl(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        binary = find_binary("kubectl")
        assert binary, "kubectl is not installed: run `make setup-binaries`"
        ctx = ["--context", self.context] if self.context else []
        return subprocess.run(
            [binary, "--kubeconfig", self.kubeconfig, *ctx, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def cluster(kubeconfig: tuple[str, str | None], kube: client.ApiClient) -> Cluster:
    assert find_binary("helm"), "helm is not installed: run `make setup-binaries`"
    return Cluster(*kubeconfig)


def make_namespace(kube: client.ApiClient, prefix: str, labels: dict[str, str]) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(kube).create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"mlops.dev/test": "true", **labels})
        )
    )
    return name


def delete_namespace(kube: client.ApiClient, name: str) -> None:
    client.CoreV1Api(kube).delete_namespace(name, propagation_policy="Background")


def test_lint(cluster: Cluster) -> None:
    out = cluster.helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out.stdout, out.stdout


@pytest.mark.parametrize(
    "values",
    [[], ["operator.watchNamespaces={ml}", "grafanaDashboard.enabled=true", "replicaCount=2"]],
    ids=["defaults", "options"],
)
def test_template_passes_a_server_side_dry_run(
    cluster: Cluster, kube: client.ApiClient, values: list[str]
) -> None:
    ns = make_namespace(kube, "mlops-dry", PSS)
    try:
        args = ["template", "mlops-operator", str(CHART), "-n", ns, "--include-crds"]
        for v in values:
            args += ["--set", v]
        manifest = cluster.helm(*args).stdout
        out = cluster.kubectl(
            "apply", "--server-side", "--dry-run=server", "--field-manager=helm-dry-run",
            "-f", "-", stdin=manifest,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        kinds = {d["kind"] for d in yaml.safe_load_all(manifest) if d}
        assert len(out.stdout.strip().splitlines()) == len(
            [d for d in yaml.safe_load_all(manifest) if d]
        )
        assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "Role"} <= kinds
        # PodSecurity `restricted` in warn mode checks the Deployment's pod template
        assert "would violate PodSecurity" not in out.stderr, out.stderr
    finally:
        delete_namespace(kube, ns)


def test_install_and_uninstall(cluster: Cluster, kube: client.ApiClient) -> None:
    ns = make_namespace(kube, "mlops-inst", PSS)
    release = f"mlops-operator-{uuid.uuid4().hex[:6]}"
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    rbac = client.RbacAuthorizationV1Api(kube)
    try:
        # --wait: the Deployment becomes available, i.e. kwok ran a pod that the namespace's
        # PodSecurity `restricted` enforcement admitted
        cluster.helm("install", release, str(CHART), "-n", ns, "--wait", "--timeout", "120s")
        dep = apps.read_namespaced_deployment(release, ns)
        assert dep.status.available_replicas == 1
        pods = core.list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/instance={release}")
        assert [p.status.phase for p in pods.items] == ["Running"]
        assert pods.items[0].spec.service_account_name == release
        core.read_namespaced_service(f"{release}-metrics", ns)
        rbac.read_cluster_role(release)
        rbac.read_cluster_role_binding(release)
        rbac.read_namespaced_role(f"{release}-leader-election", ns)
        listed = cluster.helm("list", "-n", ns, "-o", "yaml").stdout
        assert yaml.safe_load(listed)[0]["status"] == "deployed"

        cluster.helm("uninstall", release, "-n", ns, "--wait", "--timeout", "120s")
        readers: list[Callable[[], object]] = [
            lambda: apps.read_namespaced_deployment(release, ns),
            lambda: rbac.read_cluster_role(release),
            lambda: rbac.read_cluster_role_binding(release),
            lambda: core.read_namespaced_service_account(release, ns),
        ]
        for read in readers:
            with pytest.raises(ApiException) as e:
                read()
            assert e.value.status == 404
        # helm never deletes CRDs (nor, with them, every user's ModelDeployments)
        client.ApiextensionsV1Api(kube).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    finally:
        cluster.helm("uninstall", release, "-n", ns, check=False)
        delete_namespace(kube, ns)


# ------------------------------------------------------------------ the ServiceAccount's token


@dataclass
class Release:
    name: str
    namespace: str  # where the operator is installed
    workload: str  # the namespace it watches in this test


@pytest.fixture(scope="module")
def release(cluster: Cluster, kube: client.ApiClient) -> Iterator[Release]:
    ns = make_namespace(kube, "mlops-sys", PSS)
    workload = make_namespace(kube, "t", {})
    name = f"mlops-operator-{uuid.uuid4().hex[:6]}"
    cluster.helm(
        "install", name, str(CHART), "-n", ns, "--set", f"operator.watchNamespaces={{{workload}}}"
    )
    yield Release(name, ns, workload)
    cluster.helm("uninstall", name, "-n", ns, check=False)
    delete_namespace(kube, ns)
    delete_namespace(kube, workload)


@pytest.fixture(scope="module")
def token_kubeconfig(
    release: Release, cluster: Cluster, kube: client.ApiClient, tmp_path_factory: Any
) -> str:
    """A kubeconfig holding only a TokenRequest token of the chart's ServiceAccount."""
    tr = client.CoreV1Api(kube).create_namespaced_service_account_token(
        release.name,
        release.namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    )
    src = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    ctx_name = cluster.context or src["current-context"]
    ctx = next(c["context"] for c in src["contexts"] if c["name"] == ctx_name)
    entry = dict(next(c["cluster"] for c in src["clusters"] if c["name"] == ctx["cluster"]))
    ca = entry.get("certificate-authority")
    if ca and not Path(ca).is_absolute():
        entry["certificate-authority"] = str(Path(cluster.kubeconfig).parent / ca)
    path = tmp_path_factory.mktemp("sa") / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "cluster", "cluster": entry}],
                "users": [{"name": "operator", "user": {"token": tr.status.token}}],
                "contexts": [
                    {"name": "operator", "context": {"cluster": "cluster", "user": "operator"}}
                ],
                "current-context": "operator",
            }
        )
    )
    return str(path)


def test_the_charts_rbac_is_enough_to_reconcile(
    release: Release,
    token_kubeconfig: str,
    kube: client.ApiClient,
    mlflow_uri: str,
    tmp_path: Path,
) -> None:
    ns = release.workload
    custom = client.CustomObjectsApi(kube)
    port = free_port()
    work_dir = tmp_path / "work"
    op = launch(
        token_kubeconfig,
        mlflow_uri,
        tmp_path / "operator.log",
        POD_NAME="sa-operator",
        MLOPS_METRICS_PORT=str(port),
        MLOPS_NAMESPACES=ns,
        MLOPS_WORK_DIR=str(work_dir),
        # as the chart runs it: elected on the Lease its Role allows
        MLOPS_LEADER_ELECTION="true",
        MLOPS_LEADER_ELECTION_NAMESPACE=release.namespace,
        MLOPS_LEADER_ELECTION_NAME=release.name,
    )
    try:
        model = f"rbac-{uuid.uuid4().hex[:6]}"
        register_iris(mlflow_uri, model, alias="champion")
        # a RetrainJob runs (local backend, ~30 s) while the ModelDeployment goes through its
        # changes: the finalizer (metadata patch), status patches and events of RetrainJobs;
        # its own model, so a promotion cannot roll the ModelDeployment under the checks below
        retrained = f"rbac-rtj-{uuid.uuid4().hex[:6]}"
        server_side_apply(kube, make_retrain_job("rbac-retrain", ns, retrained))

        def apply(**spec: Any) -> None:
            # the whole spec each time: a field left out is dropped (server-side apply)
            md = make_model_deployment("rbac", ns, model={"name": model, "alias": "champion"})
            md["spec"].update(spec)
            server_side_apply(kube, md)

        def ready_at(generation: int) -> bool:
            o = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "rbac")
            st = o.get("status", {})
            return st.get("observedGeneration") == generation and any(
                c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", [])
            )

        # every verb on every child kind: create (replicas 2: Deployment, Service,
        # NetworkPolicy, PDB), patch (an HPA appears, replicas handed over), delete (HPA
        # and PDB go when the spec drops to one fixed replica)
        apply(replicas=2)
        eventually(lambda: ready_at(1), 120, what="Ready with 2 replicas")
        apply(autoscaling={"minReplicas": 1, "maxReplicas": 3})
        eventually(lambda: ready_at(2), 120, what="Ready with autoscaling")
        client.AutoscalingV2Api(kube).read_namespaced_horizontal_pod_autoscaler("rbac", ns)
        apply(replicas=1)
        eventually(lambda: ready_at(3), 120, what="Ready with 1 replica")

        def gone(read: Any) -> bool:
            try:
                read("rbac", ns)
            except ApiException as e:
                return bool(e.status == 404)
            return False

        hpa = client.AutoscalingV2Api(kube).read_namespaced_horizontal_pod_autoscaler
        eventually(lambda: gone(hpa), 60, what="HPA deleted")

        # the RetrainJob: run, registered, gated, finalizer gone again
        wait_finished(kube, ns, "rbac-retrain", timeout=240)
        job = wait_released(kube, ns, "rbac-retrain")  # the finalizer patched away again
        conds = conditions(job)
        assert conds["Succeeded"]["status"] == "True", conds
        assert (conds["Promoted"]["status"], conds["Promoted"]["reason"]) == ("True", "NoHolder")
        assert conds["Ready"]["status"] == "True", conds
        assert job["status"]["observedGeneration"] == job["metadata"]["generation"]
        assert job["status"]["run"]["id"] == f"local-{job['metadata']['uid']}"
        assert job["status"]["result"]["version"] and job["status"]["result"]["promoted"]
        events = client.CoreV1Api(kube).list_namespaced_event(
            ns, field_selector="involvedObject.kind=RetrainJob,involvedObject.name=rbac-retrain"
        )
        reasons = {e.reason for e in events.items}
        assert "NoHolder" in reasons, reasons  # the Promoted transition, posted with the token

        samples = scrape(port)
        kind = {"kind": "ModelDeployment"}
        assert value(samples, "mlops_operator_reconcile_total", result="success", **kind) >= 3
        assert value(samples, "mlops_operator_reconcile_total", result="error", **kind) == 0
        rtj = {"kind": "RetrainJob"}
        assert value(samples, "mlops_operator_reconcile_total", result="success", **rtj) >= 1
        assert value(samples, "mlops_operator_reconcile_total", result="error", **rtj) == 0
        # no API call failed, except (at most) compare-and-swap writes: a pass that works on
        # the body of a watch event older than its own last write sends a stale
        # resourceVersion (finalizer, status), gets 409 and re-reads the object
        errors = nonzero(samples, "mlops_operator_api_errors_total")
        for resource in ("retrainjobs", "retrainjobs/status", "modeldeployments/status"):
            errors.pop(f"code=409,resource={resource},verb=PATCH", None)
        assert errors == {}, errors
        # the client's own counters see the writes the benchmarks count: status, Lease, Events
        requests = "mlops_operator_api_requests_total"
        status = {"resource": "modeldeployments/status", "verb": "PATCH", "code": "200"}
        assert value(samples, requests, **status) >= 1
        assert value(samples, requests, resource="leases") >= 1
        assert value(samples, "mlops_operator_events_total") >= 1  # NoHolder among them
        lease = client.CoordinationV1Api(kube).read_namespaced_lease(
            release.name, release.namespace
        )
        assert lease.spec.holder_identity == f"sa-operator_{op.process.pid}"
        logs = op.logs()
        for bad in ("Forbidden", "forbidden", "Not enough permissions", "Failed to post an event"):
            assert bad not in logs, f"{bad!r} in the operator log:\n{logs[-3000:]}"
        assert "reconcile failed" not in logs, logs[-3000:]
    finally:
        op.stop()
        stop_workers(work_dir)
        release_all(kube, ns)
        print(f"operator log: {tmp_path / 'operator.log'}")


def _can(api: client.ApiClient, verb: str, resource: str, **attrs: str) -> bool:
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, resource=resource, **attrs
                )
            )
        )
    )
    return bool(review.status.allowed)


def test_the_token_cannot_do_too_much(release: Release, token_kubeconfig: str) -> None:
    api = config.new_client_from_config(config_file=token_kubeconfig)
    try:
        other = "default"
        denied = [
            # Secrets: neither cluster-wide nor in a namespace, not even its own
            *[("get", "secrets", {}), ("list", "secrets", {}), ("watch", "secrets", {})],
            ("get", "secrets", {"namespace": release.namespace}),
            ("list", "secrets", {"namespace": release.workload}),
            # no pods of its own making (it writes Deployments), no exec
            ("create", "pods", {"namespace": release.workload}),
            ("create", "pods", {"subresource": "exec", "namespace": release.workload}),
            ("delete", "pods", {"namespace": release.workload}),
            # CRDs are read-only
            *[
                (v, "customresourcedefinitions", {"group": "apiextensions.k8s.io"})
                for v in ("create", "update", "patch", "delete")
            ],
            # no RBAC, no escalation, no impersonation, no nodes
            ("create", "clusterroles", {"group": "rbac.authorization.k8s.io"}),
            ("create", "rolebindings", {"group": "rbac.authorization.k8s.io", "namespace": other}),
            ("impersonate", "serviceaccounts", {}),
            ("patch", "nodes", {}),
            # its own input is only read (status aside)
            ("update", "modeldeployments", {"group": GROUP, "namespace": release.workload}),
            ("delete", "modeldeployments", {"group": GROUP, "namespace": release.workload}),
            # leases: only its own, only in the release namespace
            ("create", "leases", {"group": "coordination.k8s.io", "namespace": other}),
            (
                "update",
                "leases",
                {"group": "coordination.k8s.io", "namespace": release.namespace, "name": "x"},
            ),
        ]
        allowed = [
            ("watch", "modeldeployments", {"group": GROUP}),
            ("patch", "modeldeployments", {"group": GROUP, "subresource": "status"}),
            ("delete", "retrainjobs", {"group": GROUP, "namespace": other}),
            ("create", "deployments", {"group": "apps", "namespace": other}),
            ("delete", "horizontalpodautoscalers", {"group": "autoscaling", "namespace": other}),
            ("list", "pods", {}),
            ("create", "events", {"namespace": other}),
            ("list", "customresourcedefinitions", {"group": "apiextensions.k8s.io"}),
            (
                "update",
                "leases",
                {
                    "group": "coordination.k8s.io",
                    "namespace": release.namespace,
                    "name": release.name,
                },
            ),
        ]
        wrong = [(v, r, a) for v, r, a in denied if _can(api, v, r, **a)]
        wrong += [(v, r, a) for v, r, a in allowed if not _can(api, v, r, **a)]
        assert wrong == []
    finally:
        api.close()
