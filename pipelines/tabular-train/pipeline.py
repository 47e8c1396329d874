"""tabular-train: load -> validate -> train -> evaluate -> register -> check, for tabular data.

A KFP v2 pipeline of small lightweight Python components. Every component runs in
``PIPELINES_IMAGE`` (the operator image with the ``pipelines`` extra: kfp, MLflow,
scikit-learn, pandas, pyarrow and ``mlops_operator`` itself) with ``install_kfp_package=False``,
so nothing is pip-installed at run time: the same package runs on a KFP cluster and, offline,
under kfp's local runner (``python -m mlops_operator.pipelines.local_worker``).

The pipeline registers a new version of ``model_name`` with its metrics, drift baseline and
lineage; it never moves an alias. Promotion is the operator's gate, so there is no
conditional branch here (kfp's local runner has had bugs with ``dsl.If``).

Components are compiled from their source text alone: everything a component needs is
imported inside its body, and helpers are nested functions.

Compile with ``python -m mlops_operator.pipelines.compile`` (``make pipelines``).
"""

import importlib.metadata
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

PIPELINE_NAME = "tabular-train"

# Holds every package the components import, so components never pip-install (the cluster
# may be offline, and an install would make runs irreproducible).
PIPELINES_IMAGE = "ghcr.io/mlops-operator/operator:0.1.0-pipelines"

try:
    CODE_VERSION = importlib.metadata.version("mlops-operator")
except importlib.metadata.PackageNotFoundError:  # compiled outside an install of the project
    CODE_VERSION = "0+unknown"

component = dsl.component(base_image=PIPELINES_IMAGE, install_kfp_package=False)


class PipelineOutputs(NamedTuple):
    """What a run of the pipeline returns (the register step's outputs)."""

    version: str
    metrics: dict  # type: ignore[type-arg]


