"""PURE: the arithmetic of the checks, on predictions and frames (no model, no MLflow)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# out-of-range values: this many feature ranges below the minimum and above the maximum
FAR = 10.0
# a regressor's prediction "changes" under noise when it moves by more than this share of the
# predictions' standard deviation
REGRESSION_CHANGE = 0.1
# the tag stays well within MLflow's 100,000 characters for registry tags
MAX_SLICE_ITEMS = 64


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank q-th percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float], batch_size: int) -> dict[str, Any]:
    ms = [s * 1000.0 for s in seconds]
    return {
        "batchSize": batch_size,
        "requests": len(ms),
        "p50Ms": round(percentile(ms, 50), 3),
        "p99Ms": round(percentile(ms, 99), 3),
        "maxMs": round(max(ms), 3),
    }


def changed_share(before: Any, after: Any, task: str) -> float:
    """Share of predictions that differ: another class, or (regression) a value moved by more
    than REGRESSION_CHANGE of the predictions' spread."""
    a, b = np.asarray(before).ravel(), np.asarray(after).ravel()
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"{len(a)} predictions before the noise, {len(b)} after")
    if task == "classification":
        return float(np.mean(a != b))
    spread = float(np.std(a.astype(float)))
    tolerance = REGRESSION_CHANGE * spread if spread > 0 else 1e-9
    return float(np.mean(np.abs(a.astype(float) - b.astype(float)) > tolerance))


def far_values(lo: float, hi: float) -> tuple[float, float]:
    """Values far outside [lo, hi] on either side."""
    span = max(hi - lo, abs(lo), abs(hi), 1.0)
    return lo - FAR * span, hi + FAR * span


