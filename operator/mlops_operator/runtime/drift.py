"""The drift window: recent inputs and predictions, binned with the baseline's own bins.

Requests pay almost nothing: ``observe`` appends a view of the scored rows to a queue (a few
microseconds), dropping the oldest entries once the queue alone would fill the window, so
memory stays bounded even if nobody scrapes. The work happens when Prometheus scrapes
(``snapshot``): queued rows are binned in one vectorised pass per feature, and only their
*bin indices* are kept, in a fixed-size ring (``window x features`` small integers). PSI needs
just the bin counts of the ring, so a scrape costs one binning pass over the rows that arrived
since the last scrape plus one ``bincount`` per feature; the result is cached until new rows
arrive.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlops_operator import profiles, psi


@dataclass(frozen=True)
class DriftSnapshot:
    rows: int
    features: dict[str, float]
    overall: float
    prediction: float | None


class _Ring:
    """Bin indices of the last ``size`` rows, one column per profiled feature."""

    def __init__(self, feats: Sequence[profiles.FeatureProfile], size: int) -> None:
        self.feats = list(feats)
        widest = max((f.n_bins for f in self.feats), default=1)
        dtype = np.int16 if widest < 2**15 else np.int32
        self.idx: npt.NDArray[np.integer[Any]] = np.zeros((size, len(self.feats)), dtype=dtype)
        self.size, self.pos, self.filled = size, 0, 0

    def add(self, values: npt.NDArray[Any]) -> None:
        """Bin ``values`` (rows x features, in profile order) and push them into the ring."""
        if len(values) > self.size:
            values = values[-self.size :]
        n = len(values)
        by_feature = np.ascontiguousarray(values.T)  # one contiguous row per feature
        binned = np.empty((n, len(self.feats)), dtype=self.idx.dtype)
        for j, f in enumerate(self.feats):
            binned[:, j] = f.bin_indices(by_feature[j])
        first = min(n, self.size - self.pos)
        self.idx[self.pos : self.pos + first] = binned[:first]
        self.idx[: n - first] = binned[first:]
        self.pos = (self.pos + n) % self.size
        self.filled = min(self.size, self.filled + n)

    def psi(self) -> list[float]:
        rows = self.idx[: self.filled]
        return [
            psi.psi_from_counts(f, np.bincount(rows[:, j], minlength=f.n_bins))
            for j, f in enumerate(self.feats)
        ]


class DriftMonitor:
    """Sliding window over served rows; PSI of each feature and of the predictions.

    ``window`` is the number of recent rows kept; PSI is reported only once ``min_rows`` have
    been seen, because PSI over a handful of rows is mostly sampling noise.
    """

    def __init__(
        self, baseline: profiles.Profile, *, window: int = 10_000, min_rows: int = 500
    ) -> None:
        if window < 1 or min_rows < 1:
            raise ValueError("window and min_rows must be positive")
        self.baseline = baseline
        self.window, self.min_rows = window, min(min_rows, window)
        self.feature_names = list(baseline.features)
        self.prediction_names = list(baseline.predictions)
        self._inputs = _Ring(list(baseline.features.values()), window)
        self._outputs = _Ring(list(baseline.predictions.values()), window)
        self._pending: deque[tuple[npt.NDArray[Any], npt.NDArray[Any] | None]] = deque()
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._cached: DriftSnapshot | None = None
        self._dirty = True
        self._known_columns: pd.Index | None = None

    def observe(self, frame: Any, predictions: Any) -> None:
        """Record a scored batch. Cheap; safe from any thread."""
        if not isinstance(frame, pd.DataFrame) or not len(frame):
            return
        columns = frame.columns
        if columns is not self._known_columns:  # the codec reuses one Index per schema
            if columns.tolist() == self.feature_names:
                self._known_columns = columns
            else:
                frame = frame.reindex(columns=self.feature_names)  # absent columns: "missing"
        inputs = frame.to_numpy()
        outputs = self._prediction_matrix(predictions, len(inputs))
        with self._lock:
            self._pending.append((inputs, outputs))
            self._pending_rows += len(inputs)
            self._dirty = True
            # rows the window would push out anyway are dropped unbinned
            while self._pending_rows - len(self._pending[0][0]) >= self.window:
                self._pending_rows -= len(self._pending.popleft()[0])

    def _prediction_matrix(self, predictions: Any, n: int) -> npt.NDArray[Any] | None:
        if not self.prediction_names:
            return None
        if (
            isinstance(predictions, np.ndarray)
            and predictions.ndim == 1
            and self.prediction_names == [profiles.PREDICTION_COLUMN]
        ):
            out: npt.NDArray[Any] = predictions.reshape(-1, 1)
        else:
            try:
                frame = profiles.prediction_frame(predictions)
            except (ValueError, TypeError):
                return None
            out = frame.reindex(columns=self.prediction_names).to_numpy()
        return out if len(out) == n else None

    def _flush(self) -> None:
        if not self._pending:
            return
        inputs = np.concatenate([i for i, _ in self._pending])
        outputs = [o for _, o in self._pending if o is not None]
        self._pending.clear()
        self._pending_rows = 0
        self._inputs.add(inputs)
        if outputs:
            self._outputs.add(np.concatenate(outputs))

    def snapshot(self) -> DriftSnapshot | None:
        """Current PSI, or None while the window holds fewer than ``min_rows`` rows."""
        with self._lock:
            if self._dirty:
                self._flush()
                self._cached = self._compute()
                self._dirty = False
            return self._cached

    @property
    def rows(self) -> int:
        """Rows in the window (counting those not yet binned)."""
        with self._lock:
            return min(self.window, self._inputs.filled + self._pending_rows)

    def _compute(self) -> DriftSnapshot | None:
        rows = self._inputs.filled
        if rows < self.min_rows:
            return None
        per_feature = dict(zip(self.feature_names, self._inputs.psi(), strict=True))
        prediction = None
        if self.prediction_names and self._outputs.filled >= self.min_rows:
            prediction = psi.overall_psi(
                dict(zip(self.prediction_names, self._outputs.psi(), strict=True))
            )
        return DriftSnapshot(rows, per_feature, psi.overall_psi(per_feature), prediction)