@component
def load_data(
    data_uri: str,
    label_column: str,
    task: str,
    seed: int,
    sample_fraction: float,
    label_noise: float,
    shift_scale: float,
    data: Output[Dataset],
) -> NamedTuple(  # type: ignore[valid-type]
    "LoadOutputs", [("sha256", str), ("transform", str), ("repo", str), ("rev", str)]
):
    """Read ``data_uri`` into a Parquet dataset and apply the optional deterministic shifts.

    ``data_uri``: a CSV or Parquet file (path or ``file://`` URI), a file in a DVC (or git)
    repository, ``dvc://<path>?repo=<url-or-dir>&rev=<rev>`` (read with DVC's Python API at
    the commit ``rev`` resolves to), or ``sklearn:<name>`` for a dataset shipped with
    scikit-learn (breast_cancer, wine, iris, diabetes; the label column is ``target``).
    ``sha256`` is the digest of the source bytes as read (for ``sklearn:``, of the dataset
    written as CSV); ``transform`` is the canonical JSON of the shifts applied after reading
    ("" when none), so (uri, sha256, transform) identifies the training table. ``repo`` and
    ``rev`` are the repository and the commit of a ``dvc://`` source ("" otherwise).

    Shifts, all seeded by ``seed``: ``sample_fraction`` keeps that share of the rows;
    ``label_noise`` replaces that share of labels by another class (classification) or adds
    Gaussian noise of that many label standard deviations (regression); ``shift_scale`` adds
    that many standard deviations to every numeric feature (covariate drift).
    """
    import hashlib
    import io
    import json
    import os
    import urllib.parse

    import numpy as np
    import pandas as pd

    def parse(raw: bytes, path: str, uri: str) -> pd.DataFrame:
        lower = path.lower()
        if lower.endswith((".parquet", ".pq")):
            return pd.read_parquet(io.BytesIO(raw))
        if lower.endswith((".csv", ".csv.gz")):
            compression = "gzip" if lower.endswith(".gz") else None
            return pd.read_csv(io.BytesIO(raw), compression=compression)
        raise ValueError(f"cannot tell the format of {uri!r}: expected .csv or .parquet")

    def read_source(uri: str) -> tuple[pd.DataFrame, bytes, str, str]:
        if uri.startswith("dvc://"):
            from mlops_operator.datasets import parse_dvc_uri, read_dvc

            ref = parse_dvc_uri(uri)
            raw, commit = read_dvc(ref)
            print(f"read {ref.path} from {ref.repo} at {commit} (rev {ref.rev or 'HEAD'})")
            return parse(raw, ref.path, uri), raw, ref.repo, commit
        if uri.startswith("sklearn:"):
            from sklearn import datasets

            name = uri.split(":", 1)[1]
            known = ("breast_cancer", "wine", "iris", "diabetes")
            if name not in known:
                raise ValueError(f"unknown scikit-learn dataset {name!r}; known: {known}")
            frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
            # one stable byte form, so the digest identifies the table and not pickle details
            raw = frame.to_csv(index=False).encode()
            return pd.read_csv(io.BytesIO(raw)), raw, "", ""
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme == "file":
            path = urllib.parse.unquote(parsed.path)
        elif parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
            path = uri
        else:
            raise ValueError(
                f"unsupported data_uri scheme {parsed.scheme!r} in {uri!r}: use a file path, "
                "file://, dvc://<path>?repo=<url-or-dir>&rev=<rev>, or sklearn:<name>"
            )
        with open(path, "rb") as f:
            raw = f.read()
        return parse(raw, path, uri), raw, "", ""

    if not 0.0 < sample_fraction <= 1.0:
        raise ValueError(f"sample_fraction must be in (0, 1], got {sample_fraction}")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got {label_noise}")

    df, raw, repo, rev = read_source(data_uri)
    digest = hashlib.sha256(raw).hexdigest()
    rng = np.random.default_rng(seed)
    transform: dict[str, float] = {}

    if sample_fraction < 1.0:
        df = df.sample(frac=sample_fraction, random_state=seed).sort_index()
        transform["sample_fraction"] = sample_fraction
    if label_noise > 0.0 and label_column in df.columns:
        y = df[label_column].copy()
        hit = rng.random(len(y)) < label_noise
        if task == "classification":
            classes = np.array(sorted(y.dropna().unique().tolist()))
            if len(classes) > 1:
                for i in np.flatnonzero(hit):
                    others = classes[classes != y.iloc[i]]
                    y.iloc[i] = others[rng.integers(len(others))]
        else:
            y = y.astype("float64")
            noise = rng.normal(0.0, float(y.std()) * label_noise, len(y))
            y = y.where(~hit, y + noise)
        df[label_column] = y
        transform["label_noise"] = label_noise
    if shift_scale != 0.0:
        for col in df.columns:
            kind = df[col].dtype.kind
            if col == label_column or kind not in "iuf":
                continue
            shifted = df[col] + shift_scale * float(df[col].std())
            # integer columns stay integers so a schema written for the data still holds
            df[col] = shifted.round().astype(df[col].dtype) if kind in "iu" else shifted
        transform["shift_scale"] = shift_scale
    if transform:
        transform["seed"] = seed

    df = df.reset_index(drop=True)
    df.to_parquet(data.path, index=False)
    data.metadata.update({"rows": len(df), "columns": len(df.columns), "sha256": digest})
    print(f"loaded {len(df)} rows x {len(df.columns)} columns from {data_uri} (sha256 {digest})")
    return (digest, json.dumps(transform, sort_keys=True) if transform else "", repo, rev)