def noised(
    frame: pd.DataFrame, scale: float, seed: int, spreads: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """The frame with Gaussian noise of `scale` x each numeric column's std: the training
    data's (`spreads`) where known, else the frame's own (integer columns stay integers: the
    signature says so)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for name in frame.columns:
        col = frame[name]
        kind = col.dtype.kind
        if kind not in "iuf":
            continue
        known = (spreads or {}).get(name)
        std = known if known is not None else (float(col.std()) if len(col) > 1 else 0.0)
        if not std > 0:
            continue
        moved = col + rng.normal(0.0, scale * std, len(col))
        out[name] = moved.round().astype(col.dtype) if kind in "iu" else moved
    return out


def metric_value(metric: str, y_true: Any, y_pred: Any, task: str) -> float:
    """The promotion metric from labels and predictions, as the pipeline's evaluate step
    computes it (binary, or macro averages over more classes). Scores such as roc_auc need
    probabilities, which a prediction request does not return."""
    from sklearn import metrics as m

    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if task == "classification":
        labels = sorted(set(t.tolist()) | set(p.tolist()), key=str)
        binary = len(labels) <= 2
        pos = labels[-1] if labels else 1
        kw: dict[str, Any] = (
            {"average": "binary", "pos_label": pos} if binary else {"average": "macro"}
        )
        fns: dict[str, Callable[[], float]] = {
            "accuracy": lambda: float(m.accuracy_score(t, p)),
            "f1": lambda: float(m.f1_score(t, p, zero_division=0, **kw)),
            "precision": lambda: float(m.precision_score(t, p, zero_division=0, **kw)),
            "recall": lambda: float(m.recall_score(t, p, zero_division=0, **kw)),
        }
    else:
        tf, pf = t.astype(float), p.astype(float)
        fns = {
            "rmse": lambda: math.sqrt(float(m.mean_squared_error(tf, pf))),
            "mae": lambda: float(m.mean_absolute_error(tf, pf)),
            "r2": lambda: float(m.r2_score(tf, pf)),
        }
    fn = fns.get(metric)
    if fn is None:
        raise ValueError(
            f"{metric!r} cannot be computed from predictions for {task}; one of {sorted(fns)}"
        )
    return fn()


def slice_masks(column: pd.Series, bins: Sequence[float] | None) -> list[tuple[str, Any]]:
    """(label, row mask) of each slice: each value, or each bin (lo, hi] of `bins`."""
    if bins:
        values = pd.to_numeric(column, errors="coerce")
        out = []
        for lo, hi in itertools.pairwise(bins):
            mask = ((values > lo) & (values <= hi)).to_numpy()
            out.append((f"({lo:g}, {hi:g}]", mask))
        return out
    return [(str(v), (column == v).to_numpy()) for v in sorted(column.dropna().unique(), key=str)]


def slices_report(
    frame: pd.DataFrame,
    y_true: Any,
    y_pred: Any,
    task: str,
    metric: str,
    columns: Sequence[Mapping[str, Any]],
    min_size: int,
) -> dict[str, Any]:
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    items: list[dict[str, Any]] = []
    for spec in columns:
        name = str(spec["name"])
        if name not in frame.columns:
            return {"error": f"slices: no column {name!r} in the held-out rows"}
        for label, mask in slice_masks(frame[name], spec.get("bins")):
            rows = int(mask.sum())
            if rows == 0:
                continue
            item: dict[str, Any] = {"column": name, "slice": label, "rows": rows}
            item["value"] = round(metric_value(metric, t[mask], p[mask], task), 6)
            item["judged"] = rows >= min_size
            items.append(item)
    if len(items) > MAX_SLICE_ITEMS:  # the judged ones first, then the largest
        items = sorted(items, key=lambda i: (not i["judged"], -i["rows"]))[:MAX_SLICE_ITEMS]
    return {"minSize": min_size, "items": items}


def fairness_report(y_true: Any, y_pred: Any, sensitive: pd.Series) -> dict[str, Any]:
    """fairlearn's demographic parity and equalized odds differences of a binary classifier
    (the positive class: the greater of the two labels)."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    labels = sorted(set(t.tolist()) | set(p.tolist()), key=str)
    if len(labels) > 2:
        return {"error": f"fairness needs a binary classifier; the labels are {labels[:10]}"}
    pos = labels[-1]
    t01, p01 = (t == pos).astype(int), (p == pos).astype(int)
    groups = sensitive.astype(str).to_numpy()
    return {
        "column": str(sensitive.name),
        "groups": len(set(groups.tolist())),
        "demographicParityDifference": round(
            float(demographic_parity_difference(t01, p01, sensitive_features=groups)), 6
        ),
        "equalizedOddsDifference": round(
            float(equalized_odds_difference(t01, p01, sensitive_features=groups)), 6
        ),
    }


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str
    required: bool = True


def signature_changes(old: Sequence[InputSpec], new: Sequence[InputSpec]) -> list[str]:
    """What breaks a caller of the old inputs: a removed or retyped input, or a new required
    one (a rename is both a removal and a new input)."""
    before, after = {i.name: i for i in old}, {i.name: i for i in new}
    changes = [f"input {n!r} removed" for n in before if n not in after]
    changes += [
        f"input {n!r} retyped {before[n].type} -> {after[n].type}"
        for n in before
        if n in after and before[n].type != after[n].type
    ]
    changes += [f"new required input {n!r}" for n in after if n not in before and after[n].required]
    return changes


def inputs_of(signature: Any) -> list[InputSpec] | None:
    """The inputs of an MLflow ModelSignature (None: the model has none)."""
    if signature is None or signature.inputs is None:
        return None
    out = []
    for i, spec in enumerate(signature.inputs.inputs):
        d = spec.to_dict()
        name = d.get("name") or f"#{i}"
        kind = str(d.get("type"))
        if kind == "tensor":
            kind = f"tensor {d.get('tensor-spec', {}).get('dtype')} {d.get('tensor-spec', {})}"
        out.append(InputSpec(str(name), kind, bool(d.get("required", True))))
    return out


def training_ranges(baseline: Any) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """(min, max) and std of each numeric feature of the training data, from the version's drift
    baseline (profiles.Profile; None: none known)."""
    from mlops_operator.profiles import NumericProfile

    ranges: dict[str, tuple[float, float]] = {}
    spreads: dict[str, float] = {}
    for name, p in (baseline.features if baseline is not None else {}).items():
        if not isinstance(p, NumericProfile):
            continue
        if p.min is not None and p.max is not None:
            ranges[name] = (p.min, p.max)
        if p.std is not None:
            spreads[name] = p.std
    return ranges, spreads
