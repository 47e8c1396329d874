"""Requests to a loaded model through the runtime's own request path: what is refused here is
a 400 in the pods, what crashes here a 500."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_operator.modelchecks.arithmetic import far_values, latency_summary

if TYPE_CHECKING:
    from mlops_operator.runtime.model import LoadedModel

# latency: requests timed per batch size, at least and at most, and the time spent on each size
MIN_REQUESTS, MAX_REQUESTS, MAX_SECONDS, WARMUP = 5, 200, 5.0, 2
# robustness: the columns tried one at a time (two far values each, one null)
MAX_COLUMNS = 40


@dataclass(frozen=True)
class Outcome:
    kind: str  # answered | refused | crashed
    predictions: Any = None
    message: str = ""


class Scorer:
    """Requests to a loaded model the way the runtime serves them."""

    def __init__(self, model: LoadedModel, features: Sequence[str]) -> None:
        self.model = model
        self.features = list(features)

    def body(self, frame: pd.DataFrame) -> bytes:
        split = str(frame[self.features].to_json(orient="split", index=False))
        return b'{"dataframe_split":' + split.encode() + b"}"

    def request(self, frame: pd.DataFrame) -> Outcome:
        from mlops_operator.runtime import codec

        try:
            parsed = codec.parse_invocations(self.body(frame), self.model.schema)
            _, predictions = self.model.predict(parsed)
        except codec.BadRequest as e:
            return Outcome("refused", message=str(e)[:300])
        except Exception as e:  # a 500 in the pods
            return Outcome("crashed", message=f"{type(e).__name__}: {e}"[:300])
        return Outcome("answered", predictions=_flat(predictions))

    def predict(self, frame: pd.DataFrame) -> Any:
        """Predictions for every row; raises ValueError naming the first failed request."""
        parts = []
        for start in range(0, len(frame), 1000):
            out = self.request(frame.iloc[start : start + 1000])
            if out.kind != "answered":
                raise ValueError(f"the held-out rows were {out.kind}: {out.message}")
            parts.append(out.predictions)
        return np.concatenate(parts) if parts else np.array([])


def _flat(predictions: Any) -> Any:
    arr = predictions.to_numpy() if hasattr(predictions, "to_numpy") else np.asarray(predictions)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr


def time_both(scorer: Scorer, frame: pd.DataFrame, batch_size: int) -> dict[str, Any]:
    """Requests of batch_size rows (judged), and of single rows beside them when that differs."""
    out = time_requests(scorer, frame, batch_size)
    if batch_size > 1 and "error" not in out:
        out["single"] = time_requests(scorer, frame, 1)
    return out


def time_requests(scorer: Scorer, frame: pd.DataFrame, batch_size: int) -> dict[str, Any]:
    """Requests of batch_size held-out rows one after another: MIN..MAX_REQUESTS of them, for
    at most about MAX_SECONDS (after WARMUP untimed ones)."""
    n = len(frame)
    samples: list[float] = []
    failures: dict[str, int] = {}
    spent = 0.0
    i = 0
    while len(samples) < MAX_REQUESTS and (len(samples) < MIN_REQUESTS or spent < MAX_SECONDS):
        rows = frame.iloc[[(i * batch_size + k) % n for k in range(batch_size)]]
        start = time.perf_counter()
        out = scorer.request(rows)
        took = time.perf_counter() - start
        if i >= WARMUP:
            samples.append(took)
            spent += took
        if out.kind != "answered":
            failures[out.kind] = failures.get(out.kind, 0) + 1
            if sum(failures.values()) >= MIN_REQUESTS:
                return {"error": f"held-out requests were {out.kind}: {out.message}"}
        i += 1
    return latency_summary(samples, batch_size)


def _tally(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    out: dict[str, Any] = {"tried": len(outcomes)}
    for kind in ("answered", "refused", "crashed"):
        out[kind] = sum(1 for o in outcomes if o.kind == kind)
    crash = next((o for o in outcomes if o.kind == "crashed"), None)
    if crash is not None:
        out["firstCrash"] = crash.message
    return out


def out_of_range(
    scorer: Scorer, frame: pd.DataFrame, ranges: Mapping[str, tuple[float, float]] | None = None
) -> dict[str, Any]:
    """One request per numeric feature and side, with a value far outside the training range
    (`ranges`, where known; else the held-out rows' range)."""
    row = frame.iloc[[0]]
    tried = []
    numeric = [c for c in scorer.features if frame[c].dtype.kind in "iuf"][:MAX_COLUMNS]
    known = ranges or {}
    for name in numeric:
        col = frame[name]
        lo, hi = known.get(name) or (float(col.min()), float(col.max()))
        for value in far_values(lo, hi):
            probe = row.copy()
            probe[name] = round(value) if col.dtype.kind in "iu" else value
            tried.append(scorer.request(probe))
    out = _tally(tried)
    out["range"] = "training" if all(n in known for n in numeric) else "held-out"
    return out


def missing_values(scorer: Scorer, frame: pd.DataFrame) -> dict[str, Any]:
    row = frame.iloc[[0]]
    tried = []
    for name in scorer.features[:MAX_COLUMNS]:
        probe = row.astype({name: object})
        probe[name] = None
        tried.append(scorer.request(probe))
    return _tally(tried)
