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

    def counts(self) -> tuple[npt.NDArray[np.int64], ...]:
        rows = self.idx[: self.filled]
        return tuple(
            np.bincount(rows[:, j], minlength=f.n_bins).astype(np.int64)
            for j, f in enumerate(self.feats)
        )


@dataclass(frozen=True)
class DriftCounts:
    """A window as bin counts per feature: what several workers' windows add up to (PSI needs
    nothing else), and what one worker sends another (``to_wire``)."""

    input_rows: int
    inputs: tuple[npt.NDArray[np.int64], ...]
    output_rows: int
    outputs: tuple[npt.NDArray[np.int64], ...]

    def __add__(self, other: DriftCounts) -> DriftCounts:
        if [len(c) for c in self.inputs] != [len(c) for c in other.inputs] or [
            len(c) for c in self.outputs
        ] != [len(c) for c in other.outputs]:
            raise ValueError("drift counts of different baselines cannot be added")
        return DriftCounts(
            self.input_rows + other.input_rows,
            tuple(a + b for a, b in zip(self.inputs, other.inputs, strict=True)),
            self.output_rows + other.output_rows,
            tuple(a + b for a, b in zip(self.outputs, other.outputs, strict=True)),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "input_rows": self.input_rows,
            "inputs": [c.tolist() for c in self.inputs],
            "output_rows": self.output_rows,
            "outputs": [c.tolist() for c in self.outputs],
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> DriftCounts:
        def arrays(key: str) -> tuple[npt.NDArray[np.int64], ...]:
            return tuple(np.asarray(c, dtype=np.int64) for c in wire[key])

        return cls(
            int(wire["input_rows"]), arrays("inputs"), int(wire["output_rows"]), arrays("outputs")
        )


class DriftMonitor:
    """Sliding window over served rows; PSI of each feature and of the predictions.

    ``window`` is the number of recent rows kept; PSI is reported only once ``min_rows`` have
    been seen, because PSI over a handful of rows is mostly sampling noise.
    """

    def __init__(
        self,
        baseline: profiles.Profile,
        *,
        window: int = 10_000,
        min_rows: int = 500,
        workers: int = 1,
    ) -> None:
        if window < 1 or min_rows < 1 or workers < 1:
            raise ValueError("window, min_rows and workers must be positive")
        self.baseline = baseline
        # the pod's window is shared out over its workers, whose counts are added up when
        # scraped (snapshot_of): min_rows is a count of the pod's rows
        self.min_rows = min(min_rows, window)
        self.window = -(-window // workers)
        self.feature_names = list(baseline.features)
        self.prediction_names = list(baseline.predictions)
        self._inputs = _Ring(list(baseline.features.values()), self.window)
        self._outputs = _Ring(list(baseline.predictions.values()), self.window)
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
                self._cached = self.snapshot_of(self._counts())
                self._dirty = False
            return self._cached

    def counts(self) -> DriftCounts:
        """The window's bin counts (queued rows binned first)."""
        with self._lock:
            self._flush()
            return self._counts()

    def _counts(self) -> DriftCounts:
        return DriftCounts(
            self._inputs.filled,
            self._inputs.counts(),
            self._outputs.filled,
            self._outputs.counts(),
        )

    @property
    def rows(self) -> int:
        """Rows in the window (counting those not yet binned)."""
        with self._lock:
            return min(self.window, self._inputs.filled + self._pending_rows)

    def snapshot_of(self, counts: DriftCounts) -> DriftSnapshot | None:
        """PSI of ``counts`` (this window's, or several workers' added up) against the
        baseline; None below ``min_rows``."""
        if counts.input_rows < self.min_rows:
            return None
        if len(counts.inputs) != len(self.feature_names) or len(counts.outputs) != len(
            self.prediction_names
        ):
            raise ValueError("drift counts do not match this baseline's features")
        feats = self.baseline.features.values()
        per_feature = {
            name: psi.psi_from_counts(f, c)
            for name, f, c in zip(self.feature_names, feats, counts.inputs, strict=True)
        }
        prediction = None
        if self.prediction_names and counts.output_rows >= self.min_rows:
            preds = self.baseline.predictions.values()
            prediction = psi.overall_psi(
                {
                    name: psi.psi_from_counts(f, c)
                    for name, f, c in zip(self.prediction_names, preds, counts.outputs, strict=True)
                }
            )
        return DriftSnapshot(
            counts.input_rows, per_feature, psi.overall_psi(per_feature), prediction
        )
