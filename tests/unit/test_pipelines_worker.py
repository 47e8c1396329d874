"""The local worker's parts that need no pipeline run: parameters, results, log parsing.

Whole runs against a real MLflow are in tests/integration/test_pipeline_local.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlops_operator.pipelines import catalog, local_worker
from mlops_operator.pipelines.local_worker import Worker, last_exception_line, write_json_atomic

PACKAGE = catalog.package_path("tabular-train")


def test_invalid_parameters_fail_before_anything_runs(tmp_path: Path) -> None:
    result = Worker(tmp_path, PACKAGE).run({"model_name": "m", "data_uri": 3, "dta": 1})
    assert result["status"] == "Failed"
    assert result["reason"] == "InvalidParameters"
    assert "dta: unknown parameter" in result["message"]
    assert "retrainjob: required parameter is missing" in result["message"]
    assert "data_uri: expected a string, got int 3" in result["message"]
    assert result["pipeline"] == "tabular-train"
    assert result["started_at"].endswith("Z") and result["completed_at"].endswith("Z")
    assert not (tmp_path / "root").exists()


def test_the_cli_writes_result_and_log_and_prints_nothing(tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "result.json").write_text('{"status": "Succeeded", "version": "stale"}')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_operator.pipelines.local_worker",
            "--package",
            str(PACKAGE),
            "--parameters-json",
            "[1, 2]",
            "--workdir",
            str(workdir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout == "" and proc.stderr == ""
    result = json.loads((workdir / "result.json").read_text())
    assert result["reason"] == "InvalidParameters"
    assert "must be a JSON object" in result["message"]
    assert "InvalidParameters" in (workdir / "run.log").read_text()
    assert sorted(p.name for p in workdir.iterdir()) == ["result.json", "run.log"]


def test_parameters_can_come_from_a_file(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text('{"a": 1}')
    args = local_worker.parse_args(
        ["--package", "x.yaml", "--parameters-file", str(params), "--workdir", str(tmp_path)]
    )
    assert local_worker._parameters(args) == {"a": 1}


def test_last_exception_line_of_a_task_log() -> None:
    log = """
    [KFP Executor INFO]: Got executor_input:
    Traceback (most recent call last):
      File "<frozen runpy>", line 198, in _run_module_as_main
      File "/tmp/x/ephemeral_component.py", line 60, in load_data
        raise ValueError(f"unknown scikit-learn dataset {name!r}")
    ValueError: unknown scikit-learn dataset 'nope'


\x1b[91m08:39:25.370 - ERROR - Task 'load-data' finished with status FAILURE\x1b[0m
"""
    assert last_exception_line(log) == "ValueError: unknown scikit-learn dataset 'nope'"
    chained = (
        "Traceback (most recent call last):\n  ...\n"
        "    mlflow.exceptions.MlflowException: API request to http://x failed: "
        "Connection refused\n"
    )
    assert last_exception_line(chained) == (
        "mlflow.exceptions.MlflowException: API request to http://x failed: Connection refused"
    )
    assert last_exception_line("all fine\n") is None


def test_results_are_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    write_json_atomic(path, {"status": "Succeeded", "version": "1"})
    write_json_atomic(path, {"status": "Failed", "reason": "PipelineFailed"})
    assert json.loads(path.read_text()) == {"status": "Failed", "reason": "PipelineFailed"}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_long_messages_are_cut(tmp_path: Path) -> None:
    result = Worker(tmp_path, PACKAGE).failed("PipelineFailed", "x" * 10_000)
    assert len(result["message"]) == local_worker.MAX_MESSAGE
