"""Register small real scikit-learn models in the MLflow fixture."""

from __future__ import annotations

from typing import Any


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
