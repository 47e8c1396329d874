"""Adaptive batching: requests that arrive while the model is busy are scored together.

Most models score a hundred rows in little more time than one (a scikit-learn Pipeline's
per-call overhead dominates small inputs), so under concurrent load one predict call over the
rows of every waiting request beats one call per request. As in Triton's dynamic batcher and
MLServer's adaptive batching there are two bounds: at most `max_size` requests per call, and
a batch that is not full waits at most `max_wait` seconds (counted from its oldest request's
arrival) for more. A request that finds the model idle and nobody waiting is scored at once:
alone, nothing waits.

Only requests whose decoded frames have the same columns and dtypes and no params are put
together; anything else is scored alone. The predictions are cut back into each request's rows;
when a model's answer does not have one prediction per row, or the batch fails on one request's
input, each request of that batch is scored again on its own, so every caller gets the answer
(or the error) it would have had alone.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_operator.runtime.codec import Parsed

Predict = Callable[[Parsed], tuple[Any, Any]]  # -> (model input, predictions)
Run = Callable[..., Awaitable[Any]]  # runs a blocking call off the event loop
Observe = Callable[[Any, Any], None]  # the drift window: (model input, predictions)


@dataclass
class _Waiting:
    parsed: Parsed
    key: tuple[Any, ...]
    rows: int
    arrived: float
    future: asyncio.Future[tuple[Any, Any]] = field(repr=False)


def batch_key(parsed: Parsed) -> tuple[Any, ...] | None:
    """What requests must share to be scored in one call; None: never batched."""
    frame = parsed.frame
    if frame is None or parsed.params is not None or not isinstance(frame, pd.DataFrame):
        return None
    # dtypes themselves: two categoricals are alike only with the same categories
    return (tuple(frame.columns), tuple(frame.dtypes.tolist()))


def split(predictions: Any, sizes: list[int]) -> list[Any] | None:
    """The predictions of a batch cut into each request's rows, or None when they are not one
    per row (the caller then scores each request alone)."""
    bounds = list(itertools.pairwise(itertools.accumulate(sizes, initial=0)))
    if isinstance(predictions, pd.DataFrame | pd.Series):
        if len(predictions) != bounds[-1][1]:
            return None
        return [predictions.iloc[a:b].reset_index(drop=True) for a, b in bounds]
    if isinstance(predictions, np.ndarray):
        if predictions.ndim == 0 or predictions.shape[0] != bounds[-1][1]:
            return None
        return [predictions[a:b] for a, b in bounds]
    if isinstance(predictions, list) and len(predictions) == bounds[-1][1]:
        return [predictions[a:b] for a, b in bounds]
    return None


class Batcher:
    def __init__(
        self,
        predict: Predict,
        run: Run,
        observe: Observe,
        max_size: int,
        max_wait: float,
        on_batch: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._predict, self._run, self._observe = predict, run, observe
        self._max_size, self._max_wait = max_size, max_wait
        self._on_batch = on_batch  # the metrics: requests per model call
        self._queue: deque[_Waiting] = deque()
        self._busy = False  # a request is being scored (alone, or by the worker task)
        self._worker: asyncio.Task[None] | None = None

    async def predict(self, parsed: Parsed) -> tuple[Any, Any]:
        """(model input, predictions) of one request, scored alone or with others."""
        if not self._busy and not self._queue:
            # the model is idle: score at once, in this coroutine (no queue, no task, no key:
            # at concurrency 1 batching costs nothing)
            self._busy = True
            try:
                return await self._alone(parsed)
            finally:
                self._busy = False
                if self._queue:  # requests arrived meanwhile: they go together, at once
                    self._start(busy=True)
        key = batch_key(parsed) if self._max_size > 1 else None
        if key is None:
            return await self._alone(parsed)
        assert parsed.frame is not None
        loop = asyncio.get_running_loop()
        waiting = _Waiting(parsed, key, len(parsed.frame), time.monotonic(), loop.create_future())
        self._queue.append(waiting)
        if not self._busy:
            self._start(busy=False)
        return await waiting.future

    def _start(self, busy: bool) -> None:
        self._busy = True
        self._worker = asyncio.create_task(self._work(busy), name="batcher")

    async def _alone(self, parsed: Parsed) -> tuple[Any, Any]:
        self._on_batch(1)
        return await self._run(self._predict_observed, parsed)  # type: ignore[no-any-return]

    def _predict_observed(self, parsed: Parsed) -> tuple[Any, Any]:
        data, predictions = self._predict(parsed)
        self._observe(data, predictions)
        return data, predictions

    async def _work(self, busy: bool) -> None:
        """Score what waits, batch after batch; `busy`: a call ran just before, so more
        requests are likely on their way (worth waiting max_wait for)."""
        try:
            while self._queue:
                if busy and self._max_wait > 0:
                    await self._fill()
                await self._score(self._take())
                busy = True
        finally:
            self._busy = False

    async def _fill(self) -> None:
        """Wait, up to max_wait after the oldest waiting request arrived, for a full batch."""
        while len(self._queue) < self._max_size:
            left = self._queue[0].arrived + self._max_wait - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.0005))

    def _take(self) -> list[_Waiting]:
        head = self._queue.popleft()
        batch, rest = [head], deque[_Waiting]()
        while self._queue and len(batch) < self._max_size:
            w = self._queue.popleft()
            (batch if w.key == head.key else rest).append(w)
        rest.extend(self._queue)
        self._queue = rest
        return batch

    async def _score(self, batch: list[_Waiting]) -> None:
        live = [w for w in batch if not w.future.done()]  # a caller that went away
        if not live:
            return
        if len(live) == 1:
            await self._settle(live[0])
            return
        self._on_batch(len(live))
        try:
            results = await self._run(self._predict_batch, [w.parsed for w in live])
        except Exception:
            results = None  # one request's bad input fails the call: each alone, below
        if results is None:
            await asyncio.gather(*(self._settle(w) for w in live))
            return
        for w, result in zip(live, results, strict=True):
            if not w.future.done():
                w.future.set_result(result)

    async def _settle(self, w: _Waiting) -> None:
        try:
            result = await self._alone(w.parsed)
        except Exception as e:
            if not w.future.done():
                w.future.set_exception(e)
            return
        if not w.future.done():
            w.future.set_result(result)

    def _predict_batch(self, parsed: list[Parsed]) -> list[tuple[Any, Any]] | None:
        frames = [p.frame for p in parsed]
        data = pd.concat(frames, ignore_index=True)
        _, predictions = self._predict(Parsed(data, {}, None))
        parts = split(predictions, [len(f) for f in frames if f is not None])
        if parts is None:
            return None
        self._observe(data, predictions)
        return [(f, part) for f, part in zip(frames, parts, strict=True)]