@component
def validate_data(
    data: Input[Dataset],
    label_column: str,
    task: str,
    columns: dict,  # type: ignore[type-arg]
    ranges: dict,  # type: ignore[type-arg]
    max_null_fraction: float,
    min_rows: int,
) -> str:
    """Check the data before anything trains on it; fail the run with every problem found.

    ``columns`` maps column name -> type (``int``, ``float``, ``numeric``, ``bool``,
    ``string``); when given, missing and unexpected columns are errors. ``ranges`` maps column
    name -> ``[min, max]`` (either may be null) or ``{"min": .., "max": ..}``, inclusive.
    Always checked: at least ``min_rows`` rows, a label column without nulls (and with at
    least two classes of two rows each, for classification), null shares up to
    ``max_null_fraction`` per feature column, no infinite numbers.

    On failure, the reason is also written as JSON to ``$MLOPS_PIPELINE_FAILURE_FILE`` when
    that is set (the local worker sets it to put the reason into its result).
    """
    import json
    import os

    import numpy as np
    import pandas as pd

    df = pd.read_parquet(data.path)
    problems: list[str] = []
    type_kinds = {"int": "iu", "float": "iuf", "numeric": "iuf", "bool": "b", "string": "OSUT"}

    if len(df) < min_rows:
        problems.append(f"{len(df)} rows, at least {min_rows} required")

    if columns:
        for name, want in columns.items():
            if name not in df.columns:
                problems.append(f"column {name!r} is missing")
                continue
            kinds = type_kinds.get(str(want))
            if kinds is None:
                problems.append(f"column {name!r}: unknown type {want!r} in the schema")
            elif df[name].dtype.kind not in kinds:
                problems.append(f"column {name!r} is {df[name].dtype}, expected {want}")
        unexpected = [c for c in df.columns if c not in columns and c != label_column]
        if unexpected:
            problems.append(f"unexpected columns {unexpected}")

    if label_column not in df.columns:
        problems.append(f"label column {label_column!r} is missing")
    else:
        label = df[label_column]
        if label.isna().any():
            problems.append(f"label column {label_column!r} has {int(label.isna().sum())} nulls")
        if task == "classification":
            counts = label.dropna().value_counts()
            if len(counts) < 2:
                problems.append(f"label column {label_column!r} has fewer than two classes")
            elif counts.min() < 2:
                rare = counts[counts < 2].index.tolist()
                problems.append(f"classes {rare} have fewer than two rows")
        elif task == "regression":
            if label.dtype.kind not in "iuf":
                problems.append(f"label column {label_column!r} is {label.dtype}, not numeric")
        else:
            problems.append(f"unknown task {task!r}: use classification or regression")

    for name in df.columns:
        if name == label_column:
            continue
        col = df[name]
        nulls = int(col.isna().sum())
        if nulls and nulls / max(len(df), 1) > max_null_fraction:
            problems.append(
                f"column {name!r} has {nulls} nulls ({nulls / len(df):.1%}; "
                f"at most {max_null_fraction:.1%} allowed)"
            )
        if col.dtype.kind == "f" and np.isinf(col.to_numpy()).any():
            problems.append(f"column {name!r} has infinite values")

    for name, bounds in (ranges or {}).items():
        if name not in df.columns:
            problems.append(f"range given for missing column {name!r}")
            continue
        if isinstance(bounds, dict):
            lo, hi = bounds.get("min"), bounds.get("max")
        else:
            lo, hi = [*list(bounds), None, None][:2]
        values = pd.to_numeric(df[name], errors="coerce")
        low = values < lo if lo is not None else pd.Series(False, index=df.index)
        high = values > hi if hi is not None else pd.Series(False, index=df.index)
        bad = int((low | high).sum())
        if bad:
            observed = f"observed [{values.min():g}, {values.max():g}]"
            lo_s = "-inf" if lo is None else f"{lo:g}"
            hi_s = "inf" if hi is None else f"{hi:g}"
            problems.append(
                f"column {name!r} has {bad} values outside [{lo_s}, {hi_s}] ({observed})"
            )

    if problems:
        message = "data validation failed: " + "; ".join(problems)
        failure_file = os.environ.get("MLOPS_PIPELINE_FAILURE_FILE")
        if failure_file:
            with open(failure_file, "w") as f:
                json.dump({"reason": "ValidationFailed", "message": message}, f)
        raise ValueError(message)

    summary = f"{len(df)} rows, {len(df.columns)} columns: valid"
    print(summary)
    return summary


