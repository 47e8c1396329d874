"""check-candidate: a test-only pipeline that registers a model a test made (an odd one: biased,
slow, crashing, renamed inputs) as the RetrainJob's new version, then runs the shipped check step
(tabular-train's `check_model`, imported from its source) on it.

Not shipped: tests compile it (`tests.support.retrain_jobs.extra_pipeline_packages`) into the
session operator's MLOPS_PIPELINE_PACKAGES_DIR. The shipped pipeline has no switch to make a bad
model; the test logs one itself and names it here (`candidate_uri`, a logged model's URI). The
registration keeps the gate's contract, as tabular-train's does: one version per `retrainjob`
(the tag mlops.dev/retrainjob, set when the version is created), the metrics as version tags
metric.<name>, and the outputs `version` and `metrics`.
"""

import importlib.util
from pathlib import Path
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

PIPELINE_NAME = "check-candidate"


def _shipped() -> object:
    source = Path(__file__).resolve().parents[4] / "pipelines" / "tabular-train" / "pipeline.py"
    spec = importlib.util.spec_from_file_location("_mlops_shipped_tabular_train", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_model = _shipped().check_model  # type: ignore[attr-defined]


class Outputs(NamedTuple):
    version: str
    metrics: dict  # type: ignore[type-arg]


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def register_candidate(
    model_name: str,
    retrainjob: str,
    mlflow_tracking_uri: str,
    candidate_uri: str,
    metrics: dict,  # type: ignore[type-arg]
    data_uri: str,
    test_data: Output[Dataset],
) -> NamedTuple("Outputs", [("version", str), ("metrics", dict)]):  # type: ignore[valid-type]
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from mlops_operator import contract

    pd.read_parquet(data_uri).to_parquet(test_data.path, index=False)
    client = MlflowClient(tracking_uri=mlflow_tracking_uri, registry_uri=mlflow_tracking_uri)
    tag, prefix = contract.TAG_RETRAINJOB, contract.TAG_METRIC_PREFIX
    existing = client.search_model_versions(
        f"name = '{model_name}' and tags.`{tag}` = '{retrainjob}'"
    )
    if existing:
        found = min(existing, key=lambda v: int(v.version))
        return (str(found.version), metrics)
    import mlflow

    mlflow.set_tracking_uri(mlflow_tracking_uri)
    mlflow.set_registry_uri(mlflow_tracking_uri)
    tags = {tag: retrainjob, **{f"{prefix}{k}": repr(float(v)) for k, v in metrics.items()}}
    mv = mlflow.register_model(candidate_uri, model_name, tags=tags)
    return (str(mv.version), metrics)


@dsl.pipeline(
    name=PIPELINE_NAME, description="Test-only: register a model a test made, and check it."
)
def check_candidate(
    model_name: str,
    retrainjob: str,
    mlflow_tracking_uri: str,
    candidate_uri: str,
    data_uri: str,
    metrics: dict,  # type: ignore[type-arg]
    label_column: str = "target",
    task: str = "classification",
    checks: dict = {},  # type: ignore[type-arg]  # noqa: B006
) -> Outputs:
    reg = register_candidate(
        model_name=model_name,
        retrainjob=retrainjob,
        mlflow_tracking_uri=mlflow_tracking_uri,
        candidate_uri=candidate_uri,
        metrics=metrics,
        data_uri=data_uri,
    )
    reg.set_caching_options(False)
    measured = check_model(
        model_name=model_name,
        version=reg.outputs["version"],
        test_data=reg.outputs["test_data"],
        label_column=label_column,
        task=task,
        mlflow_tracking_uri=mlflow_tracking_uri,
        checks=checks,
    )
    measured.set_caching_options(False)
    return Outputs(version=reg.outputs["version"], metrics=reg.outputs["metrics"])
