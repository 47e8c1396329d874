"""The report of one version (each check the config names, measured), and writing it to MLflow:
the version tag, the file beside the model, the metrics of its run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlops_operator.modelchecks import REPORT_SCHEMA
from mlops_operator.modelchecks.arithmetic import (
    InputSpec,
    changed_share,
    fairness_report,
    inputs_of,
    metric_value,
    noised,
    signature_changes,
    slices_report,
    training_ranges,
)
from mlops_operator.modelchecks.probes import Scorer, missing_values, out_of_range, time_both

if TYPE_CHECKING:
    from mlops_operator.runtime.model import LoadedModel


def _section(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A section of the report; what goes wrong measuring it is reported, not raised."""
    start = time.perf_counter()
    try:
        out = fn()
    except Exception as e:
        out = {"error": f"{type(e).__name__}: {e}"[:1000]}
    print(f"  measured in {time.perf_counter() - start:.2f} s: {json.dumps(out)[:300]}")
    return out


def measure(
    model: LoadedModel,
    data: pd.DataFrame,
    label: str,
    task: str,
    config: Mapping[str, Any],
    holder_inputs: tuple[str | None, list[InputSpec] | None] | None = None,
    candidate_inputs: list[InputSpec] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The report of the checks `config` (spec.promotion.checks, plus "metric") names, on the
    held-out `data` (features and the `label` column). `holder_inputs` is (version, inputs)
    of the alias holder, for the signature check (None: no holder)."""
    metric = str(config.get("metric") or "")
    x = data.drop(columns=[label])
    y = data[label].to_numpy()
    schema = model.schema
    features = [c.name for c in schema.columns] if schema is not None else list(x.columns)
    scorer = Scorer(model, features)
    report: dict[str, Any] = {"schema": REPORT_SCHEMA, "rows": len(data), "metric": metric}
    missing = [f for f in features if f not in x.columns]
    if missing:
        report["error"] = f"the held-out rows lack the model's inputs {missing[:10]}"
        return report

    predictions: Any = None

    def clean() -> Any:
        nonlocal predictions
        if predictions is None:
            predictions = scorer.predict(x)
        return predictions

    if config.get("slices") or config.get("fairness"):
        try:
            report["overall"] = round(metric_value(metric, y, clean(), task), 6)
        except Exception as e:
            report["overallError"] = f"{type(e).__name__}: {e}"[:1000]
    if (lat := config.get("latency")) is not None:
        print("latency:")
        report["latency"] = _section(lambda: time_both(scorer, x, int(lat.get("batchSize") or 1)))
    if (rob := config.get("robustness")) is not None:
        print("robustness:")

        def robustness() -> dict[str, Any]:
            scale = float(rob.get("noise", 0.05))
            out: dict[str, Any] = {"noise": scale, "rows": len(x)}
            ranges, spreads = training_ranges(model.baseline)
            shaken = scorer.predict(noised(x, scale, seed, spreads))
            out["changedShare"] = round(changed_share(clean(), shaken, task), 6)
            if rob.get("outOfRange", True):
                out["outOfRange"] = out_of_range(scorer, x, ranges)
            if rob.get("missing", True):
                out["missing"] = missing_values(scorer, x)
            return out

        report["robustness"] = _section(robustness)
    if (sl := config.get("slices")) is not None:
        print("slices:")
        report["slices"] = _section(
            lambda: slices_report(
                x, y, clean(), task, metric, sl.get("columns") or [], int(sl.get("minSize", 30))
            )
        )
    if (fair := config.get("fairness")) is not None:
        print("fairness:")

        def fairness() -> dict[str, Any]:
            column = str(fair.get("sensitiveColumn"))
            if column not in x.columns:
                return {"error": f"fairness: no column {column!r} in the held-out rows"}
            if task != "classification":
                return {"error": "fairness applies to classifiers"}
            return fairness_report(y, clean(), x[column])

        report["fairness"] = _section(fairness)
    if config.get("signature") is not None:
        print("signature:")

        def signature() -> dict[str, Any]:
            if holder_inputs is None:
                return {"against": None, "changes": []}
            version, old = holder_inputs
            if old is None:
                return {"against": version, "changes": [], "note": "the holder has no signature"}
            if candidate_inputs is None:
                return {"against": version, "changes": ["the new version has no input signature"]}
            return {"against": version, "changes": signature_changes(old, candidate_inputs)}

        report["signature"] = _section(signature)
    return report


def run_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The report's numbers as MLflow metric names (check.<what>), for the version's run."""
    out: dict[str, float] = {}
    lat = report.get("latency") or {}
    for key in ("p50Ms", "p99Ms"):
        if isinstance(lat.get(key), int | float):
            out[f"check.latency_{key[:3]}_ms"] = float(lat[key])
    rob = report.get("robustness") or {}
    if isinstance(rob.get("changedShare"), int | float):
        out["check.noise_changed_share"] = float(rob["changedShare"])
    for key, name in (("outOfRange", "out_of_range"), ("missing", "missing")):
        if isinstance((rob.get(key) or {}).get("crashed"), int):
            out[f"check.{name}_crashes"] = float(rob[key]["crashed"])
    fair = report.get("fairness") or {}
    for key, name in (
        ("demographicParityDifference", "demographic_parity_difference"),
        ("equalizedOddsDifference", "equalized_odds_difference"),
    ):
        if isinstance(fair.get(key), int | float):
            out[f"check.{name}"] = float(fair[key])
    sig = report.get("signature") or {}
    if isinstance(sig.get("changes"), list):
        out["check.signature_breaking_changes"] = float(len(sig["changes"]))
    return out


# -- the version in MLflow (the check step's I/O) --------------------------------------------


def check_version(
    tracking_uri: str,
    model_name: str,
    version: str,
    data: pd.DataFrame,
    label: str,
    task: str,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """Measure registered version `version` of `model_name` and write its report: the version
    tag, the artifact beside the model and metrics on its run. Returns the report."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info
    from mlflow.tracking import MlflowClient

    from mlops_operator.runtime import model as runtime_model

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    uri = f"models:/{model_name}/{version}"
    try:
        # drift=True: the baseline beside the model holds the training data's ranges
        loaded = runtime_model.load(uri, drift=True)
    except Exception as e:
        report: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "error": f"the runtime's loader could not load {uri}: {type(e).__name__}: {e}"[:1000],
        }
    else:
        holder: tuple[str | None, list[InputSpec] | None] | None = None
        if config.get("signature") is not None:
            alias = str(config.get("alias") or "champion")
            try:
                held = str(client.get_model_version_by_alias(model_name, alias).version)
            except MlflowException:
                held = None  # no version holds the alias: nothing to break
            if held is not None:
                info = get_model_info(f"models:/{model_name}/{held}")
                holder = (held, inputs_of(info.signature))
        candidate = inputs_of(loaded.pyfunc.metadata.signature)
        report = measure(loaded, data, label, task, config, holder, candidate)
    write_report(client, model_name, version, report)
    return report


def write_report(client: Any, model_name: str, version: str, report: Mapping[str, Any]) -> None:
    import tempfile
    from pathlib import Path

    from mlflow.entities import Metric

    from mlops_operator import contract
    from mlops_operator.baselines import model_id_of

    text = json.dumps(report, separators=(",", ":"), sort_keys=True)
    client.set_model_version_tag(model_name, version, contract.TAG_CHECKS, text)
    folder, file = contract.CHECKS_REPORT_ARTIFACT.rsplit("/", 1)
    mv = client.get_model_version(model_name, version)
    try:
        model_id = model_id_of(f"models:/{model_name}/{version}", client)
    except ValueError:
        model_id = None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file
        path.write_text(json.dumps(report, indent=2, sort_keys=True))
        if model_id is not None:
            client.log_model_artifact(model_id, str(path), folder)
        elif mv.run_id:
            client.log_artifact(mv.run_id, str(path), folder)
    if mv.run_id:
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in run_metrics(report).items()]
        if metrics:
            client.log_batch(mv.run_id, metrics=metrics)
