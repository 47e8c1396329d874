"""The Helm chart without a cluster: CRDs in step, values documented, what it renders.

Rendering needs the helm binary the set-up step builds; without it those tests skip (the
integration suite requires it).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator import contract
from mlops_operator.metrics import OperatorMetrics
from mlops_operator.settings import Settings, documented_variables
from tests.support.helm import CHART, by_kind, find_binary, helm
from tests.support.helm import template as _template

ROOT = Path(__file__).resolve().parents[2]

needs_helm = pytest.mark.skipif(find_binary("helm") is None, reason="helm not built yet")

# Exactly what the operator does (see charts/mlops-operator/templates/rbac.yaml for why).
CRUD = ["get", "list", "watch", "create", "patch", "delete"]
EXPECTED_CLUSTER_RULES = [
    (["mlops.dev"], ["modeldeployments"], ["get", "list", "watch"]),
    (["mlops.dev"], ["modeldeployments/status"], ["patch"]),
    (["mlops.dev"], ["retrainjobs"], CRUD),
    (["mlops.dev"], ["retrainjobs/status"], ["patch"]),
    (["mlops.dev"], ["modeldeployments/finalizers", "retrainjobs/finalizers"], ["update"]),
    (["apps"], ["deployments"], CRUD),
    ([""], ["services"], CRUD),
    ([""], ["configmaps"], ["get", "create", "patch", "delete"]),  # a shadow's target
    (["autoscaling"], ["horizontalpodautoscalers"], CRUD),
    (["policy"], ["poddisruptionbudgets"], CRUD),
    (["networking.k8s.io"], ["networkpolicies"], CRUD),
    (["monitoring.coreos.com"], ["prometheusrules"], CRUD),  # spec.slo's alerts
    (["gateway.networking.k8s.io"], ["httproutes"], ["get", "patch"]),  # a canary's weights
    ([""], ["pods"], ["get", "list", "watch"]),
    ([""], ["events"], ["create", "patch"]),
    (["events.k8s.io"], ["events"], ["create", "patch"]),
    (["apiextensions.k8s.io"], ["customresourcedefinitions"], ["list", "watch"]),
]


@functools.cache
def _rendered(*set_args: str) -> str:
    return json.dumps(_template(*set_args))


def template(*set_args: str) -> list[Any]:
    """Rendered once per set of values (helm takes ~0.4 s a run); a fresh copy each time."""
    return list(json.loads(_rendered(*set_args)))


def rules(role: dict[str, Any]) -> list[tuple[list[str], list[str], list[str]]]:
    return [(r["apiGroups"], r["resources"], r["verbs"]) for r in role["rules"]]


def operator_role(docs: list[Any]) -> dict[str, Any]:
    (role,) = [
        d
        for d in by_kind(docs, "ClusterRole")
        if not d["metadata"]["name"].endswith(("-edit", "-view"))
    ]
    return role


def container(docs: list[Any]) -> dict[str, Any]:
    (dep,) = by_kind(docs, "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return dict(c)


def env_of(docs: list[Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(docs)["env"]}


# ------------------------------------------------------------------ no helm needed


def test_chart_crds_are_the_repos_crds() -> None:
    repo = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert repo, "no CRDs in crds/"
    assert chart == repo, "copy crds/*.yaml into charts/mlops-operator/crds/ (`make crds` output)"


def test_every_value_is_documented() -> None:
    """Every leaf of values.yaml has a comment right above it, or belongs to a value whose
    comment (helm-docs style `# --`) describes it whole (resources, securityContext...)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    stack: list[tuple[int, bool]] = []  # (indent, documented as a whole)
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z_][\w.-]*):(.*)$", line)
        if not m:
            continue
        indent, key, rest = len(m.group(1)), m.group(2), m.group(3).strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        prev = lines[i - 1].strip() if i else ""
        commented = prev.startswith("#")
        whole = commented and _comment_block(lines, i).startswith("# --")
        covered = commented or any(w for _, w in stack)
        is_leaf = rest != "" and not rest.startswith("#")
        if is_leaf and not covered:
            undocumented.append(key)
        stack.append((indent, whole or any(w for _, w in stack)))
    assert undocumented == []


def _comment_block(lines: list[str], i: int) -> str:
    j = i - 1
    while j > 0 and lines[j - 1].strip().startswith("#"):
        j -= 1
    return lines[j].strip()


