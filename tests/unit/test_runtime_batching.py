"""Adaptive batching (runtime/batching.py): who is scored with whom, that nobody alone waits,
and that every caller gets exactly what scoring its own rows alone gives, on real
scikit-learn models."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_operator.runtime.batching import Batcher, split
from mlops_operator.runtime.codec import BadRequest, Parsed

pytestmark = pytest.mark.unit


class Harness:
    """A Batcher on one predict thread, as the runtime has it; `gate` holds the first call
    until released, so that the requests sent meanwhile queue behind it."""

    def __init__(self, model: Any, max_size: int = 32, max_wait: float = 0.002) -> None:
        self.model = model
        self.pool = ThreadPoolExecutor(1)
        self.calls: list[int] = []  # rows per model call
        self.batches: list[int] = []  # requests per model call
        self.observed = 0
        self.gate: threading.Event | None = None

        def predict(parsed: Parsed) -> tuple[Any, Any]:
            if self.gate is not None:
                self.gate.wait(10)
                self.gate = None
            assert parsed.frame is not None
            self.calls.append(len(parsed.frame))
            return parsed.frame, self.model(parsed.frame)

        async def run(fn: Any, *args: Any) -> Any:
            return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

        def observe(data: Any, _: Any) -> None:
            self.observed += len(data)

        self.batcher = Batcher(predict, run, observe, max_size, max_wait, self.batches.append)

    async def send(self, frames: list[pd.DataFrame], hold_first: bool = True) -> list[Any]:
        """The first request alone (held while the others arrive), then the rest at once."""
        if hold_first:
            self.gate = threading.Event()
        first = asyncio.ensure_future(self.batcher.predict(Parsed(frames[0], {})))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(self.batcher.predict(Parsed(f, {}))) for f in frames[1:]]
        await asyncio.sleep(0.05)
        if self.gate is not None:
            self.gate.set()
        out = await asyncio.gather(first, *rest, return_exceptions=True)
        return [o if isinstance(o, BaseException) else o[1] for o in out]


def frames_of(x: pd.DataFrame, sizes: list[int]) -> list[pd.DataFrame]:
    at, out = 0, []
    for n in sizes:
        out.append(x.iloc[at : at + n].reset_index(drop=True))
        at += n
    return out


def test_a_request_alone_is_scored_at_once() -> None:
    """With a wait of a minute, a lone request still comes back at once (a wait would time
    the test out): nobody alone waits for company."""
    h = Harness(lambda f: f["a"].to_numpy() * 2, max_wait=60)

    async def scenario() -> Any:
        return await asyncio.wait_for(h.batcher.predict(Parsed(pd.DataFrame({"a": [1.0]}), {})), 5)

    _, predictions = asyncio.run(scenario())
    assert predictions.tolist() == [2.0]
    assert h.batches == [1]


def test_requests_that_queue_behind_a_call_are_scored_together_and_cut_back() -> None:
    h = Harness(lambda f: f["a"].to_numpy() * 10)
    frames = [pd.DataFrame({"a": [float(i)] * (i + 1)}) for i in range(6)]
    out = asyncio.run(h.send(frames))
    assert h.batches == [1, 5], h.batches
    assert h.calls == [1, 2 + 3 + 4 + 5 + 6]
    for i, got in enumerate(out):
        assert got.tolist() == [10.0 * i] * (i + 1)
    assert h.observed == sum(range(1, 7)), "the drift window sees every row once"


def test_a_batch_holds_at_most_max_size_requests() -> None:
    h = Harness(lambda f: f["a"].to_numpy(), max_size=4)
    frames = [pd.DataFrame({"a": [float(i)]}) for i in range(11)]
    out = asyncio.run(h.send(frames))
    assert h.batches == [1, 4, 4, 2], h.batches
    assert [o.tolist() for o in out] == [[float(i)] for i in range(11)]


def test_only_alike_frames_share_a_call() -> None:
    h = Harness(lambda f: f.iloc[:, 0].to_numpy() * 2)
    frames = [
        pd.DataFrame({"a": [1.0]}),
        pd.DataFrame({"a": [1.0, 2.0]}),
        pd.DataFrame({"b": [1.0]}),  # other columns
        pd.DataFrame({"a": [1]}),  # other dtype
        pd.DataFrame({"a": [3.0]}),
    ]
    out = asyncio.run(h.send(frames))
    assert sorted(h.batches) == [1, 1, 1, 2], h.batches
    assert h.calls[0] == 1 and sorted(h.calls[1:]) == [1, 1, 3], "a's two with a, alone b, int a"
    assert [o.tolist() for o in out] == [[2.0], [2.0, 4.0], [2.0], [2], [6.0]]


def test_one_bad_request_fails_alone_and_the_others_are_answered() -> None:
    def model(f: pd.DataFrame) -> Any:
        if f["a"].isna().any():
            raise BadRequest("the model could not score the input: NaN")
        return f["a"].to_numpy() + 1

    h = Harness(model)
    frames = [pd.DataFrame({"a": [v]}) for v in (1.0, 2.0, float("nan"), 4.0)]
    out = asyncio.run(h.send(frames))
    assert out[0].tolist() == [2.0] and out[1].tolist() == [3.0] and out[3].tolist() == [5.0]
    assert isinstance(out[2], BadRequest), out[2]
    assert h.batches[:2] == [1, 3], "the batch was tried, then each request alone"


def test_a_model_without_one_prediction_per_row_is_scored_request_by_request() -> None:
    h = Harness(lambda f: float(f["a"].sum()))  # one number per call
    frames = [
        pd.DataFrame({"a": [1.0, 2.0]}),
        pd.DataFrame({"a": [3.0]}),
        pd.DataFrame({"a": [4.0]}),
    ]
    out = asyncio.run(h.send(frames))
    assert out == [3.0, 3.0, 4.0]


def test_split_by_type() -> None:
    assert [p.tolist() for p in split(np.arange(5), [2, 3]) or []] == [[0, 1], [2, 3, 4]]
    parts = split(pd.DataFrame({"p": [1, 2, 3]}), [1, 2]) or []
    assert [p["p"].tolist() for p in parts] == [[1], [2, 3]]
    assert list(parts[1].index) == [0, 1]
    assert split([1, 2, 3], [2, 1]) == [[1, 2], [3]]
    assert split(np.arange(4), [2, 3]) is None
    assert split({"a": 1}, [1]) is None
    assert split(np.float64(1.0), [1]) is None


def _iris_classifier() -> tuple[Any, pd.DataFrame]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=500).fit(x, y), x


def _pipeline_regressor() -> tuple[Any, pd.DataFrame]:
    """The realistic model of bench-runtime: encoding and scaling, then gradient boosting."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(3)
    n = 400
    x = pd.DataFrame(
        {
            "age": rng.uniform(18, 90, n),
            "income": rng.lognormal(10, 1, n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    y = x["age"] * 0.3 + np.log(x["income"]) + (x["region"] == "north") * 2
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["age", "income"]), ("cat", OneHotEncoder(), ["region"])]
    )
    model = Pipeline([("pre", pre), ("gbr", GradientBoostingRegressor(n_estimators=50))])
    return model.fit(x, y), x


@pytest.mark.parametrize(
    "make, method",
    [
        (_iris_classifier, "predict"),
        (_iris_classifier, "predict_proba"),
        (_pipeline_regressor, "predict"),
    ],
)
def test_batched_predictions_equal_predictions_of_each_requests_rows_alone(
    make: Any, method: str
) -> None:
    model, x = make()
    fn = getattr(model, method)
    sizes = [1, 3, 1, 7, 2, 1, 5, 1, 1, 4]
    frames = frames_of(x.sample(frac=1.0, random_state=1), sizes)
    h = Harness(fn)
    out = asyncio.run(h.send(frames))
    assert h.batches == [1, len(sizes) - 1], h.batches
    for frame, got in zip(frames, out, strict=True):
        alone = fn(frame)
        if method == "predict":  # what MLflow's pyfunc serves for scikit-learn: exactly equal
            assert np.array_equal(got, alone), (got, alone)
        else:
            # a probability is a matrix product, and BLAS rounds the last bit of a one-row
            # product differently from an n-row one: equal to 1e-12, not to the bit
            np.testing.assert_allclose(got, alone, rtol=1e-12, atol=1e-15)