@component
def train_model(
    data: Input[Dataset],
    label_column: str,
    task: str,
    model_type: str,
    test_size: float,
    seed: int,
    c: float,
    max_iter: int,
    n_estimators: int,
    max_depth: int,
    model: Output[Model],
    train_data: Output[Dataset],
    test_data: Output[Dataset],
) -> None:
    """Split (seeded, stratified for classification) and fit a scikit-learn pipeline.

    ``model_type``: ``linear`` (logistic regression with ``C=c`` / ridge with
    ``alpha=1/c``), ``random_forest`` or ``gradient_boosting`` (``n_estimators``,
    ``max_depth``; 0 = the estimator's default). Numeric features are median-imputed and
    scaled, other features most-frequent-imputed and one-hot encoded, so the saved model takes
    the raw table.
    """
    import joblib
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = pd.read_parquet(data.path)
    x = df.drop(columns=[label_column])
    y = df[label_column]
    classify = task == "classification"
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y if classify else None
    )

    depth = max_depth if max_depth > 0 else None
    estimators = {
        ("classification", "linear"): lambda: LogisticRegression(
            C=c, max_iter=max_iter, random_state=seed
        ),
        ("regression", "linear"): lambda: Ridge(alpha=1.0 / c, random_state=seed),
        ("classification", "random_forest"): lambda: RandomForestClassifier(
            n_estimators=n_estimators, max_depth=depth, random_state=seed, n_jobs=1
        ),
        ("regression", "random_forest"): lambda: RandomForestRegressor(
            n_estimators=n_estimators, max_depth=depth, random_state=seed, n_jobs=1
        ),
        ("classification", "gradient_boosting"): lambda: GradientBoostingClassifier(
            n_estimators=n_estimators, max_depth=depth or 3, random_state=seed
        ),
        ("regression", "gradient_boosting"): lambda: GradientBoostingRegressor(
            n_estimators=n_estimators, max_depth=depth or 3, random_state=seed
        ),
    }
    make = estimators.get((task, model_type))
    if make is None:
        raise ValueError(
            f"unknown model_type {model_type!r} for task {task!r}: "
            "use linear, random_forest or gradient_boosting"
        )

    numeric = [str(n) for n in x.columns if x[n].dtype.kind in "biuf"]
    other = [str(n) for n in x.columns if x[n].dtype.kind not in "biuf"]
    prep = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                numeric,
            ),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("encode", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                other,
            ),
        ]
    )
    pipeline = Pipeline([("prepare", prep), ("estimator", make())])
    pipeline.fit(x_train, y_train)

    joblib.dump(pipeline, model.path)
    model.metadata.update({"task": task, "model_type": model_type, "framework": "scikit-learn"})
    pd.concat([x_train, y_train], axis=1).to_parquet(train_data.path, index=False)
    pd.concat([x_test, y_test], axis=1).to_parquet(test_data.path, index=False)
    print(f"trained {model_type} on {len(x_train)} rows; {len(x_test)} rows held out")


@component
def evaluate_model(
    model: Input[Model],
    test_data: Input[Dataset],
    label_column: str,
    task: str,
    scores: Output[Metrics],
) -> dict:  # type: ignore[type-arg]
    """Metrics on the held-out split: accuracy, f1, precision, recall and roc_auc for
    classification (macro averages when there are more than two classes), rmse, mae and r2
    for regression."""
    import math

    import joblib
    import numpy as np
    import pandas as pd
    from sklearn import metrics as m

    est = joblib.load(model.path)
    df = pd.read_parquet(test_data.path)
    x = df.drop(columns=[label_column])
    y = df[label_column]
    pred = est.predict(x)
    result: dict[str, float] = {}
    if task == "classification":
        binary = y.nunique() <= 2
        average = "binary" if binary else "macro"
        result["accuracy"] = m.accuracy_score(y, pred)
        result["f1"] = m.f1_score(y, pred, average=average)
        result["precision"] = m.precision_score(y, pred, average=average, zero_division=0)
        result["recall"] = m.recall_score(y, pred, average=average, zero_division=0)
        if hasattr(est, "predict_proba"):
            proba = est.predict_proba(x)
            try:
                if binary:
                    result["roc_auc"] = m.roc_auc_score(y, proba[:, 1])
                else:
                    result["roc_auc"] = m.roc_auc_score(
                        y, proba, multi_class="ovr", average="macro", labels=est.classes_
                    )
            except ValueError as e:  # e.g. a class absent from the held-out split
                print(f"roc_auc not computed: {e}")
    else:
        result["rmse"] = math.sqrt(m.mean_squared_error(y, pred))
        result["mae"] = m.mean_absolute_error(y, pred)
        result["r2"] = m.r2_score(y, pred)

    result = {k: float(v) for k, v in result.items() if np.isfinite(v)}
    for name, value in result.items():
        scores.log_metric(name, value)
    print(f"metrics on {len(df)} held-out rows: {result}")
    return result


