"""Feature profiles and PSI: the one definition of "a feature's distribution".

The training pipeline computes a :class:`Profile` of the training data (and of the model's
predictions on it) and logs it as the artifact ``drift/baseline.json`` of the model version;
the runtime inside model pods loads that file from the same version and bins its live window
with the *same* :meth:`FeatureProfile.bin_indices`, so training and serving cannot disagree
about bins, categories or missing values.

    profile = compute_profile(train_df, predictions=model.predict(train_df))
    info = mlflow.sklearn.log_model(model, name="model", ...)
    log_baseline(profile, info.model_id)                  # or "models:/<name>/<version>"

    baseline = load_baseline("models:/fraud-detector/7")  # None when the version has none
    per_feature = psi(baseline, live_df)                  # {"amount": 0.03, ...}
    overall = overall_psi(per_feature)                    # the largest feature PSI

Profiles
    numeric columns (int, float, bool)   a histogram over fixed bin edges taken from the
                                         training quantiles (right-closed bins, open at both
                                         ends), plus a bin for missing values
    everything else                      the frequencies of the most common categories (as
                                         strings), plus "other" (unseen or rare) and missing

PSI = sum((a - e) * ln(a / e)) over the bins, with both fractions floored at ``EPSILON`` so an
empty bin does not make it infinite. Bands as commonly used: < 0.1 stable, 0.1-0.25 moderate,
> 0.25 significant (:func:`band`).

The overall PSI of a window is the *largest* feature PSI (:func:`overall_psi`): drift in any
one input is drift, and a mean would hide one broken feature among many (a single feature at
PSI 2.0 among 30 stable ones averages to 0.07, "stable"). The price is some sensitivity to the
number of features under pure sampling noise, which the runtime keeps small by exporting PSI
only once its window holds enough rows.

This module needs only numpy and pandas; MLflow is imported inside the two artifact helpers.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

FORMAT = "mlops.dev/feature-profile/v1"
BASELINE_ARTIFACT = "drift/baseline.json"
EPSILON = 1e-4
DEFAULT_BINS = 10
DEFAULT_MAX_CATEGORIES = 50
PREDICTION_COLUMN = "prediction"

STABLE = 0.1
SIGNIFICANT = 0.25

Band = Literal["stable", "moderate", "significant"]
BinIndices = npt.NDArray[np.intp]


class ProfileError(ValueError):
    """A profile document that cannot be read (wrong format, inconsistent lengths)."""


@dataclass(frozen=True)
class NumericProfile:
    """Histogram of a numeric feature.

    ``edges`` are the interior cut points, strictly increasing; value ``v`` falls in bin ``i``
    when ``edges[i-1] < v <= edges[i]`` (bin 0 is ``v <= edges[0]``, the last value bin is
    ``v > edges[-1]``). ``fractions`` has ``len(edges) + 1`` entries for the value bins;
    ``missing`` is the fraction of missing (NaN/None) values. All fractions sum to 1.
    """

    edges: tuple[float, ...]
    fractions: tuple[float, ...]
    missing: float
    count: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    kind: Literal["numeric"] = field(default="numeric", init=False)

    @property
    def n_bins(self) -> int:
        """Number of bins including the missing bin (the length of :meth:`expected`)."""
        return len(self.edges) + 2

    def expected(self) -> npt.NDArray[np.float64]:
        return np.array([*self.fractions, self.missing], dtype=np.float64)

    def bin_indices(self, values: Iterable[Any]) -> BinIndices:
        """Bin index of every value; the last index (``n_bins - 1``) means missing.

        Values that are not numbers count as missing rather than raising: a profile describes
        data, it does not validate it (the model signature does that).
        """
        x = _as_float(values)
        idx = np.searchsorted(self._edges, x, side="left")
        idx[np.isnan(x)] = self.n_bins - 1
        return idx.astype(np.intp, copy=False)

    @cached_property
    def _edges(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.edges, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "edges": list(self.edges),
            "fractions": list(self.fractions),
            "missing": self.missing,
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }


@dataclass(frozen=True)
class CategoricalProfile:
    """Frequencies of a categorical feature's most common values (compared as strings).

    ``fractions[i]`` is the share of ``categories[i]``; ``other`` the share of values outside
    ``categories`` (rare at training time, or unseen); ``missing`` the share of missing values.
    """

    categories: tuple[str, ...]
    fractions: tuple[float, ...]
    other: float
    missing: float
    count: int
    kind: Literal["categorical"] = field(default="categorical", init=False)

    @property
    def n_bins(self) -> int:
        return len(self.categories) + 2

    def expected(self) -> npt.NDArray[np.float64]:
        return np.array([*self.fractions, self.other, self.missing], dtype=np.float64)

    def bin_indices(self, values: Iterable[Any]) -> BinIndices:
        """Bin index of every value: a category's position, then "other", then missing."""
        s = _as_series(values)
        missing = s.isna().to_numpy()
        idx = pd.Index(self.categories, dtype=object).get_indexer(s.astype(object).map(str))
        idx = np.where(idx < 0, len(self.categories), idx)
        idx[missing] = len(self.categories) + 1
        return idx.astype(np.intp, copy=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "categories": list(self.categories),
            "fractions": list(self.fractions),
            "other": self.other,
            "missing": self.missing,
            "count": self.count,
        }


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class Profile:
    """Profiles of a table's features and, optionally, of the model's predictions on it.

    Serialised by :meth:`to_json` as the ``drift/baseline.json`` document; keys keep the
    column order of the data it was computed from.
    """

    features: dict[str, FeatureProfile]
    predictions: dict[str, FeatureProfile] = field(default_factory=dict)
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "features": {k: v.to_dict() for k, v in self.features.items()},
            "predictions": {k: v.to_dict() for k, v in self.predictions.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Profile:
        if doc.get("format") != FORMAT:
            raise ProfileError(f"not a feature profile: format is {doc.get('format')!r}")
        try:
            features = {str(k): _feature_from_dict(v) for k, v in doc["features"].items()}
            preds = {str(k): _feature_from_dict(v) for k, v in doc.get("predictions", {}).items()}
            return cls(features, preds, int(doc.get("rows", 0)))
        except (KeyError, TypeError, ValueError) as e:
            raise ProfileError(f"malformed feature profile: {e!r}") from e

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise ProfileError(f"feature profile is not JSON: {e}") from e
        if not isinstance(doc, dict):
            raise ProfileError("feature profile is not a JSON object")
        return cls.from_dict(doc)


def compute_profile(
    data: pd.DataFrame,
    *,
    predictions: Any = None,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> Profile:
    """Profile every column of ``data`` (and the model's ``predictions`` on it, if given).

    ``predictions`` is whatever the model returned (array, Series, DataFrame, list); see
    :func:`prediction_frame` for how it is turned into named columns. ``bins`` is the number of
    quantile bins for numeric columns (fewer when values repeat); ``max_categories`` caps the
    categories kept per categorical column, the rest count as "other".
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    features = {str(c): profile_column(data[c], bins, max_categories) for c in data.columns}
    preds: dict[str, FeatureProfile] = {}
    if predictions is not None:
        frame = prediction_frame(predictions)
        preds = {str(c): profile_column(frame[c], bins, max_categories) for c in frame.columns}
    return Profile(features, preds, len(data))


def profile_column(values: pd.Series, bins: int, max_categories: int) -> FeatureProfile:
    """The profile of one column: a histogram if it is numeric, frequencies otherwise."""
    if is_numeric(values):
        return _numeric_profile(values, bins)
    return _categorical_profile(values, max_categories)


def is_numeric(values: pd.Series) -> bool:
    """Whether a column is profiled as a histogram (ints, floats, booleans)."""
    return values.dtype.kind in "biuf"


def prediction_frame(predictions: Any) -> pd.DataFrame:
    """Model output as a DataFrame with named columns, the same way at training and serving.

    A 1-D array, list or unnamed Series becomes the column ``prediction``; a 2-D array the
    columns ``prediction_0`` ...; a DataFrame keeps its columns; a named Series its name.
    """
    if isinstance(predictions, pd.DataFrame):
        return predictions
    if isinstance(predictions, pd.Series):
        name = PREDICTION_COLUMN if predictions.name is None else str(predictions.name)
        return predictions.to_frame(name)
    arr = np.asarray(predictions)
    if arr.ndim <= 1:
        return pd.DataFrame({PREDICTION_COLUMN: arr.reshape(-1)})
    arr = arr.reshape(arr.shape[0], -1)
    return pd.DataFrame(arr, columns=[f"{PREDICTION_COLUMN}_{i}" for i in range(arr.shape[1])])


def psi_from_counts(feature: FeatureProfile, counts: npt.ArrayLike) -> float:
    """PSI of a window, given the count of its values in each of ``feature``'s bins."""
    c = np.asarray(counts, dtype=np.float64)
    if c.shape != (feature.n_bins,):
        raise ValueError(f"expected {feature.n_bins} bin counts, got shape {c.shape}")
    total = c.sum()
    if total <= 0:
        return 0.0
    return psi_from_fractions(feature.expected(), c / total)


def psi_from_fractions(expected: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Population stability index of two distributions over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_psi(feature: FeatureProfile, values: Iterable[Any]) -> float:
    """PSI of one feature's live values against its baseline profile."""
    counts = np.bincount(feature.bin_indices(values), minlength=feature.n_bins)
    return psi_from_counts(feature, counts)


def psi(baseline: Profile, window: pd.DataFrame) -> dict[str, float]:
    """PSI of every baseline feature present in ``window`` (missing columns are skipped)."""
    return {
        name: feature_psi(prof, window[name])
        for name, prof in baseline.features.items()
        if name in window.columns
    }


def prediction_psi(baseline: Profile, predictions: Any) -> dict[str, float]:
    """PSI of the model's live output against the baseline's prediction profile."""
    frame = prediction_frame(predictions)
    return {
        name: feature_psi(prof, frame[name])
        for name, prof in baseline.predictions.items()
        if name in frame.columns
    }


def overall_psi(per_feature: Mapping[str, float]) -> float:
    """The overall PSI: the largest per-feature PSI (0.0 for no features); see module doc."""
    return max(per_feature.values(), default=0.0)


def band(value: float) -> Band:
    """``stable`` below 0.1, ``moderate`` up to 0.25, ``significant`` above."""
    if value < STABLE:
        return "stable"
    return "moderate" if value <= SIGNIFICANT else "significant"


# --- MLflow artifact helpers ----------------------------------------------------------------


def log_baseline(profile: Profile, model: str, *, client: MlflowClient | None = None) -> str:
    """Write ``profile`` as ``drift/baseline.json`` into a logged model's artifacts.

    ``model`` names the model: a model id (``m-...``, e.g. ``ModelInfo.model_id`` from
    ``log_model``), ``models:/m-<id>``, or a registered version ``models:/<name>/<version>``.
    The file lands beside ``MLmodel``, so every registered version of that model serves it,
    and the runtime receives it with the model itself. Returns the artifact's URI.
    """
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    model_id = _resolve_model_id(model, client)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(BASELINE_ARTIFACT).name
        path.write_text(profile.to_json())
        client.log_model_artifact(model_id, str(path), str(Path(BASELINE_ARTIFACT).parent))
    return f"models:/{model_id}/{BASELINE_ARTIFACT}"


def load_baseline(
    source: str | os.PathLike[str], *, client: MlflowClient | None = None
) -> Profile | None:
    """The baseline profile of a model, or ``None`` when it has none.

    ``source`` is a local model directory (``<dir>/drift/baseline.json``), a registered
    version ``models:/<name>/<version>`` (or ``@alias``), or ``models:/m-<id>``. For a
    registered version the model's own artifacts are read first, then the artifacts of the run
    that produced it (for training code that logged the profile to the run).
    Raises :class:`ProfileError` if a file exists but is not a profile.
    """
    local = Path(os.fspath(source))
    if local.is_dir():
        file = local / BASELINE_ARTIFACT
        return Profile.from_json(file.read_bytes()) if file.is_file() else None

    from mlflow.tracking import MlflowClient

    uri = os.fspath(source)
    if not uri.startswith("models:/"):
        raise ValueError(f"cannot read a baseline from {uri!r}: not a directory or models:/ URI")
    client = client or MlflowClient()
    ref = uri[len("models:/") :].rstrip("/")
    candidates: list[str] = []
    if ref.startswith("m-") and "/" not in ref:
        # "models:/m-<id>/<path>" is read as a registered model called m-<id>: go by location
        location = client.get_logged_model(ref).artifact_location
        candidates.append(f"{location.rstrip('/')}/{BASELINE_ARTIFACT}")
    else:
        name, version = _registered_version(ref, client)
        candidates.append(
            f"{client.get_model_version_download_uri(name, version)}/{BASELINE_ARTIFACT}"
        )
        run_id = client.get_model_version(name, version).run_id
        if run_id:
            candidates.append(f"runs:/{run_id}/{BASELINE_ARTIFACT}")
    for artifact in candidates:
        text = _download_text(artifact)
        if text is not None:
            return Profile.from_json(text)
    return None


def _registered_version(ref: str, client: MlflowClient) -> tuple[str, str]:
    if "@" in ref:
        name, alias = ref.rsplit("@", 1)
        return name, str(client.get_model_version_by_alias(name, alias).version)
    name, sep, version = ref.rpartition("/")
    if not sep or not name or not version:
        raise ValueError(f"expected models:/<name>/<version> or models:/<name>@<alias>: {ref!r}")
    return name, version


def _resolve_model_id(model: str, client: MlflowClient) -> str:
    ref = model[len("models:/") :].rstrip("/") if model.startswith("models:/") else model
    if ref.startswith("m-") and "/" not in ref:
        return ref
    name, version = _registered_version(ref, client)
    mv = client.get_model_version(name, version)
    # the REST store does not always fill model_id; the source names the logged model too
    source = str(getattr(mv, "source", "") or "")
    model_id = getattr(mv, "model_id", None) or (
        source[len("models:/") :] if source.startswith("models:/m-") else None
    )
    if not model_id:
        raise ValueError(
            f"model version {name}/{version} has no logged model (source {source!r}); "
            "log the baseline to its run instead"
        )
    return str(model_id)


def _download_text(artifact_uri: str) -> str | None:
    """The artifact's text, or None when it does not exist (any other error propagates).

    Lists the parent directory first: downloading a missing file makes MLflow print the
    server's 404 at length, and its exception types differ between artifact stores.
    """
    import mlflow.artifacts

    parent, _, name = artifact_uri.rpartition("/")
    listed = mlflow.artifacts.list_artifacts(artifact_uri=parent)
    if not any(Path(f.path).name == name and not f.is_dir for f in listed):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=tmp)
        return Path(path).read_text()


# --- internals ------------------------------------------------------------------------------


def _as_series(values: Iterable[Any]) -> pd.Series:
    if isinstance(values, pd.Series):
        return values
    return pd.Series(values if isinstance(values, np.ndarray) else list(values), dtype=object)


def _as_float(values: Iterable[Any]) -> npt.NDArray[np.float64]:
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return np.asarray(values, dtype=np.float64)  # no copy when it is float64 already
    s = _as_series(values)
    if s.dtype.kind in "biuf":
        out: npt.NDArray[np.float64] = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return out
    # strings, None and other objects: whatever is not a number counts as missing
    num = pd.to_numeric(s.astype(object), errors="coerce")
    return np.asarray(num, dtype=np.float64)


def _numeric_profile(values: pd.Series, bins: int) -> NumericProfile:
    x = _as_float(values)
    present = x[~np.isnan(x)]
    count = len(x)
    if len(present):
        probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
        edges = np.unique(np.quantile(present, probs)) if len(probs) else np.array([])
        if not len(edges):  # one bin asked for: still split at the median so bins exist
            edges = np.array([float(np.median(present))])
    else:
        edges = np.array([0.0])
    proto = NumericProfile(tuple(float(e) for e in edges), (), 0.0, count)
    counts = np.bincount(proto.bin_indices(x), minlength=proto.n_bins)
    fractions = counts / count if count else np.zeros(proto.n_bins)
    return NumericProfile(
        edges=proto.edges,
        fractions=tuple(float(f) for f in fractions[:-1]),
        missing=float(fractions[-1]),
        count=count,
        mean=_finite(present.mean()) if len(present) else None,
        std=_finite(present.std()) if len(present) else None,
        min=_finite(present.min()) if len(present) else None,
        max=_finite(present.max()) if len(present) else None,
    )


def _categorical_profile(values: pd.Series, max_categories: int) -> CategoricalProfile:
    count = len(values)
    s = values.astype(object)
    present = s[s.notna()].map(str)
    top = present.value_counts(sort=True).iloc[:max_categories]
    cats = tuple(str(c) for c in top.index)
    proto = CategoricalProfile(cats, (), 0.0, 0.0, count)
    counts = np.bincount(proto.bin_indices(values), minlength=proto.n_bins)
    fractions = counts / count if count else np.zeros(proto.n_bins)
    return CategoricalProfile(
        categories=cats,
        fractions=tuple(float(f) for f in fractions[:-2]),
        other=float(fractions[-2]),
        missing=float(fractions[-1]),
        count=count,
    )


def _feature_from_dict(doc: Mapping[str, Any]) -> FeatureProfile:
    kind = doc.get("kind")
    if kind == "numeric":
        edges = tuple(float(e) for e in doc["edges"])
        fractions = tuple(float(f) for f in doc["fractions"])
        if len(fractions) != len(edges) + 1 or list(edges) != sorted(set(edges)):
            raise ValueError("numeric profile needs increasing edges and len(edges)+1 fractions")
        return NumericProfile(
            edges,
            fractions,
            float(doc.get("missing", 0.0)),
            int(doc.get("count", 0)),
            *(_opt_float(doc.get(k)) for k in ("mean", "std", "min", "max")),
        )
    if kind == "categorical":
        cats = tuple(str(c) for c in doc["categories"])
        fractions = tuple(float(f) for f in doc["fractions"])
        if len(fractions) != len(cats):
            raise ValueError("categorical profile needs one fraction per category")
        return CategoricalProfile(
            cats,
            fractions,
            float(doc.get("other", 0.0)),
            float(doc.get("missing", 0.0)),
            int(doc.get("count", 0)),
        )
    raise ValueError(f"unknown feature kind {kind!r}")


def _finite(v: Any) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)
