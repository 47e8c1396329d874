"""Register small real scikit-learn models in the MLflow fixture, and data to send them."""

from __future__ import annotations

from typing import Any

import numpy as np


def register_iris(
    tracking_uri: str,
    name: str,
    alias: str | None = None,
    max_iter: int = 200,
    tags: dict[str, str] | None = None,
) -> str:
    """Train a logistic regression on iris (shipped with scikit-learn), register it as a new
    version of `name`, optionally point `alias` at it; returns the version."""
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tracking_uri)
    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=max_iter).fit(x, y)
    with mlflow.start_run() as run:
        info: Any = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x, model.predict(x)),
            input_example=x.head(3),
            registered_model_name=name,
            # naming the requirements skips ~7 s of inference per log_model
            pip_requirements=["scikit-learn", "pandas"],
        )
        del run
    version = str(info.registered_model_version)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for k, v in (tags or {}).items():
        client.set_model_version_tag(name, version, k, v)
    if alias:
        client.set_registered_model_alias(name, alias, version)
    return version


def set_alias(tracking_uri: str, name: str, alias: str, version: str) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        name, alias, version
    )


def register_diabetes(tracking_uri: str, name: str, alpha: float) -> str:
    """A ridge regression on scikit-learn's diabetes data, registered as a new version."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    mlflow.set_tracking_uri(tracking_uri)
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=alpha).fit(x, y)
    with mlflow.start_run():
        info: Any = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x, model.predict(x)),
            registered_model_name=name,
            pip_requirements=["scikit-learn", "pandas"],
        )
    return str(info.registered_model_version)


def local_predict(tracking_uri: str, name: str, version: str, rows: Any) -> list[float]:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    return [float(v) for v in np.asarray(model.predict(rows)).ravel()]


def rows(n: int = 20) -> Any:
    """Rows of diabetes, as a DataFrame built from rows, the way a server builds one from a
    request (MLflow's scoring server does the same). The memory layout matters to the last
    bit: the BLAS kernel sums X @ coef in another order for the layout a sliced load_diabetes
    frame has, and "exactly equal" becomes equal to 1e-14 (seen on this machine's CPU)."""
    import pandas as pd
    from sklearn.datasets import load_diabetes

    x, _ = load_diabetes(return_X_y=True, as_frame=True)
    head = x.head(n)
    return pd.DataFrame(head.to_numpy().tolist(), columns=head.columns)


def oip(df: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": c, "shape": [len(df)], "datatype": "FP64", "data": df[c].tolist()}
            for c in df.columns
        ]
    }


def register_with_baseline(mlflow_uri: str, name: str) -> tuple[str, Any]:
    """An iris model whose version carries drift/baseline.json; returns (version, data)."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from mlops_operator.baselines import log_baseline
    from mlops_operator.profiles import compute_profile

    mlflow.set_tracking_uri(mlflow_uri)
    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x, model.predict(x)),
            registered_model_name=name,
            pip_requirements=["scikit-learn", "pandas"],
        )
    log_baseline(compute_profile(x, predictions=model.predict(x)), info.model_id)
    return str(info.registered_model_version), x


def register_misbehaving(
    tracking_uri: str,
    name: str,
    x: Any,
    *,
    fail_column: str | None = None,
    fail_below: float = 0.0,
    sleep_seconds: float = 0.0,
    tags: dict[str, str] | None = None,
) -> str:
    """A version of a model on the columns of frame `x` that predicts the sum of its inputs but
    misbehaves as a bad release would: it raises RuntimeError (the runtime answers 500) on a
    request whose first row has `fail_column` below `fail_below`, and/or sleeps
    `sleep_seconds` per request. The class is defined here, in a function, so that
    cloudpickle stores it by value and a model pod, which has no tests/ package, can load it."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from mlflow.pyfunc.model import PythonModel
    from mlflow.tracking import MlflowClient

    column, below, sleep = fail_column, fail_below, sleep_seconds

    class Misbehaving(PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            import time

            if sleep:
                time.sleep(sleep)
            if column is not None and float(model_input[column].iloc[0]) < below:
                raise RuntimeError(f"the release broke on {column} below {below}")
            return model_input.sum(axis=1)

    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run():
        info: Any = mlflow.pyfunc.log_model(
            name="model",
            python_model=Misbehaving(),
            signature=infer_signature(x, x.sum(axis=1)),
            registered_model_name=name,
            pip_requirements=["pandas"],
        )
    version = str(info.registered_model_version)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for k, v in (tags or {}).items():
        client.set_model_version_tag(name, version, k, v)
    return version


def body_with_age(negative: bool, n: int = 5) -> dict[str, Any]:
    """An OIP request of n diabetes rows whose first row's age is negative or not."""
    import pandas as pd

    x = rows(60)
    first = x[(x["age"] < 0) if negative else (x["age"] >= 0)].head(1)
    return oip(pd.concat([first, x.head(n - 1)], ignore_index=True))
