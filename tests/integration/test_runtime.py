"""The inference runtime as a real process, serving models registered in a real MLflow server.

Three models are registered in the session's MLflow fixture:
  * ``rt-tabular``: scikit-learn pipeline over double, long and string columns, served through
    ``predict_proba``, with its drift baseline (drift/baseline.json) logged by profiles.py;
  * ``rt-doubles``: a ridge regression over double columns only, without a baseline;
  * ``rt-slow``: a TEST-ONLY pyfunc model (models-from-code, written below) that sleeps in
    ``load_context`` (``SLOW_LOAD_SECONDS`` env) and in ``predict`` (the ``sleep`` column), to
    observe readiness before load and draining on SIGTERM.
Each runtime is started as `python -m mlops_operator.runtime.cli` on a free port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_operator import baselines, profiles
from tests.support.mlflow_server import free_port

NAMESPACE = "rt-ns"
# MLflow's advice while logging the test models (input examples, type hints) is not under test
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# --- data and models ------------------------------------------------------------------------


def draw(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Rows from the training distribution (shift=0) or a shifted one."""
    rng = np.random.default_rng(seed)
    p = [0.5, 0.3, 0.2] if shift == 0 else [0.2, 0.3, 0.5]
    return pd.DataFrame(
        {
            "income": rng.lognormal(3 + shift, 0.5, n),
            "score": rng.normal(shift, 1, n),
            "ratio": rng.uniform(0, 1, n) + shift,
            "items": rng.poisson(3 + 2 * shift, n).astype(np.int64),
            "color": rng.choice(["red", "green", "blue"], n, p=p),
        }
    )


def label(df: pd.DataFrame) -> np.ndarray:
    z = df["score"] + np.log(df["income"]) - 3 + (df["color"] == "red") * 0.5
    out: np.ndarray = (z > 0).astype(np.int64).to_numpy()
    return out


@dataclass
class Registered:
    tracking_uri: str
    tabular: str
    doubles: str
    slow: str
    train: pd.DataFrame


@pytest.fixture(scope="module")
def registered(mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("test-runtime")
    train = draw(5000, seed=0)
    numeric = ["income", "score", "ratio", "items"]
    clf = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["color"])]
        ),
        LogisticRegression(max_iter=1000),
    ).fit(train, label(train))
    proba = clf.predict_proba(train)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            clf,
            name="model",
            signature=infer_signature(train, proba),
            pip_requirements=["scikit-learn"],
            pyfunc_predict_fn="predict_proba",
            registered_model_name="rt-tabular",
        )
        baselines.log_baseline(profiles.compute_profile(train, predictions=proba), info.model_id)
    tabular = f"models:/rt-tabular/{info.registered_model_version}"

    doubles = train[["income", "score", "ratio"]]
    reg = Ridge().fit(doubles, train["score"] * 2 + train["ratio"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            reg,
            name="model",
            signature=infer_signature(doubles, reg.predict(doubles)),
            pip_requirements=["scikit-learn"],
            registered_model_name="rt-doubles",
        )
    doubles_uri = f"models:/rt-doubles/{info.registered_model_version}"

    code = tmp_path_factory.mktemp("slow") / "slow_model.py"
    code.write_text(
        textwrap.dedent(
            """
            # TEST-ONLY model: slow to load and slow to predict, on request.
            import os
            import time

            import mlflow
            from mlflow.pyfunc import PythonModel


            class Slow(PythonModel):
                def load_context(self, context):
                    time.sleep(float(os.environ.get("SLOW_LOAD_SECONDS", "0")))

                def predict(self, context, model_input, params=None):
                    time.sleep(float(model_input["sleep"].max()))
                    return model_input["sleep"].to_numpy() * 2


            mlflow.models.set_model(Slow())
            """
        )
    )
    example = pd.DataFrame({"sleep": [0.0]})
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            signature=infer_signature(example, np.zeros(1)),
            pip_requirements=["pandas"],
            registered_model_name="rt-slow",
        )
    slow_uri = f"models:/rt-slow/{info.registered_model_version}"
    return Registered(mlflow_uri, tabular, doubles_uri, slow_uri, train)


# --- the runtime process --------------------------------------------------------------------


