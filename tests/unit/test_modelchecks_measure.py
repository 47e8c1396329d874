"""The check step's measurements (modelchecks/report.measure) on real models saved to a local
directory and loaded by the runtime's own loader: no server, no registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_operator.modelchecks.arithmetic import InputSpec, inputs_of
from mlops_operator.modelchecks.report import measure, run_metrics

pytestmark = pytest.mark.unit

CONFIG: dict[str, Any] = {
    "metric": "accuracy",
    "latency": {"p99": "2s", "batchSize": 4},
    "robustness": {"noise": 0.05, "maxChangedShare": 0.1, "outOfRange": True, "missing": True},
    "slices": {"columns": [{"name": "g"}], "minSize": 10, "maxGap": 0.2},
    "fairness": {"sensitiveColumn": "g", "maxDemographicParityDifference": 0.5},
    "signature": {},
}


def _data(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "g": rng.integers(0, 2, n)}
    )
    df["y"] = (df.a + df.b > 0).astype(int)
    return df


def _saved(tmp: Path, df: pd.DataFrame, crash_above: float | None = None) -> Any:
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from mlflow.pyfunc.model import PythonModel
    from sklearn.linear_model import LogisticRegression

    from mlops_operator.runtime import model as runtime_model

    x = df.drop(columns=["y"])
    est = LogisticRegression().fit(x, df.y)
    signature = infer_signature(x, est.predict(x))
    if crash_above is None:
        # naming the requirements skips MLflow's inference of them (seconds per model)
        mlflow.sklearn.save_model(
            est, str(tmp), signature=signature, pip_requirements=["scikit-learn"]
        )
    else:
        limit = crash_above

        class Fragile(PythonModel):
            def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
                if float(np.abs(model_input.to_numpy(float)).max()) > limit:
                    raise RuntimeError("out of its depth")
                return est.predict(model_input)

        mlflow.pyfunc.save_model(
            str(tmp), python_model=Fragile(), signature=signature, pip_requirements=["scikit-learn"]
        )
    return runtime_model.load(str(tmp), drift=False)


def test_a_sound_model_is_measured_on_every_check(tmp_path: Path) -> None:
    df = _data()
    model = _saved(tmp_path / "m", df)
    mine = inputs_of(model.pyfunc.metadata.signature)
    report = measure(model, df, "y", "classification", CONFIG, ("3", mine), mine)
    assert report["rows"] == 120 and report["overall"] > 0.9
    lat = report["latency"]
    assert lat["batchSize"] == 4 and lat["requests"] >= 5 and lat["p99Ms"] >= lat["p50Ms"] > 0
    assert lat["single"]["batchSize"] == 1
    rob = report["robustness"]
    assert 0 <= rob["changedShare"] <= 0.1
    assert rob["outOfRange"] == {
        "tried": 6,
        "answered": 6,
        "refused": 0,
        "crashed": 0,
        "range": "held-out",
    }
    # nulls: the signature's columns are required, so the runtime refuses each (a 400)
    assert rob["missing"]["crashed"] == 0 and rob["missing"]["tried"] == 3
    assert {i["slice"] for i in report["slices"]["items"]} == {"0", "1"}
    assert 0 <= report["fairness"]["demographicParityDifference"] <= 1
    assert report["signature"] == {"against": "3", "changes": []}
    assert run_metrics(report)["check.latency_p99_ms"] == lat["p99Ms"]
    assert run_metrics(report)["check.out_of_range_crashes"] == 0.0


def test_a_crash_on_far_values_is_counted_not_raised(tmp_path: Path) -> None:
    df = _data()
    model = _saved(tmp_path / "m", df, crash_above=20.0)
    report = measure(model, df, "y", "classification", {"robustness": {}})
    far = report["robustness"]["outOfRange"]
    # a and b crash on both sides; g's far values (-10, 11) are within the model's depth
    assert (far["crashed"], far["answered"]) == (4, 2), far
    assert "RuntimeError: out of its depth" in far["firstCrash"]


def test_a_renamed_input_is_a_breaking_change_and_missing_inputs_are_reported(
    tmp_path: Path,
) -> None:
    df = _data()
    model = _saved(tmp_path / "m", df)
    holder = [InputSpec("a", "double"), InputSpec("b_old", "double"), InputSpec("g", "long")]
    report = measure(
        model,
        df,
        "y",
        "classification",
        {"signature": {}},
        ("2", holder),
        inputs_of(model.pyfunc.metadata.signature),
    )
    assert report["signature"]["changes"] == ["input 'b_old' removed", "new required input 'b'"]
    lacking = measure(model, df.drop(columns=["b"]), "y", "classification", {"latency": {}})
    assert "lack the model's inputs ['b']" in lacking["error"]