def test_dashboard_queries_only_metrics_that_exist() -> None:
    dash = json.loads((CHART / "files" / "grafana" / "mlops-operator.json").read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    known = {f.name for f in OperatorMetrics().registry.collect()}
    runtime_src = (ROOT / "operator" / "mlops_operator" / "runtime" / "metrics.py").read_text()
    known |= set(re.findall(r'"(mlops_[a-z_]+)"', runtime_src))
    # the drift gauges are named in the contract (the trigger queries them too)
    known |= {getattr(contract, n) for n in re.findall(r"\b(METRIC_[A-Z_]+)\b", runtime_src)}
    used = {n for e in exprs for n in re.findall(r"\b(mlops_[a-z_]+)", e)}
    suffix = re.compile(r"_(total|bucket|sum|count|info)$")
    unknown = sorted(n for n in used if n not in known and suffix.sub("", n) not in known)
    assert unknown == []
    # what the drift trigger and the runtime contract name must be on the dashboard
    for name in ("mlops_drift_psi", "mlops_feature_drift_psi", "mlops_prediction_drift_psi"):
        assert name in used
    assert {f"mlops_operator_{n}" for n in ("leader", "objects")} <= used


# ------------------------------------------------------------------ rendered by helm


@needs_helm
def test_lint() -> None:
    out = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out.stdout


@needs_helm
def test_rbac_is_exactly_what_the_operator_uses() -> None:
    docs = template()
    assert rules(operator_role(docs)) == EXPECTED_CLUSTER_RULES
    (lease_role,) = by_kind(docs, "Role")
    assert lease_role["metadata"]["namespace"] == "mlops-system"
    lease_name = env_of(docs)["MLOPS_LEADER_ELECTION_NAME"]
    assert rules(lease_role) == [
        (["coordination.k8s.io"], ["leases"], ["create"]),
        (["coordination.k8s.io"], ["leases"], ["get", "update"]),
    ]
    assert lease_role["rules"][1]["resourceNames"] == [lease_name]
    for role in by_kind(docs, "ClusterRole") + by_kind(docs, "Role"):
        for group, resources, verbs in rules(role):
            assert "*" not in group + resources + verbs, role["metadata"]["name"]
            assert "secrets" not in resources, role["metadata"]["name"]
    (binding,) = by_kind(docs, "ClusterRoleBinding")
    (sa,) = by_kind(docs, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "mlops-system"}
    ]


@needs_helm
def test_namespaced_watching_adds_read_access_to_namespaces() -> None:
    docs = template("operator.watchNamespaces={ml,team-b}")
    assert env_of(docs)["MLOPS_NAMESPACES"] == "ml,team-b"
    assert rules(operator_role(docs))[-1] == ([""], ["namespaces"], ["list", "watch"])


@needs_helm
def test_every_setting_comes_from_values_and_parses() -> None:
    docs = template()
    env = env_of(docs)
    assert set(documented_variables()) <= set(env), "wire new settings into deployment.yaml"
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    plain["MLOPS_LEADER_ELECTION_NAMESPACE"] = "mlops-system"  # from the downward API
    s = Settings.from_env(plain)
    assert s.leader_election and s.metrics_port == 8080
    assert env["MLOPS_LEADER_ELECTION_NAMESPACE"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }


def _check_pss_restricted(pod: dict[str, Any]) -> list[str]:
    """The Pod Security Standard `restricted` (v1.34), checked field by field."""
    bad = []
    psc = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            bad.append(flag)
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral"}
    allowed_volumes |= {"persistentVolumeClaim", "projected", "secret"}
    for v in pod.get("volumes", []):
        if not set(v) - {"name"} <= allowed_volumes:
            bad.append(f"volume {v['name']}")
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            bad.append("privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append("allowPrivilegeEscalation")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            bad.append("runAsNonRoot")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            bad.append("runAsUser 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append("seccompProfile")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            bad.append("capabilities.drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            bad.append("capabilities.add")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            bad.append("hostPort")
    return bad


@needs_helm
def test_operator_pod_is_restricted_probed_and_resourced() -> None:
    docs = template()
    (dep,) = by_kind(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    assert _check_pss_restricted(pod) == []
    c = container(docs)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    assert c["command"] == ["mlops-operator"] and c["args"] == ["run"]
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"  # safe: standbys wait


@needs_helm
def test_metrics_service_selects_the_operator_pods() -> None:
    docs = template()
    (svc,) = by_kind(docs, "Service")
    (dep,) = by_kind(docs, "Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    assert not by_kind(docs, "ServiceMonitor") and not by_kind(docs, "ConfigMap")


@needs_helm
def test_optional_service_monitor_and_dashboard() -> None:
    docs = template(
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
        "grafanaDashboard.enabled=true",
    )
    (sm,) = by_kind(docs, "ServiceMonitor")
    (svc,) = by_kind(docs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (cm,) = by_kind(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "files" / "grafana" / "mlops-operator.json").read_text())
    assert json.loads(cm["data"]["mlops-operator.json"]) == shipped


@needs_helm
def test_without_leader_election_one_replica_and_recreate() -> None:
    docs = template("leaderElection.enabled=false")
    (dep,) = by_kind(docs, "Deployment")
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert not by_kind(docs, "Role")
    assert env_of(docs)["MLOPS_LEADER_ELECTION"] == "false"
    out = helm(
        "template",
        "x",
        str(CHART),
        "--set",
        "leaderElection.enabled=false",
        "--set",
        "replicaCount=2",
        check=False,
    )
    assert out.returncode != 0 and "needs leaderElection.enabled" in out.stderr


@needs_helm
def test_values_reach_the_environment() -> None:
    docs = template(
        "mlflow.trackingUri=http://mlflow.ml:5000",
        "runtime.image=example.com/runtime:2",
        "pipelines.backend=kfp",
        "pipelines.kfpHost=http://ml-pipeline.kubeflow:8888",
        "mlflow.credentialsSecret=mlflow-creds",
        "leaderElection.leaseName=my-lease",
    )
    env = env_of(docs)
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.ml:5000"
    assert env["MLOPS_RUNTIME_IMAGE"] == "example.com/runtime:2"
    assert (env["MLOPS_PIPELINE_BACKEND"], env["MLOPS_KFP_HOST"]) == (
        "kfp",
        "http://ml-pipeline.kubeflow:8888",
    )
    assert env["MLOPS_LEADER_ELECTION_NAME"] == "my-lease"
    assert container(docs)["envFrom"] == [{"secretRef": {"name": "mlflow-creds"}}]
    (lease_role,) = by_kind(docs, "Role")
    assert lease_role["rules"][1]["resourceNames"] == ["my-lease"]


def test_a_packages_config_map_is_mounted_where_the_setting_points() -> None:
    docs = template("pipelines.packagesConfigMap=team-pipelines")
    path = env_of(docs)["MLOPS_PIPELINE_PACKAGES_DIR"]
    (mount,) = [m for m in container(docs)["volumeMounts"] if m["name"] == "pipeline-packages"]
    assert (mount["mountPath"], mount["readOnly"]) == (path, True)
    (dep,) = by_kind(docs, "Deployment")
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["pipeline-packages"]["configMap"] == {"name": "team-pipelines"}
    # unset: the shipped pipelines only, nothing mounted
    plain = template()
    assert env_of(plain)["MLOPS_PIPELINE_PACKAGES_DIR"] == ""
    assert "pipeline-packages" not in {m["name"] for m in container(plain)["volumeMounts"]}


def test_chart_yaml() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "mlops-operator"
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M)
    assert version and chart["appVersion"] == version.group(1)


@needs_helm
def test_the_webhook_receiver_gets_its_certificate_secret_port_and_service() -> None:
    off = template()
    assert env_of(off)["MLOPS_WEBHOOK_PORT"] == "0"
    assert not [s for s in by_kind(off, "Service") if s["metadata"]["name"].endswith("-webhook")]

    docs = template(
        "webhook.enabled=true",
        "webhook.tlsSecretName=operator-webhook-tls",
        "webhook.secretRef.name=mlflow-webhook",
    )
    env = env_of(docs)
    assert env["MLOPS_WEBHOOK_PORT"] == "8443"
    assert env["MLOPS_WEBHOOK_SECRET"] == {
        "secretKeyRef": {"name": "mlflow-webhook", "key": "secret"}
    }
    c = container(docs)
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert env["MLOPS_WEBHOOK_CERT_FILE"] == mounts["webhook-tls"] + "/tls.crt"
    assert env["MLOPS_WEBHOOK_KEY_FILE"] == mounts["webhook-tls"] + "/tls.key"
    (dep,) = by_kind(docs, "Deployment")
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-tls"]["secret"] == {"secretName": "operator-webhook-tls"}
    assert {"name": "webhook", "containerPort": 8443, "protocol": "TCP"} in c["ports"]
    (svc,) = [s for s in by_kind(docs, "Service") if s["metadata"]["name"].endswith("-webhook")]
    assert svc["spec"]["ports"] == [
        {"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    # what the pod runs with parses (the files are mounted in the pod, not here)
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    plain.update(MLOPS_LEADER_ELECTION_NAMESPACE="mlops-system", MLOPS_WEBHOOK_SECRET="s")
    plain.update(MLOPS_WEBHOOK_CERT_FILE=__file__, MLOPS_WEBHOOK_KEY_FILE=__file__)
    assert Settings.from_env(plain).webhook_port == 8443

    out = helm("template", "x", str(CHART), "--set", "webhook.enabled=true", check=False)
    assert out.returncode != 0 and "needs webhook.tlsSecretName" in out.stderr