@component
def register_model(
    model: Input[Model],
    train_data: Input[Dataset],
    metrics: dict,  # type: ignore[type-arg]
    label_column: str,
    mlflow_tracking_uri: str,
    model_name: str,
    experiment: str,
    retrainjob: str,
    data_uri: str,
    data_sha256: str,
    data_transform: str,
    data_repo: str,
    data_rev: str,
    pipeline_name: str,
    code_version: str,
) -> NamedTuple("RegisterOutputs", [("version", str), ("metrics", dict)]):  # type: ignore[valid-type]
    """Register the model as a new version of ``model_name``, once per RetrainJob.

    Idempotent: a version already tagged ``mlops.dev/retrainjob = <retrainjob>`` is reused
    (with the metrics it was registered with), so a retried or restarted run never registers
    a second version. The version is created with all its tags in one request, so no version
    can exist without the tag that makes the retry find it. Never touches an alias.
    """
    import joblib
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    import skops.io
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    from mlops_operator import contract
    from mlops_operator.baselines import log_baseline
    from mlops_operator.datasets import dataset_source
    from mlops_operator.profiles import compute_profile

    rtj_tag, metric = contract.TAG_RETRAINJOB, contract.TAG_METRIC_PREFIX
    # both values are quoted into the registry's filter language below
    if retrainjob.count("/") != 2 or "'" in retrainjob:
        raise ValueError(f"retrainjob must be 'namespace/name/uid', got {retrainjob!r}")
    if not model_name or "'" in model_name:
        raise ValueError(f"model_name must be a registered model name, got {model_name!r}")

    mlflow.set_tracking_uri(mlflow_tracking_uri)
    mlflow.set_registry_uri(mlflow_tracking_uri)
    client = MlflowClient(tracking_uri=mlflow_tracking_uri, registry_uri=mlflow_tracking_uri)

    def metrics_of(tags: dict) -> dict:  # type: ignore[type-arg]
        return {k[len(metric) :]: float(v) for k, v in tags.items() if k.startswith(metric)}

    existing = client.search_model_versions(
        f"name = '{model_name}' and tags.`{rtj_tag}` = '{retrainjob}'"
    )
    if existing:
        found = min(existing, key=lambda v: int(v.version))
        print(f"{model_name} version {found.version} is already registered by {retrainjob}")
        return (str(found.version), metrics_of(found.tags) or metrics)

    train = pd.read_parquet(train_data.path)
    x = train.drop(columns=[label_column])
    est = joblib.load(model.path)
    predictions = est.predict(x)

    lineage = {
        rtj_tag: retrainjob,
        contract.TAG_DATA_URI: data_uri,
        contract.TAG_DATA_SHA256: data_sha256,
        contract.TAG_PIPELINE: pipeline_name,
        contract.TAG_CODE_VERSION: code_version,
    }
    if data_transform:
        lineage[contract.TAG_DATA_TRANSFORM] = data_transform
    if data_repo:
        lineage[contract.TAG_DATA_REPO] = data_repo
        lineage[contract.TAG_DATA_REV] = data_rev
    version_tags = {**lineage, **{f"{metric}{k}": repr(float(v)) for k, v in metrics.items()}}

    mlflow.set_experiment(experiment or model_name)
    namespace_name = "/".join(retrainjob.split("/")[:2])
    with mlflow.start_run(run_name=f"{pipeline_name} {namespace_name}", tags=lineage):
        params = est.named_steps["estimator"].get_params()
        plain = (int, float, str, bool, type(None))
        mlflow.log_params({k: v for k, v in params.items() if isinstance(v, plain)})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        # the training table as MLflow records inputs (name, digest, source, schema)
        table = from_pandas(
            train, source=dataset_source(data_uri), targets=label_column, name="train"
        )
        mlflow.log_input(table, context="training")
        info = mlflow.sklearn.log_model(
            est,
            name="model",
            signature=infer_signature(x, predictions),
            input_example=x.head(5),
            # naming the requirements skips ~7 s of inference; exact pins make serving match
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"pandas=={pd.__version__}",
                *mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            ],
            # skops (MLflow's safe default format) refuses types it does not know, such as
            # numpy.dtype inside the imputers; this step built the model, so it vouches for
            # exactly the types the model holds and MLflow records them with it
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(est)),
        )
        # the baseline lands beside MLmodel before the version exists, so no version is
        # ever visible without it
        log_baseline(compute_profile(x, predictions=predictions), info.model_id, client=client)
        version = mlflow.register_model(info.model_uri, model_name, tags=version_tags)
    print(f"registered {model_name} version {version.version} for {retrainjob}")
    return (str(version.version), {k: float(v) for k, v in metrics.items()})


