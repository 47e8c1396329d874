"""PSI: how far a live window has drifted from a version's feature profile (profiles.py).

PSI = sum((a - e) * ln(a / e)) over the bins, with both fractions floored at ``EPSILON`` so an
empty bin does not make it infinite. Bands as commonly used: < 0.1 stable, 0.1-0.25 moderate,
> 0.25 significant (:func:`band`).

The overall PSI of a window is the *largest* feature PSI (:func:`overall_psi`): drift in any
one input is drift, and a mean would hide one broken feature among many (a single feature at
PSI 2.0 among 30 stable ones averages to 0.07, "stable"). The price is some sensitivity to the
number of features under pure sampling noise, which the runtime keeps small by exporting PSI
only once its window holds enough rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlops_operator.profiles import FeatureProfile, Profile, prediction_frame

EPSILON = 1e-4
STABLE = 0.1
SIGNIFICANT = 0.25

Band = Literal["stable", "moderate", "significant"]


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
