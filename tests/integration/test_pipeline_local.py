"""tabular-train end to end on the local backend: the worker as a real subprocess, kfp's local
runner, a real MLflow server (the session fixture). No cluster."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from mlops_operator.baselines import load_baseline
from mlops_operator.pipelines import catalog

LINEAGE = (
    "mlops.dev/retrainjob",
    "mlops.dev/data-uri",
    "mlops.dev/data-sha256",
    "mlops.dev/pipeline",
    "mlops.dev/code-version",
)


def run_worker(workdir: Path, parameters: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Run the worker the way the operator does; return its exit status and result.json."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_operator.pipelines.local_worker",
            "--package",
            str(catalog.package_path("tabular-train")),
            "--parameters-json",
            json.dumps(parameters),
            "--workdir",
            str(workdir),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads((workdir / "result.json").read_text())
    return proc.returncode, result


@dataclass
class FirstRun:
    params: dict[str, Any]
    csv: Path
    rc: int
    result: dict[str, Any]
    workdir: Path


@pytest.fixture(scope="module")
def client(mlflow_uri: str) -> MlflowClient:
    import mlflow

    # load_baseline and pyfunc resolve models:/ URIs through the global registry URI
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_registry_uri(mlflow_uri)
    return MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)


@pytest.fixture(scope="module")
def first(mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    from sklearn.datasets import load_breast_cancer

    tmp = tmp_path_factory.mktemp("pipeline-local")
    csv = tmp / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(csv, index=False)
    params = {
        "model_name": f"tabular-{uuid.uuid4().hex[:6]}",
        "retrainjob": f"ml/retrain-1/{uuid.uuid4()}",
        "mlflow_tracking_uri": mlflow_uri,
        "data_uri": csv.as_uri(),
        "ranges": {"mean radius": [0, 100]},
    }
    rc, result = run_worker(tmp / "run-1", params)
    return FirstRun(params, csv, rc, result, tmp / "run-1")


def test_the_run_succeeds_and_reports_version_and_metrics(first: FirstRun) -> None:
    assert first.rc == 0, (first.workdir / "run.log").read_text()[-5000:]
    result = first.result
    assert result["status"] == "Succeeded"
    assert result["version"] == "1"
    assert set(result["metrics"]) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert result["metrics"]["accuracy"] > 0.9
    assert result["completed_at"] >= result["started_at"]
    print(f"tabular-train local run: {result['duration_seconds']:.1f} s")
    log = (first.workdir / "run.log").read_text()
    for task in ("load-data", "validate-data", "train-model", "evaluate-model", "register-model"):
        assert f"Task '{task}' finished with status SUCCESS" in log


def test_the_version_carries_lineage_and_metrics(first: FirstRun, client: MlflowClient) -> None:
    name, version = first.params["model_name"], first.result["version"]
    mv = client.get_model_version(name, version)
    assert set(LINEAGE) <= set(mv.tags)
    assert mv.tags["mlops.dev/retrainjob"] == first.params["retrainjob"]
    assert mv.tags["mlops.dev/data-uri"] == first.csv.as_uri()
    assert mv.tags["mlops.dev/data-sha256"] == hashlib.sha256(first.csv.read_bytes()).hexdigest()
    assert mv.tags["mlops.dev/pipeline"] == "tabular-train"
    assert mv.tags["mlops.dev/code-version"] == importlib.metadata.version("mlops-operator")
    assert "mlops.dev/data-transform" not in mv.tags
    for metric, value in first.result["metrics"].items():
        assert float(mv.tags[f"metric.{metric}"]) == value
    assert mv.run_id
    run = client.get_run(mv.run_id)
    assert run.data.metrics == first.result["metrics"]
    assert run.data.tags["mlops.dev/retrainjob"] == first.params["retrainjob"]


def test_the_version_has_baseline_signature_and_serves(
    first: FirstRun, client: MlflowClient
) -> None:
    import mlflow

    uri = f"models:/{first.params['model_name']}/{first.result['version']}"
    baseline = load_baseline(uri, client=client)
    assert baseline is not None
    features = [c for c in pd.read_csv(first.csv).columns if c != "target"]
    assert list(baseline.features) == features
    assert list(baseline.predictions) == ["prediction"]
    info = mlflow.models.get_model_info(uri)
    assert info.signature is not None
    assert [c.name for c in info.signature.inputs.inputs] == features
    model = mlflow.pyfunc.load_model(uri)
    rows = pd.read_csv(first.csv).drop(columns=["target"]).head(3)
    assert len(model.predict(rows)) == 3


def test_no_alias_is_set(first: FirstRun, client: MlflowClient) -> None:
    name = first.params["model_name"]
    assert client.get_registered_model(name).aliases == {}
    assert client.get_model_version(name, first.result["version"]).aliases == []


def test_a_second_run_of_the_same_retrainjob_registers_nothing(
    first: FirstRun, client: MlflowClient, tmp_path: Path
) -> None:
    rc, result = run_worker(tmp_path / "run-2", first.params)
    assert rc == 0, (tmp_path / "run-2" / "run.log").read_text()[-5000:]
    assert result["version"] == first.result["version"]
    assert result["metrics"] == first.result["metrics"]
    versions = client.search_model_versions(f"name = '{first.params['model_name']}'")
    assert [v.version for v in versions] == [first.result["version"]]
    assert "is already registered by" in (tmp_path / "run-2" / "run.log").read_text()


def test_invalid_data_fails_with_the_validation_reason(
    mlflow_uri: str, client: MlflowClient, tmp_path: Path
) -> None:
    csv = tmp_path / "bad.csv"
    rows: list[dict[str, Any]] = [
        {"age": 20 + i % 50, "income": 1000.0 * i, "target": i % 2} for i in range(40)
    ]
    rows[3]["income"] = None
    rows[7]["age"] = 250
    pd.DataFrame(rows).to_csv(csv, index=False)
    name = f"tabular-bad-{uuid.uuid4().hex[:6]}"
    rc, result = run_worker(
        tmp_path / "run",
        {
            "model_name": name,
            "retrainjob": f"ml/retrain-bad/{uuid.uuid4()}",
            "mlflow_tracking_uri": mlflow_uri,
            "data_uri": str(csv),
            "ranges": {"age": [0, 120]},
        },
    )
    assert rc == 1
    assert result["status"] == "Failed"
    assert result["reason"] == "ValidationFailed"
    assert result["failed_task"] == "validate-data"
    assert result["message"] == (
        "data validation failed: column 'income' has 1 nulls (2.5%; at most 0.0% allowed); "
        "column 'age' has 1 values outside [0, 120] (observed [20, 250])"
    )
    assert client.search_registered_models(f"name = '{name}'") == []
