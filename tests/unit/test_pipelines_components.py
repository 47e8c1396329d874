"""tabular-train's components as plain functions (their ``python_func``), no runner, no MLflow.

The register step needs MLflow and runs in tests/integration/test_pipeline_local.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kfp import dsl

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def p() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_tabular_train_under_test", ROOT / "pipelines" / "tabular-train" / "pipeline.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(p: ModuleType, tmp: Path, uri: str, **kw: Any) -> tuple[pd.DataFrame, str, str]:
    args: dict[str, Any] = {
        "label_column": "target",
        "task": "classification",
        "seed": 7,
        "sample_fraction": 1.0,
        "label_noise": 0.0,
        "shift_scale": 0.0,
        **kw,
    }
    out = dsl.Dataset(uri=str(tmp / f"data-{len(list(tmp.iterdir()))}.parquet"))
    sha, transform, repo, rev = p.load_data.python_func(data_uri=uri, data=out, **args)
    assert (repo, rev) == (
        "",
        "",
    )  # only a dvc:// source has them (tests/integration/test_dvc_data.py)
    return pd.read_parquet(out.path), sha, transform


def validate(p: ModuleType, tmp: Path, df: pd.DataFrame, **kw: Any) -> str:
    path = tmp / "validate.parquet"
    df.to_parquet(path, index=False)
    args: dict[str, Any] = {
        "label_column": "target",
        "task": "classification",
        "columns": {},
        "ranges": {},
        "max_null_fraction": 0.0,
        "min_rows": 5,
        **kw,
    }
    result: str = p.validate_data.python_func(data=dsl.Dataset(uri=str(path)), **args)
    return result


def train_and_evaluate(p: ModuleType, tmp: Path, df: pd.DataFrame, **kw: Any) -> dict[str, float]:
    data = tmp / "train-input.parquet"
    df.to_parquet(data, index=False)
    task = kw.pop("task", "classification")
    model = dsl.Model(uri=str(tmp / "model.joblib"))
    test = dsl.Dataset(uri=str(tmp / "test.parquet"))
    args: dict[str, Any] = {
        "model_type": "linear",
        "test_size": 0.25,
        "seed": 42,
        "c": 1.0,
        "max_iter": 1000,
        "n_estimators": 20,
        "max_depth": 0,
        **kw,
    }
    p.train_model.python_func(
        data=dsl.Dataset(uri=str(data)),
        label_column="target",
        task=task,
        model=model,
        train_data=dsl.Dataset(uri=str(tmp / "train.parquet")),
        test_data=test,
        **args,
    )
    metrics: dict[str, float] = p.evaluate_model.python_func(
        model=model,
        test_data=test,
        label_column="target",
        task=task,
        scores=dsl.Metrics(uri=str(tmp / "scores")),
    )
    return metrics


# --- load -----------------------------------------------------------------------------------


def test_sklearn_dataset_loads_with_a_stable_digest(p: ModuleType, tmp_path: Path) -> None:
    df, sha, transform = load(p, tmp_path, "sklearn:iris")
    again, sha_again, _ = load(p, tmp_path, "sklearn:iris")
    assert len(df) == 150 and "target" in df.columns
    assert sha == sha_again and len(sha) == 64
    assert transform == ""
    pd.testing.assert_frame_equal(df, again)


@pytest.mark.parametrize("as_uri", [False, True])
def test_files_load_and_the_digest_is_of_their_bytes(
    p: ModuleType, tmp_path: Path, as_uri: bool
) -> None:
    csv = tmp_path / "in.csv"
    csv.write_text("a,b,target\n1,x,0\n2,y,1\n")
    parquet = tmp_path / "in.parquet"
    pd.DataFrame({"a": [1.5, 2.5], "target": [0, 1]}).to_parquet(parquet)
    for path in (csv, parquet):
        df, sha, _ = load(p, tmp_path, path.as_uri() if as_uri else str(path))
        assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
        assert len(df) == 2


def test_unsupported_sources_are_refused(p: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported data_uri scheme 's3'"):
        load(p, tmp_path, "s3://bucket/data.csv")
    with pytest.raises(ValueError, match="unknown scikit-learn dataset"):
        load(p, tmp_path, "sklearn:mnist")
    (tmp_path / "data.txt").write_text("a\n1\n")
    with pytest.raises(ValueError, match="cannot tell the format"):
        load(p, tmp_path, str(tmp_path / "data.txt"))


def test_shifts_are_deterministic_and_recorded(p: ModuleType, tmp_path: Path) -> None:
    clean, sha, _ = load(p, tmp_path, "sklearn:breast_cancer")
    kw = {"label_noise": 0.3, "shift_scale": 1.0, "sample_fraction": 0.8}
    shifted, sha_shifted, transform = load(p, tmp_path, "sklearn:breast_cancer", **kw)
    again, _, _ = load(p, tmp_path, "sklearn:breast_cancer", **kw)
    pd.testing.assert_frame_equal(shifted, again)
    assert sha_shifted == sha  # the digest is of the source; the shift is recorded beside it
    assert json.loads(transform) == {**kw, "seed": 7}
    assert len(shifted) == round(0.8 * len(clean))
    col = "mean radius"
    assert shifted[col].mean() - clean[col].mean() == pytest.approx(clean[col].std(), rel=0.15)
    # about 30% of the kept rows got the other label (compare on the rows that were kept)
    kept = clean.sample(frac=0.8, random_state=7).sort_index()["target"].to_numpy()
    flipped = np.mean(kept != shifted["target"].to_numpy())
    assert 0.2 < flipped < 0.4


# --- validate -------------------------------------------------------------------------------


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"x": np.arange(10.0), "n": np.arange(10), "s": list("abababab12"), "target": [0, 1] * 5}
    )


def test_valid_data_passes(p: ModuleType, tmp_path: Path) -> None:
    columns = {"x": "float", "n": "int", "s": "string"}
    ranges = {"x": [0, 9], "n": {"min": 0}}
    assert "valid" in validate(p, tmp_path, frame(), columns=columns, ranges=ranges)


def test_every_problem_is_reported_in_one_message(
    p: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = tmp_path / "failure.json"
    monkeypatch.setenv("MLOPS_PIPELINE_FAILURE_FILE", str(failure))
    df = frame()
    df.loc[3, "x"] = None
    df.loc[4, "n"] = 500
    df["extra"] = 1
    with pytest.raises(ValueError) as err:
        validate(
            p,
            tmp_path,
            df,
            columns={"x": "float", "n": "string", "missing": "int"},
            ranges={"n": [0, 100]},
            min_rows=20,
        )
    message = str(err.value)
    assert message.startswith("data validation failed: ")
    for part in (
        "10 rows, at least 20 required",
        "column 'missing' is missing",
        "column 'n' is int64, expected string",
        "unexpected columns ['s', 'extra']",
        "column 'x' has 1 nulls (10.0%; at most 0.0% allowed)",
        "column 'n' has 1 values outside [0, 100] (observed [0, 500])",
    ):
        assert part in message
    assert json.loads(failure.read_text()) == {"reason": "ValidationFailed", "message": message}


def test_label_problems(p: ModuleType, tmp_path: Path) -> None:
    df = frame()
    df["target"] = 0
    with pytest.raises(ValueError, match="fewer than two classes"):
        validate(p, tmp_path, df)
    df.loc[0, "target"] = None
    with pytest.raises(ValueError, match="label column 'target' has 1 nulls"):
        validate(p, tmp_path, df)
    with pytest.raises(ValueError, match="label column 'nope' is missing"):
        validate(p, tmp_path, frame(), label_column="nope")


def test_nulls_within_the_allowed_share_pass(p: ModuleType, tmp_path: Path) -> None:
    df = frame()
    df.loc[3, "x"] = None
    assert "valid" in validate(p, tmp_path, df, max_null_fraction=0.1)


# --- train and evaluate ---------------------------------------------------------------------


def test_classification_metrics_and_label_noise_makes_it_worse(
    p: ModuleType, tmp_path: Path
) -> None:
    clean, _, _ = load(p, tmp_path, "sklearn:breast_cancer")
    noisy, _, _ = load(p, tmp_path, "sklearn:breast_cancer", label_noise=0.3)
    good = train_and_evaluate(p, tmp_path, clean)
    assert set(good) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert good["accuracy"] > 0.93
    assert train_and_evaluate(p, tmp_path, clean) == good  # fixed seeds
    worse = train_and_evaluate(p, tmp_path, noisy)
    assert worse["accuracy"] < good["accuracy"] - 0.1


def test_multiclass_with_a_categorical_feature_and_nulls(p: ModuleType, tmp_path: Path) -> None:
    iris, _, _ = load(p, tmp_path, "sklearn:iris")
    iris["colour"] = np.where(iris["target"] == 0, "red", "blue")
    iris.loc[::10, "sepal width (cm)"] = None
    metrics = train_and_evaluate(p, tmp_path, iris, model_type="random_forest")
    assert metrics["accuracy"] > 0.85 and "roc_auc" in metrics


def test_regression(p: ModuleType, tmp_path: Path) -> None:
    diabetes, _, _ = load(p, tmp_path, "sklearn:diabetes", task="regression")
    metrics = train_and_evaluate(p, tmp_path, diabetes, task="regression")
    assert set(metrics) == {"rmse", "mae", "r2"}
    assert metrics["r2"] > 0.3


def test_unknown_model_type(p: ModuleType, tmp_path: Path) -> None:
    iris, _, _ = load(p, tmp_path, "sklearn:iris")
    with pytest.raises(ValueError, match="unknown model_type 'svm'"):
        train_and_evaluate(p, tmp_path, iris, model_type="svm")