@component
def check_model(
    model_name: str,
    version: str,
    test_data: Input[Dataset],
    label_column: str,
    task: str,
    mlflow_tracking_uri: str,
    checks: dict,  # type: ignore[type-arg]
) -> str:
    """Measure the registered version for the RetrainJob's ``spec.promotion.checks``.

    ``checks`` is what the operator passes (the checks but floor, plus ``metric`` and
    ``alias``; ``{}``: nothing to measure, the step ends at once). The version is loaded
    through the serving runtime's own loader and request path and measured on the held-out
    rows (``mlops_operator.modelchecks``); the report goes to the version tag
    ``mlops.dev/checks``, to ``checks/report.json`` beside the model and, as ``check.*``
    metrics, to the version's run. A failed check never fails the run: the operator's gate
    reads the report and decides. Returns the report as JSON.
    """
    import json

    if not checks:
        print("no checks to measure")
        return "{}"

    import pandas as pd

    from mlops_operator.modelchecks.report import check_version

    data = pd.read_parquet(test_data.path)
    print(f"checking {model_name} version {version} on {len(data)} held-out rows: {checks}")
    report = check_version(
        mlflow_tracking_uri, model_name, version, data, label_column, task, checks
    )
    return json.dumps(report, sort_keys=True)


@dsl.pipeline(
    name=PIPELINE_NAME,
    description=(
        "Train a scikit-learn model on tabular data and register it in MLflow with its "
        "metrics, drift baseline and lineage tags. Never moves an alias."
    ),
)
def tabular_train(
    model_name: str,
    retrainjob: str,
    mlflow_tracking_uri: str,
    data_uri: str,
    label_column: str = "target",
    task: str = "classification",
    model_type: str = "linear",
    c: float = 1.0,
    max_iter: int = 1000,
    n_estimators: int = 100,
    max_depth: int = 0,
    test_size: float = 0.25,
    seed: int = 42,
    columns: dict = {},  # type: ignore[type-arg]  # noqa: B006 - kfp needs a literal default
    ranges: dict = {},  # type: ignore[type-arg]  # noqa: B006
    max_null_fraction: float = 0.0,
    min_rows: int = 20,
    sample_fraction: float = 1.0,
    label_noise: float = 0.0,
    shift_scale: float = 0.0,
    experiment: str = "",
    code_version: str = CODE_VERSION,
    checks: dict = {},  # type: ignore[type-arg]  # noqa: B006
) -> PipelineOutputs:
    """Train on tabular data and register the model in MLflow; outputs its version and metrics.

    Args:
        model_name: MLflow registered model that receives the new version.
        retrainjob: namespace/name/uid of the RetrainJob; at most one version per value.
        mlflow_tracking_uri: MLflow tracking and registry server.
        data_uri: CSV/Parquet path or file:// URI, dvc://<path>?repo=<url-or-dir>&rev=<rev>,
            or sklearn:breast_cancer|wine|iris|diabetes.
        label_column: Column to predict; every other column is a feature.
        task: classification or regression.
        model_type: linear (logistic regression / ridge), random_forest or gradient_boosting.
        c: Inverse regularization strength of the linear models (ridge uses alpha = 1/c).
        max_iter: Iteration limit of logistic regression.
        n_estimators: Trees of random_forest and gradient_boosting.
        max_depth: Tree depth; 0 = the estimator's default.
        test_size: Share of rows held out for evaluation.
        seed: Seed of the split, the estimators and the data shifts.
        columns: Expected schema, column -> int|float|numeric|bool|string; {} = not checked.
        ranges: Allowed ranges, column -> [min, max] (null = open), inclusive.
        max_null_fraction: Largest share of nulls allowed in a feature column.
        min_rows: Fewest rows accepted.
        sample_fraction: Demo shift: keep this share of the rows.
        label_noise: Demo shift: share of labels replaced (noise in std for regression).
        shift_scale: Demo shift: standard deviations added to every numeric feature (drift).
        experiment: MLflow experiment of the training run; empty = model_name.
        code_version: Recorded as mlops.dev/code-version; defaults to the project version.
        checks: What the check step measures (the operator sets it from
            spec.promotion.checks); {} = nothing.
    """
    load = load_data(
        data_uri=data_uri,
        label_column=label_column,
        task=task,
        seed=seed,
        sample_fraction=sample_fraction,
        label_noise=label_noise,
        shift_scale=shift_scale,
    )
    # the file behind data_uri may change while the URI does not: never reuse a cached load
    load.set_caching_options(False)
    check = validate_data(
        data=load.outputs["data"],
        label_column=label_column,
        task=task,
        columns=columns,
        ranges=ranges,
        max_null_fraction=max_null_fraction,
        min_rows=min_rows,
    )
    train = train_model(
        data=load.outputs["data"],
        label_column=label_column,
        task=task,
        model_type=model_type,
        test_size=test_size,
        seed=seed,
        c=c,
        max_iter=max_iter,
        n_estimators=n_estimators,
        max_depth=max_depth,
    ).after(check)
    evaluate = evaluate_model(
        model=train.outputs["model"],
        test_data=train.outputs["test_data"],
        label_column=label_column,
        task=task,
    )
    register = register_model(
        model=train.outputs["model"],
        train_data=train.outputs["train_data"],
        metrics=evaluate.outputs["Output"],
        label_column=label_column,
        mlflow_tracking_uri=mlflow_tracking_uri,
        model_name=model_name,
        experiment=experiment,
        retrainjob=retrainjob,
        data_uri=data_uri,
        data_sha256=load.outputs["sha256"],
        data_transform=load.outputs["transform"],
        data_repo=load.outputs["repo"],
        data_rev=load.outputs["rev"],
        pipeline_name=PIPELINE_NAME,
        code_version=code_version,
    )
    # a cached registration would skip the registry lookup that makes retries safe
    register.set_caching_options(False)
    measured = check_model(
        model_name=model_name,
        version=register.outputs["version"],
        test_data=train.outputs["test_data"],
        label_column=label_column,
        task=task,
        mlflow_tracking_uri=mlflow_tracking_uri,
        checks=checks,
    )
    # the report describes the version as it is in the registry now
    measured.set_caching_options(False)
    return PipelineOutputs(register.outputs["version"], register.outputs["metrics"])
