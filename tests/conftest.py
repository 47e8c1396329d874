"""Session fixtures: the real cluster, the real MLflow server, a namespace per test."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# MLflow's client and servers (and DVC) report usage off this machine unless told not to; the
# servers and operators the tests start inherit this (the Makefile exports the same)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

from tests.support.cluster import ensure_cluster  # noqa: E402

# Test namespaces carry a prefix unique to this pytest session, and the session's operator
# watches only those: two sessions on one cluster (a developer's and a helper's, or a
# benchmark beside the tests) never reconcile each other's objects.
NS_PREFIX = f"t{uuid.uuid4().hex[:4]}-"
from tests.support.mlflow_server import MlflowServer, start_mlflow  # noqa: E402

if TYPE_CHECKING:  # imported lazily below: a unit-test run never loads them
    from tests.support.env import Env
    from tests.support.fake_kfp import FakeKfp
    from tests.support.operator_process import OperatorProcess
    from tests.support.prometheus import PrometheusServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tests under tests/unit are unit tests, the rest integration, unless marked otherwise
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("chaos"):
            # make test leaves slow tests out; only make test-chaos (-m chaos) would run it
            raise pytest.UsageError(f"{item.nodeid} is marked slow but not chaos: nothing runs it")
        if item.get_closest_marker("unit") or item.get_closest_marker("integration"):
            continue
        kind = "unit" if "/tests/unit/" in str(item.path) else "integration"
        item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[tuple[str, str | None]]:
    from tests.support.realnode import node_state, stop_node

    had_node = node_state().real
    yield ensure_cluster()
    if not had_node and node_state().real:
        stop_node()  # a real node this session started, it stops (and restores the host)


@pytest.fixture(scope="session")
def kube(kubeconfig: tuple[str, str | None]):  # type: ignore[no-untyped-def]
    """A kubernetes ApiClient for the test cluster, with the project's CRDs applied."""
    from kubernetes import client, config

    path, context = kubeconfig
    api = config.new_client_from_config(config_file=path, context=context)
    crd_dir = ROOT / "crds"
    if any(crd_dir.glob("*.yaml")):
        from tests.support.kube import apply_crds

        apply_crds(api, sorted(crd_dir.glob("*.yaml")))
    yield api
    api.close()
    del client


@pytest.fixture
def namespace(kube) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh namespace per test, deleted afterwards (without waiting for it to go)."""
    from tests.support.kube import fresh_namespace

    with fresh_namespace(kube, NS_PREFIX) as name:
        yield name


@pytest.fixture(scope="session")
def real_node(kubeconfig: tuple[str, str | None]) -> None:
    """The real kubelet node, with the project's images loaded (skip or, with CI=true, fail
    when there is none; see tests/support/realnode.py)."""
    from tests.support.realnode import ensure_images, require_real_node

    require_real_node()
    ensure_images()


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, kubeconfig: tuple[str, str | None]
) -> Iterator[MlflowServer]:
    from tests.support.mlflow_webhooks import local_mlflow_env
    from tests.support.realnode import node_state

    # reachable from the real node's pods too (on the bridge address) when there is one
    host = "0.0.0.0" if node_state().real else "127.0.0.1"
    # it delivers registry webhooks to receivers on this machine (tests register them while
    # other tests move aliases: a webhook list cached for 1 s, not MLflow's 60)
    env = local_mlflow_env(cache_ttl=1)
    server = start_mlflow(tmp_path_factory.mktemp("mlflow"), host=host, env=env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_uri(mlflow_server: MlflowServer) -> str:
    return mlflow_server.url


@pytest.fixture(scope="session")
def pod_mlflow_uri(mlflow_server: MlflowServer) -> str:
    """Where model pods on the real node reach MLflow (MLOPS_RUNTIME_MLFLOW_URI)."""
    from tests.support.realnode import BRIDGE_IP

    if mlflow_server.host == "0.0.0.0":
        return f"http://{BRIDGE_IP}:{mlflow_server.port}"
    return mlflow_server.url


@pytest.fixture(scope="session")
def fake_kfp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeKfp]:
    """A FAKE KFP v2beta1 API (see tests/support/fake_kfp.py for what is real around it)."""
    from tests.support.fake_kfp import FakeKfp

    fake = FakeKfp(tmp_path_factory.mktemp("kfp")).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, kubeconfig: tuple[str, str | None]
) -> Iterator[PrometheusServer]:
    from tests.support.prometheus import start_prometheus
    from tests.support.realnode import node_state, pod_discovery

    # with a real node it also discovers the model pods there, as Prometheus in a cluster would
    pods = pod_discovery(f"{NS_PREFIX}.*") if node_state().real else None
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), pods)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def now_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write an ISO time here and the operator takes it as now; remove it for real time."""
    return tmp_path_factory.mktemp("clock") / "now"


@pytest.fixture(scope="session")
def operator(
    kubeconfig: tuple[str, str | None],
    mlflow_uri: str,
    pod_mlflow_uri: str,
    kube: object,
    fake_kfp: FakeKfp,
    prometheus: PrometheusServer,
    now_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """`mlops-operator run` as a real process against the test cluster and MLflow."""
    from tests.support.dvc_repo import dvc_env
    from tests.support.operator_process import start_operator
    from tests.support.retrain_jobs import extra_pipeline_packages

    root = tmp_path_factory.mktemp("operator")
    env = {
        # the test-only pipelines (tests/support/pipelines/) beside the shipped ones
        "MLOPS_PIPELINE_PACKAGES_DIR": str(extra_pipeline_packages(root / "pipelines")),
        # the pipelines' tasks read dvc:// data with DVC: its site cache stays in the run's tmp
        **dvc_env(root / "dvc-site-cache"),
        "MLOPS_KFP_HOST": fake_kfp.url,
        "MLOPS_PROMETHEUS_URL": prometheus.url,
        "MLOPS_TEST_NOW_FILE": str(now_file),
        "MLOPS_WORK_DIR": str(root / "work"),
        # only the tests' namespaces (see `namespace`), not what a benchmark runs beside
        "MLOPS_NAMESPACES": f"{NS_PREFIX}*",
        "MLOPS_LOG_LEVEL": "DEBUG",
        "MLOPS_RUNTIME_MLFLOW_URI": pod_mlflow_uri,
    }
    op = start_operator(kubeconfig[0], mlflow_uri, root / "operator.log", **env)
    yield op
    op.stop()
    print(f"operator log: {root / 'operator.log'}")


@pytest.fixture
def env(kube: Any, namespace: str, mlflow_uri: str) -> Env:
    """The test's namespace, what is in it, and the session's MLflow (tests/support/env.py)."""
    from tests.support.env import Env

    return Env(kube, namespace, mlflow_uri)


@pytest.fixture
def traffic() -> Iterator[Any]:
    """traffic(url, *bodies) starts requests to url from a thread; they stop after the test."""
    from tests.support.traffic import traffic_fixture

    yield from traffic_fixture()
