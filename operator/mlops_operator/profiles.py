"""Feature profiles and PSI: the one definition of "a feature's distribution".

The training pipeline computes a :class:`Profile` of the training data (and of the model's
predictions on it) and logs it as the artifact ``drift/baseline.json`` of the model version;
the runtime inside model pods loads that file from the same version and bins its live window
with the *same* :meth:`FeatureProfile.bin_indices`, so training and serving cannot disagree
about bins, categories or missing values.

    profile = compute_profile(train_df, predictions=model.predict(train_df))
    info = mlflow.sklearn.log_model(model, name="model", ...)
    log_baseline(profile, info.model_id)                  # baselines.py: the MLflow half

    baseline = load_baseline("models:/fraud-detector/7")  # None when the version has none
    per_feature = psi.psi(baseline, live_df)              # {"amount": 0.03, ...}

Profiles
    numeric columns (int, float, bool)   a histogram over fixed bin edges taken from the
                                         training quantiles (right-closed bins, open at both
                                         ends), plus a bin for missing values
    everything else                      the frequencies of the most common categories (as
                                         strings), plus "other" (unseen or rare) and missing

PSI against a profile, and the bands it is read in, are in psi.py.

This module needs only numpy and pandas; reading and writing a version's baseline in MLflow is
baselines.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

FORMAT = "mlops.dev/feature-profile/v1"
BASELINE_ARTIFACT = "drift/baseline.json"
DEFAULT_BINS = 10
DEFAULT_MAX_CATEGORIES = 50
PREDICTION_COLUMN = "prediction"

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