class Runtime:
    """`mlops-runtime` in a subprocess on a free port, with its log."""

    def __init__(self, model_uri: str, tracking_uri: str, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.name = env.pop("MODEL_NAME", "my-deployment")
        # the model_version label of its series: the version in a models:/<name>/<n> URI
        self.version = model_uri.rsplit("/", 1)[-1] if model_uri.startswith("models:/") else ""
        full_env = dict(
            os.environ,
            MODEL_URI=model_uri,
            MODEL_NAME=self.name,
            MLOPS_MODEL_DEPLOYMENT=self.name,
            POD_NAMESPACE=NAMESPACE,
            MLFLOW_TRACKING_URI=tracking_uri,
            PORT=str(self.port),
            MLOPS_HOST="127.0.0.1",
            PYTHONWARNINGS="ignore",
            **env,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_operator.runtime.cli"],
            env=full_env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def get(self, path: str) -> tuple[int, bytes]:
        return request(self.url + path)

    def post(self, path: str, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, out = request(self.url + path, data, content_type)
        try:
            return status, json.loads(out)
        except ValueError:
            return status, out

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"runtime exited:\n{self.log_text()}"
            try:
                if self.get("/v2/health/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"runtime not ready after {timeout}s:\n{self.log_text()}")

    def metrics(self) -> dict[str, float]:
        status, text = self.get("/metrics")
        assert status == 200
        out = {}
        for line in text.decode().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def request(
    url: str,
    data: bytes | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": content_type, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def labels(rt: Runtime, **extra: str) -> str:
    """The label set of a series of `rt` (the runtime sorts label names)."""
    pairs = {
        "model_deployment": rt.name,
        "namespace": NAMESPACE,
        "model_version": rt.version,
        **extra,
    }
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(pairs.items())) + "}"


@pytest.fixture(scope="module")
def tabular(registered: Registered, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    log = tmp_path_factory.mktemp("rt") / "tabular.log"
    rt = Runtime(
        registered.tabular,
        registered.tracking_uri,
        log,
        MLOPS_DRIFT_WINDOW="2000",
        MLOPS_DRIFT_MIN_ROWS="500",
    )
    try:
        rt.wait_ready()
        yield rt
    finally:
        rt.stop()


@pytest.fixture(scope="module")
def doubles(registered: Registered, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    log = tmp_path_factory.mktemp("rt") / "doubles.log"
    rt = Runtime(registered.doubles, registered.tracking_uri, log, MODEL_NAME="doubles")
    try:
        rt.wait_ready()
        yield rt
    finally:
        rt.stop()


def pyfunc_predict(uri: str, df: pd.DataFrame) -> Any:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(uri).predict(df)


def as_split(df: pd.DataFrame) -> dict[str, Any]:
    return {"columns": list(df.columns), "data": df.astype(object).to_numpy().tolist()}


def oip_columns(df: pd.DataFrame) -> dict[str, Any]:
    types = {"f": "FP64", "i": "INT64", "O": "BYTES"}
    return {
        "inputs": [
            {
                "name": c,
                "shape": [len(df)],
                "datatype": types.get(df[c].dtype.kind, "BYTES"),
                "data": df[c].astype(object).tolist(),
            }
            for c in df.columns
        ]
    }


# --- tests ----------------------------------------------------------------------------------


def test_predictions_equal_pyfunc_predict_on_every_protocol(
    registered: Registered, tabular: Runtime
) -> None:
    df = draw(100, seed=11)
    expected = np.asarray(pyfunc_predict(registered.tabular, df)).tolist()
    assert np.asarray(expected).shape == (100, 2)  # probabilities: float exactness matters
    bodies = {
        "dataframe_split": {"dataframe_split": as_split(df)},
        "dataframe_records": {
            "dataframe_records": [
                dict(zip(df.columns, r, strict=True)) for r in as_split(df)["data"]
            ]
        },
        "inputs": {"inputs": {c: df[c].astype(object).tolist() for c in df.columns}},
        "instances": {
            "instances": [dict(zip(df.columns, r, strict=True)) for r in as_split(df)["data"]]
        },
    }
    for name, body in bodies.items():
        status, out = tabular.post("/invocations", body)
        assert status == 200, (name, out)
        assert out["predictions"] == expected, name
    status, out = tabular.post(f"/v2/models/{tabular.name}/infer", oip_columns(df))
    assert status == 200, out
    (output,) = out["outputs"]
    assert output["shape"] == [100, 2] and output["datatype"] == "FP64"
    assert np.asarray(output["data"]).reshape(100, 2).tolist() == expected
    assert out["model_name"] == tabular.name
    assert out["model_version"] == registered.tabular.rsplit("/", 1)[1]


@pytest.mark.parametrize("n", [1, 100])
def test_all_double_fast_path_equals_pyfunc_predict(
    registered: Registered, doubles: Runtime, n: int
) -> None:
    df = draw(n, seed=12)[["income", "score", "ratio"]]
    expected = np.asarray(pyfunc_predict(registered.doubles, df)).tolist()
    status, out = doubles.post("/invocations", {"dataframe_split": as_split(df)})
    assert status == 200 and out["predictions"] == expected
    matrix = {
        "inputs": [
            {
                "name": "x",
                "shape": [n, 3],
                "datatype": "FP64",
                "data": df.to_numpy().tolist(),
            }
        ]
    }
    status, out = doubles.post("/v2/models/doubles/infer", matrix)
    assert status == 200 and out["outputs"][0]["data"] == expected


def test_model_metadata(tabular: Runtime) -> None:
    status, body = tabular.get(f"/v2/models/{tabular.name}")
    doc = json.loads(body)
    assert status == 200
    assert [(i["name"], i["datatype"]) for i in doc["inputs"]] == [
        ("income", "FP64"),
        ("score", "FP64"),
        ("ratio", "FP64"),
        ("items", "INT64"),
        ("color", "BYTES"),
    ]
    # the outputs from the signature (predict_proba: n rows of 2), named as a response names them
    assert doc["outputs"] == [{"name": "output-0", "datatype": "FP64", "shape": [-1, 2]}]
    status, out = tabular.post(f"/v2/models/{tabular.name}/infer", oip_columns(draw(3, seed=5)))
    assert status == 200
    assert [(o["name"], o["datatype"], o["shape"]) for o in out["outputs"]] == [
        ("output-0", "FP64", [3, 2])
    ]
    assert tabular.get(f"/v2/models/{tabular.name}/ready")[0] == 200
    assert tabular.get("/ping")[0] == 200


def test_hostile_bodies_are_400_and_binary_tensors_are_refused_by_name(tabular: Runtime) -> None:
    infer = f"/v2/models/{tabular.name}/infer"
    deep = b'{"dataframe_split": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # 10 kB, 5,000 levels
    for path in ("/invocations", infer):
        status, out = tabular.post(path, deep)
        assert status == 400, out
        assert "nests deeper than 1024 levels" in json.dumps(out)
    # what tritonclient sends by default: a JSON header, then the raw tensor bytes
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "income",
                    "shape": [1],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    ).encode()
    status, out = request(
        tabular.url + infer,
        header + np.array([1.0]).tobytes(),
        "application/octet-stream",
        {"Inference-Header-Content-Length": str(len(header))},
    )
    assert status == 415 and b"binary tensor extension" in out, out
    # and the server goes on serving
    status, _ = tabular.post(infer, oip_columns(draw(2, seed=6)))
    assert status == 200


@pytest.mark.parametrize(
    ("mutate", "every_row", "words"),
    [
        (lambda r: r.update(income="lots"), False, ["income", "double", "string", "row 1"]),
        (lambda r: r.update(items=2.5), False, ["items", "long", "number"]),
        (lambda r: r.update(color=7), False, ["color", "string", "integer"]),
        (lambda r: r.pop("score"), True, ["missing required column", "score"]),
        (lambda r: r.update(colour=r.pop("color")), True, ["color", "unexpected", "colour"]),
    ],
)
def test_signature_violations_are_400_naming_the_problem(
    tabular: Runtime, mutate: Any, every_row: bool, words: list[str]
) -> None:
    records = draw(3, seed=13).astype(object).to_dict(orient="records")
    for r in records if every_row else records[1:2]:
        mutate(r)
    status, out = tabular.post("/invocations", {"dataframe_records": records})
    assert status == 400, out
    assert out["error_code"] == "BAD_REQUEST"
    for w in words:
        assert w in out["message"]
    assert "Traceback" not in out["message"]


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/invocations", b"\x00\xff garbage", "application/json"),
        ("/invocations", b'{"dataframe_split": 5}', "application/json"),
        ("/invocations", b'{"what": []}', "application/json"),
        ("/invocations", b"[1, 2, 3]", "application/json"),
        ("/v2/models/my-deployment/infer", b"not json", "application/json"),
        ("/v2/models/my-deployment/infer", b'{"inputs": [{"name": "income"}]}', "application/json"),
        ("/v2/models/my-deployment/infer", b'{"inputs": "x"}', "application/json"),
    ],
)
def test_garbage_bodies_are_400_with_a_reason(
    tabular: Runtime, path: str, body: bytes, content_type: str
) -> None:
    status, out = tabular.post(path, body, content_type)
    assert status == 400, out
    message = out.get("message") or out.get("error")
    assert message and "Traceback" not in message


def test_oip_datatype_mismatch_is_400(tabular: Runtime) -> None:
    body = oip_columns(draw(2, seed=14))
    body["inputs"][3]["datatype"] = "FP64"  # items is a long column
    status, out = tabular.post(f"/v2/models/{tabular.name}/infer", body)
    assert status == 400 and "items" in out["error"] and "INT64" in out["error"]


def test_metrics_count_what_was_sent(tabular: Runtime) -> None:
    name = tabular.name
    ok = "mlops_runtime_requests_total" + labels(tabular, route="/invocations", status="200")
    bad = "mlops_runtime_requests_total" + labels(tabular, route="/invocations", status="400")
    oip = "mlops_runtime_requests_total" + labels(
        tabular, route="/v2/models/{model}/infer", status="200"
    )
    rows = "mlops_runtime_predicted_rows_total" + labels(tabular, route="/invocations")
    hist = "mlops_runtime_request_duration_seconds_count" + labels(tabular, route="/invocations")
    before = tabular.metrics()
    for i in range(4):
        tabular.post("/invocations", {"dataframe_split": as_split(draw(5, seed=20 + i))})
    for _ in range(3):
        tabular.post("/invocations", {"dataframe_split": {"columns": ["x"], "data": [[1]]}})
    for i in range(2):
        tabular.post(f"/v2/models/{name}/infer", oip_columns(draw(3, seed=30 + i)))
    after = tabular.metrics()

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta(ok) == 4
    assert delta(bad) == 3
    assert delta(oip) == 2
    assert delta(rows) == 20
    assert delta(hist) == 7
    base = labels(tabular)
    assert after["mlops_runtime_requests_in_flight" + base] == 1  # this scrape
    assert after["mlops_runtime_model_ready" + base] == 1
    assert after["mlops_runtime_model_load_seconds" + base] > 0
    info = [k for k in after if k.startswith("mlops_runtime_model_info")]
    assert len(info) == 1 and 'model_name="rt-tabular"' in info[0]


def test_drift_stable_then_significant(tabular: Runtime) -> None:
    name = tabular.name
    for i in range(20):  # 2,000 rows from the training distribution, 100 per request
        status, _ = tabular.post(
            "/invocations", {"dataframe_split": as_split(draw(100, seed=100 + i))}
        )
        assert status == 200
    m = tabular.metrics()
    overall = m["mlops_drift_psi" + labels(tabular)]
    features = {
        f: m["mlops_feature_drift_psi" + labels(tabular, feature=f)]
        for f in ["income", "score", "ratio", "items", "color"]
    }
    assert overall < 0.1, features
    assert overall == max(features.values())
    assert m["mlops_prediction_drift_psi" + labels(tabular)] < 0.1

    for i in range(20):  # 2,000 shifted rows, through OIP this time
        body = oip_columns(draw(100, seed=200 + i, shift=1.0))
        status, _ = tabular.post(f"/v2/models/{name}/infer", body)
        assert status == 200
    m = tabular.metrics()
    assert m["mlops_drift_window_rows" + labels(tabular)] == 2000
    assert m["mlops_drift_psi" + labels(tabular)] > 0.25
    assert m["mlops_feature_drift_psi" + labels(tabular, feature="color")] > 0.25
    assert m["mlops_prediction_drift_psi" + labels(tabular)] > 0.1


def test_no_baseline_no_drift_metrics_and_one_log_line(doubles: Runtime) -> None:
    df = draw(5, seed=40)[["income", "score", "ratio"]]
    assert doubles.post("/invocations", {"dataframe_split": as_split(df)})[0] == 200
    # the baseline is looked for after readiness (drift must not delay serving): wait for it
    deadline = time.monotonic() + 30
    while "no drift baseline" not in doubles.log_text():
        assert time.monotonic() < deadline, doubles.log_text()
        time.sleep(0.1)
    text = doubles.get("/metrics")[1].decode()
    assert "mlops_drift_psi" not in text and "mlops_feature_drift_psi" not in text
    log = doubles.log_text()
    assert log.count("no drift baseline") == 1
    # a missing baseline must not surface as an HTTP error; a bare "404" would also match pids and
    # ports ("process [14045]"), so look for the number as a status, not as a digit run
    assert "Traceback" not in log
    assert not re.search(r"(?<![\d.:\[])404(?![\d\]])|Not Found|RESOURCE_DOES_NOT_EXIST", log), log


def test_ready_only_after_load_and_sigterm_drains(registered: Registered, tmp_path: Path) -> None:
    rt = Runtime(
        registered.slow,
        registered.tracking_uri,
        tmp_path / "slow.log",
        MODEL_NAME="slow",
        SLOW_LOAD_SECONDS="4",
    )
    try:
        # readiness: live answers while the model loads; ready, /ping and scoring do not
        seen_loading = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                live, ready = rt.get("/v2/health/live")[0], rt.get("/v2/health/ready")[0]
            except OSError:
                time.sleep(0.05)
                continue
            if ready == 200:
                break
            assert (live, ready) == (200, 503)
            if not seen_loading:
                status, out = rt.post("/invocations", {"inputs": {"sleep": [0.0]}})
                assert status == 503 and "not loaded" in out["message"]
                assert rt.get("/v2/models/slow/ready")[0] == 503
            seen_loading = True
            time.sleep(0.1)
        assert seen_loading, "never saw the server live-but-not-ready"
        assert rt.get("/v2/health/ready")[0] == 200

        # SIGTERM during a 3 s request: the request completes, then the process exits 0
        result: dict[str, Any] = {}

        def slow_call() -> None:
            result["response"] = rt.post("/invocations", {"inputs": {"sleep": [3.0]}})

        caller = threading.Thread(target=slow_call)
        caller.start()
        in_flight = "mlops_runtime_requests_in_flight" + labels(rt)
        deadline = time.monotonic() + 10
        while rt.metrics()[in_flight] < 2:  # the slow request and this scrape
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t_term = time.monotonic()
        rt.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(OSError):  # no longer accepting connections
            rt.get("/v2/health/live")
        caller.join(30)
        assert result["response"] == (200, {"predictions": [6.0]})
        assert rt.proc.wait(30) == 0
        assert time.monotonic() - t_term >= 2.0  # it waited for the request
        assert "draining" in rt.log_text()
    finally:
        rt.stop()


def test_baseline_helpers_against_the_registry(registered: Registered) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(registered.tracking_uri)
    baseline = baselines.load_baseline(registered.tabular, client=client)
    assert baseline is not None and list(baseline.features) == list(registered.train.columns)
    assert list(baseline.predictions) == ["prediction_0", "prediction_1"]
    assert baselines.load_baseline(registered.doubles, client=client) is None

    # log by registered version; read back by version, by model id and after download
    name, version = registered.doubles[len("models:/") :].split("/")
    small = profiles.compute_profile(registered.train[["income", "score", "ratio"]].head(100))
    uri = baselines.log_baseline(small, registered.doubles, client=client)
    source = client.get_model_version(name, version).source  # MLflow 3: models:/m-<id>
    assert source is not None
    model_id = source[len("models:/") :]
    assert uri == f"models:/{model_id}/drift/baseline.json"
    assert baselines.load_baseline(registered.doubles, client=client) == small
    assert baselines.load_baseline(f"models:/{model_id}", client=client) == small

    # training code that logged the profile to its run instead: found through the version
    df = registered.train[["score"]]
    with mlflow.start_run() as run:
        from sklearn.dummy import DummyRegressor

        info = mlflow.sklearn.log_model(
            DummyRegressor().fit(df, df["score"]),
            name="model",
            pip_requirements=["scikit-learn"],
            registered_model_name="rt-run-baseline",
        )
        mlflow.log_text(profiles.compute_profile(df).to_json(), profiles.BASELINE_ARTIFACT)
    found = baselines.load_baseline(f"models:/rt-run-baseline/{info.registered_model_version}")
    assert found is not None and list(found.features) == ["score"]
    assert run.info.run_id


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_model_that_cannot_load_ends_the_process(
    registered: Registered, tmp_path: Path, short_tmp: Path, workers: str
) -> None:
    rt = Runtime(
        "models:/no-such-model/1",
        registered.tracking_uri,
        tmp_path / "missing.log",
        MLOPS_WORKERS=workers,
        TMPDIR=str(short_tmp),
    )
    try:
        assert rt.proc.wait(120) == 1  # Kubernetes restarts it with back-off
        # the pod's termination message is the log's last line: it names the cause
        last = rt.log_text().strip().splitlines()[-1]
        assert last.startswith("mlops-runtime: model not loaded") and "no-such-model" in last
        assert not list(short_tmp.glob("mlops-runtime-*"))  # the supervisor cleaned up
    finally:
        rt.stop()


def ask_worker(sock: Path, command: bytes = b"metrics") -> Any:
    """One worker's own answer over its socket in the pod's private directory (peers.py)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(sock))
        s.sendall(command + b"\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data)


def served(payload: Any) -> float:
    (family,) = [f for f in payload["families"] if f["name"] == "mlops_runtime_requests"]
    return sum(
        float(v) for _, labels, v in family["samples"] if labels.get("route") == "/invocations"
    )


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory with a short path: the workers' unix sockets go under it (108 bytes at most,
    and pytest's tmp_path can be long)."""
    path = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_two_workers_share_the_port_and_answer_for_each_other(
    registered: Registered, tmp_path: Path, short_tmp: Path
) -> None:
    rt = Runtime(
        registered.tabular,
        registered.tracking_uri,
        tmp_path / "two.log",
        MLOPS_WORKERS="2",
        MLOPS_DRIFT_WINDOW="4000",
        MLOPS_DRIFT_MIN_ROWS="1500",
        MLOPS_DRAIN_DELAY_SECONDS="1",
        TMPDIR=str(short_tmp),
    )
    try:
        rt.wait_ready()
        (meet,) = short_tmp.glob("mlops-runtime-*")
        socks = sorted(meet.glob("worker-*.sock"))
        assert len(socks) == 2

        # each worker fetches the drift baseline after it is ready: wait for both windows
        def windows() -> list[bool]:
            return [ask_worker(s)["drift"] is not None for s in socks]

        _until("both drift windows", lambda: all(windows()), windows, timeout=60)

        # every request on a connection of its own: the kernel spreads them over the workers
        df = draw(1600, seed=400)
        expected = np.asarray(pyfunc_predict(registered.tabular, df)).tolist()
        got: list[Any] = []
        for i in range(0, 1600, 80):
            status, out = rt.post("/invocations", {"dataframe_split": as_split(df[i : i + 80])})
            assert status == 200, out
            got += out["predictions"]
        assert got == expected

        answers = [ask_worker(s) for s in socks]
        each = [served(a) for a in answers]
        assert sum(each) == 20 and min(each) > 0, each  # both served
        # each worker holds half the pod's 4,000-row window and saw fewer than the 1,500 rows
        # PSI needs; their counts added up are over it
        rows = [a["drift"]["input_rows"] for a in answers]
        assert sum(rows) == 1600 and max(rows) < 1500, rows
        ok = "mlops_runtime_requests_total" + labels(rt, route="/invocations", status="200")
        for _ in range(4):  # whichever worker a scrape reaches, it answers for the pod
            m = rt.metrics()
            assert m[ok] == 20
            assert m["mlops_runtime_workers" + labels(rt)] == 2
            assert m["mlops_runtime_model_ready" + labels(rt)] == 1
            assert m["mlops_drift_window_rows" + labels(rt)] == 1600
            assert m["mlops_drift_psi" + labels(rt)] < 0.1

        # the preStop call reaches one worker; the pod stops being ready on every connection
        assert rt.get("/-/drain")[0] == 200
        assert all(rt.get("/v2/health/ready")[0] == 503 for _ in range(6))
        rt.proc.send_signal(signal.SIGTERM)  # to the supervisor, as the kubelet sends it
        assert rt.proc.wait(30) == 0
        assert not meet.exists()
        assert "Traceback" not in rt.log_text()
    finally:
        rt.stop()


def _shadow_count(rt: Runtime, metric: str, version: str, **extra: str) -> float:
    return rt.metrics().get(metric + labels(rt, shadow_version=version, **extra), 0.0)


def _until(
    what: str, check: Callable[[], bool], seen: Callable[[], object] = str, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout}s: {seen()}"
        time.sleep(0.2)


def test_shadow_copies_requests_to_the_candidate_and_compares_its_answers(
    registered: Registered, tmp_path: Path
) -> None:
    """Two real runtimes: the stable one copies every prediction request to the candidate (the
    same ridge model under another version label, so every prediction agrees), on both
    protocols; then to a listener that never answers, where copies time out and, with the
    queue full, are dropped while every caller still gets its answer; then it stops."""
    config = tmp_path / "shadow.json"
    name = "shadowed"
    stable = Runtime(
        registered.doubles,
        registered.tracking_uri,
        tmp_path / "stable.log",
        MODEL_NAME=name,
        MLOPS_SHADOW_FILE=str(config),
        MLOPS_SHADOW_QUEUE="2",
        MLOPS_SHADOW_CONCURRENCY="1",
        MLOPS_SHADOW_TIMEOUT_SECONDS="1",
    )
    candidate = Runtime(
        registered.doubles,
        registered.tracking_uri,
        tmp_path / "candidate.log",
        MODEL_NAME=name,
        MLOPS_MODEL_VERSION="cand",
        MLOPS_SHADOW_FILE=str(config),  # it reads the same file, and skips its own version
    )
    candidate.version = "cand"  # its series' model_version label
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)  # accepts connections and never answers
    try:
        stable.wait_ready()
        candidate.wait_ready()
        config.write_text(json.dumps({"target": candidate.url, "percent": 100, "version": "cand"}))
        time.sleep(2.5)  # the runtime re-reads the file every 2 s
        rows = draw(4, seed=70)[["income", "score", "ratio"]]
        ok = "mlops_shadow_requests_total"
        oip = f"/v2/models/{name}/infer"
        for n in range(1, 10):  # 6 on /invocations, 3 on OIP; one at a time (queue of 2)
            sent = (
                stable.post(oip, oip_columns(rows))
                if n > 6
                else stable.post("/invocations", {"dataframe_split": as_split(rows)})
            )
            assert sent[0] == 200
            _until(
                f"{n} answered copies",
                lambda: _shadow_count(stable, ok, "cand", outcome="ok") >= n,  # noqa: B023
                lambda: {k: v for k, v in stable.metrics().items() if "mlops_shadow" in k},
            )
        m = stable.metrics()
        shadow = labels(stable, shadow_version="cand")
        assert m["mlops_shadow_predictions_total" + shadow] == 36  # 9 requests x 4 rows
        assert m["mlops_shadow_agreements_total" + shadow] == 36
        assert m["mlops_shadow_numeric_predictions_total" + shadow] == 36
        assert m["mlops_shadow_relative_error_total" + shadow] == 0
        assert m["mlops_shadow_request_duration_seconds_count" + shadow] == 9
        assert m["mlops_shadow_percent" + labels(stable)] == 100
        assert m.get(ok + labels(stable, shadow_version="cand", outcome="error"), 0) == 0
        # the candidate answered the copies itself, and copied nothing on
        c = candidate.metrics()
        route = labels(candidate, route="/invocations", status="200")
        assert c["mlops_runtime_requests_total" + route] == 6
        assert c["mlops_shadow_percent" + labels(candidate)] == 0

        port = hole.getsockname()[1]
        target = {"target": f"http://127.0.0.1:{port}", "percent": 100, "version": "hole"}
        config.write_text(json.dumps(target))
        time.sleep(2.5)
        for _ in range(12):  # one in flight, two queued: the rest are dropped
            assert stable.post("/invocations", {"dataframe_split": as_split(rows)})[0] == 200

        def timeouts() -> float:
            return _shadow_count(stable, ok, "hole", outcome="timeout")

        _until("the queued copies timed out", lambda: timeouts() >= 3)
        assert _shadow_count(stable, ok, "hole", outcome="dropped") >= 8
        assert timeouts() + _shadow_count(stable, ok, "hole", outcome="dropped") == 12

        config.unlink()  # the ConfigMap is deleted: off
        time.sleep(2.5)
        before = stable.metrics()
        for _ in range(3):
            assert stable.post("/invocations", {"dataframe_split": as_split(rows)})[0] == 200
        time.sleep(0.5)
        after = stable.metrics()
        assert after["mlops_shadow_percent" + labels(stable)] == 0
        for outcome in ("timeout", "dropped"):
            key = ok + labels(stable, shadow_version="hole", outcome=outcome)
            assert after[key] == before[key]
        assert "shadow on: 100% of requests copied to version cand" in stable.log_text()
    finally:
        hole.close()
        stable.stop()
        candidate.stop()
