"""The compiled tabular-train package: the DAG the contract promises, and nothing more."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
import yaml

from mlops_operator import contract
from mlops_operator.pipelines import catalog

STEPS = [
    "load-data",
    "validate-data",
    "train-model",
    "evaluate-model",
    "register-model",
    "check-model",
]
# the component names the tags through the contract module (imported inside its body), so
# what it writes is what the operator looks versions up by
LINEAGE_TAGS = [
    "TAG_RETRAINJOB",
    "TAG_DATA_URI",
    "TAG_DATA_SHA256",
    "TAG_PIPELINE",
    "TAG_CODE_VERSION",
]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(catalog.package_path("tabular-train").read_text())
    return doc


def test_pipeline_name_and_pinned_sdk(spec: dict[str, Any]) -> None:
    assert spec["pipelineInfo"]["name"] == "tabular-train"
    assert spec["sdkVersion"] == f"kfp-{importlib.metadata.version('kfp')}"


def test_the_dag_is_the_six_steps_in_order(spec: dict[str, Any]) -> None:
    tasks = spec["root"]["dag"]["tasks"]
    assert sorted(tasks) == sorted(STEPS)
    assert sorted(spec["components"]) == sorted(f"comp-{s}" for s in STEPS)
    deps = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    assert deps["load-data"] == set()
    assert deps["validate-data"] == {"load-data"}
    assert deps["train-model"] == {"load-data", "validate-data"}
    assert deps["evaluate-model"] == {"train-model"}
    assert deps["register-model"] == {"load-data", "train-model", "evaluate-model"}
    # the check step measures the registered version on the held-out split
    assert deps["check-model"] == {"register-model", "train-model"}


def test_no_conditions_loops_or_nested_dags(spec: dict[str, Any]) -> None:
    for name, task in spec["root"]["dag"]["tasks"].items():
        assert "triggerPolicy" not in task, name
        assert "iteratorPolicy" not in task and "parameterIterator" not in task, name
        assert "artifactIterator" not in task, name
    for name, comp in spec["components"].items():
        assert "dag" not in comp, f"{name} is a sub-DAG"


def test_components_install_nothing_at_run_time(spec: dict[str, Any]) -> None:
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == len(STEPS)
    images = {e["container"]["image"] for e in executors.values()}
    assert len(images) == 1 and images.pop().endswith("-pipelines")
    for name, executor in executors.items():
        command = " ".join(executor["container"]["command"])
        assert "pip install" not in command, name
        assert "kfp.dsl.executor_main" in command, name


def test_the_pipeline_never_touches_an_alias(spec: dict[str, Any]) -> None:
    code = "\n".join(
        " ".join(e["container"]["command"]) for e in spec["deploymentSpec"]["executors"].values()
    )
    for call in ("set_registered_model_alias", "delete_registered_model_alias", "transition_"):
        assert call not in code


def test_register_writes_every_lineage_tag_and_the_baseline(spec: dict[str, Any]) -> None:
    command = " ".join(
        spec["deploymentSpec"]["executors"]["exec-register-model"]["container"]["command"]
    )
    assert "from mlops_operator import contract" in command
    for tag in LINEAGE_TAGS:
        assert f"contract.{tag}" in command
        assert getattr(contract, tag).startswith("mlops.dev/")
    assert "log_baseline" in command and "compute_profile" in command
    assert "pip_requirements" in command  # no 7 s of requirement inference per run


def test_load_and_register_are_never_cached(spec: dict[str, Any]) -> None:
    tasks = spec["root"]["dag"]["tasks"]
    for name in ("load-data", "register-model"):
        assert not tasks[name].get("cachingOptions", {}).get("enableCache", False), name


def test_outputs_are_version_and_metrics(spec: dict[str, Any]) -> None:
    outputs = spec["root"]["outputDefinitions"]["parameters"]
    assert outputs == {
        "version": {"parameterType": "STRING"},
        "metrics": {"parameterType": "STRUCT"},
    }
