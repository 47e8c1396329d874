"""Odd candidates for the promotion checks, made the way a bad release would be: a model that is
accurate but biased against a group, slow, crashing on values outside its training range, or
with an input renamed. Each is a logistic regression on synthetic data, wrapped in an MLflow
pyfunc whose class is defined inside a function, so cloudpickle stores it by value and the
pipeline's check step (another process, no tests/ package) can load it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = ["a", "b", "c", "group"]
LABEL = "target"


@dataclass(frozen=True)
class Data:
    train: Any  # pandas DataFrame, features and LABEL
    held_out: Any

    def write_held_out(self, path: Path, rename: dict[str, str] | None = None) -> str:
        self.held_out.rename(columns=rename or {}).to_parquet(path, index=False)
        return str(path)


def make_data(seed: int = 7, n: int = 800) -> Data:
    """A binary label that depends on a and b, not on `group` (0/1, the sensitive column) or c."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.normal(size=n),
            "group": rng.integers(0, 2, n),
        }
    )
    df[LABEL] = ((df.a + 0.8 * df.b + 0.3 * rng.normal(size=n)) > 0).astype(int)
    return Data(
        df.iloc[: n * 3 // 4].reset_index(drop=True), df.iloc[n * 3 // 4 :].reset_index(drop=True)
    )


def log_candidate(
    tracking_uri: str,
    data: Data,
    *,
    shuffle_labels: bool = False,
    favour_group: int | None = None,
    sleep_seconds: float = 0.0,
    crash_above: float | None = None,
    rename: dict[str, str] | None = None,
) -> tuple[str, float]:
    """(model URI, accuracy on the held-out rows) of a logged model (not registered).

    shuffle_labels: trained on shuffled labels (a weak holder); favour_group: predicts the
    positive class for that group only (a planted bias); sleep_seconds: per request;
    crash_above: raises RuntimeError (the runtime's 500) when any value's magnitude passes it;
    rename: its inputs renamed (old -> new), as a release that renames a column callers send.
    """
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from mlflow.pyfunc.model import PythonModel
    from sklearn.linear_model import LogisticRegression

    names = rename or {}
    x = data.train[FEATURES].rename(columns=names)
    y = data.train[LABEL].to_numpy()
    if shuffle_labels:
        y = np.random.default_rng(1).permutation(y)
    fitted = LogisticRegression().fit(x, y)
    favour, sleep, crash = favour_group, sleep_seconds, crash_above
    group = names.get("group", "group")

    class Candidate(PythonModel):
        def __init__(self, est: Any) -> None:
            self.est = est

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            import time

            import numpy as np

            if sleep:
                time.sleep(sleep)
            if crash is not None and float(np.abs(model_input.to_numpy(float)).max()) > crash:
                raise RuntimeError(f"this release breaks on values above {crash}")
            if favour is None:
                return self.est.predict(model_input)
            # the other group never gets the positive class
            favoured = model_input[group].to_numpy() == favour
            return np.where(favoured, self.est.predict(model_input), 0)

    model = Candidate(fitted)
    held = data.held_out[FEATURES].rename(columns=names)
    accuracy = float(np.mean(model.predict(None, held) == data.held_out[LABEL].to_numpy()))
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run():
        info: Any = mlflow.pyfunc.log_model(
            name="model",
            python_model=Candidate(fitted),
            signature=infer_signature(x, fitted.predict(x)),
            pip_requirements=["scikit-learn", "pandas"],
        )
    return str(info.model_uri), accuracy


def register_holder(tracking_uri: str, name: str, data: Data, alias: str = "champion") -> str:
    """A weak version (trained on shuffled labels, its real held-out accuracy as its metric)
    holding `alias`, with the inputs FEATURES: the version the candidates must beat."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri, accuracy = log_candidate(tracking_uri, data, shuffle_labels=True)
    mlflow.set_registry_uri(tracking_uri)
    mv = mlflow.register_model(uri, name, tags={"metric.accuracy": repr(accuracy)})
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.set_registered_model_alias(name, alias, str(mv.version))
    return str(mv.version)
