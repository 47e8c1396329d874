"""The runtime's ASGI app and settings, driven in-process with a stand-in model: pure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from mlops_operator import profiles
from mlops_operator.runtime import peers
from mlops_operator.runtime.app import RuntimeApp
from mlops_operator.runtime.codec import BadRequest, Parsed
from mlops_operator.runtime.config import ConfigError, RuntimeConfig
from mlops_operator.runtime.drift import DriftMonitor
from mlops_operator.runtime.metrics import RuntimeMetrics
from mlops_operator.runtime.model import ModelRef, check_requirements, parse_model_uri
from mlops_operator.runtime.peers import WorkerGroup
from mlops_operator.runtime.schema import Column, ColumnSchema, ColumnType


class FakeModel:
    """Just what the app uses of LoadedModel: ref, schema, predict(parsed)."""

    def __init__(self) -> None:
        self.ref = ModelRef("models:/iris/3", "iris", "3")
        self.schema = ColumnSchema((Column("a", ColumnType.DOUBLE), Column("b", ColumnType.DOUBLE)))
        self.mlflow_schema: Any = None
        self.output_schema: Any = None

    def predict(self, parsed: Parsed) -> tuple[Any, Any]:
        frame = parsed.frame
        assert frame is not None
        if (frame["a"] < 0).any():
            raise BadRequest("the model could not score the input: negative a")
        if (frame["a"] > 1e9).any():
            raise RuntimeError("boom (secret internals)")
        return frame, (frame["a"] + frame["b"]).to_numpy()


def make_app(group: WorkerGroup | None = None, **env: str) -> RuntimeApp:
    cfg = RuntimeConfig.from_env(
        {
            "MODEL_URI": "models:/iris/3",
            "MODEL_NAME": "iris-prod",
            "POD_NAMESPACE": "ml",
            "MLOPS_PREDICT_THREADS": "0",
            **env,
        }
    )
    metrics = RuntimeMetrics(cfg.model_deployment, cfg.namespace, cfg.model_version)
    return RuntimeApp(cfg, metrics, group)


def call(
    app: RuntimeApp,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str = "application/json",
) -> tuple[int, bytes]:
    status, _, out = call_with_headers(app, method, path, body, content_type)
    return status, out


def call_with_headers(
    app: RuntimeApp,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str = "application/json",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []
    chunks = [body[:5], body[5:]] if len(body) > 5 else [body]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-type", content_type.encode()), *(headers or [])],
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


async def acall(app: RuntimeApp, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    headers = [(b"content-type", b"application/json")]
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    await app(scope, receive, send)
    return sent[0]["status"], sent[1]["body"]


def split(rows: list[list[Any]]) -> bytes:
    return orjson.dumps({"dataframe_split": {"columns": ["a", "b"], "data": rows}})


def test_live_at_once_ready_only_after_load() -> None:
    app = make_app()
    assert call(app, "GET", "/v2/health/live")[0] == 200
    assert call(app, "GET", "/v2/health/ready")[0] == 503
    assert call(app, "GET", "/v2/models/iris-prod/ready")[0] == 503
    assert call(app, "GET", "/ping")[0] == 503
    status, out = call(app, "POST", "/invocations", split([[1, 2]]))
    assert status == 503 and b"not loaded" in out
    app.state.model = FakeModel()  # type: ignore[assignment]
    assert call(app, "GET", "/v2/health/ready")[0] == 200
    assert call(app, "GET", "/v2/models/iris-prod/ready")[0] == 200
    assert call(app, "GET", "/ping")[0] == 200
    app.state.draining = True
    assert call(app, "GET", "/v2/health/ready")[0] == 503
    assert call(app, "GET", "/v2/health/live")[0] == 200


def test_scoring_on_both_protocols() -> None:
    app = make_app()
    app.state.model = FakeModel()  # type: ignore[assignment]
    status, out = call(app, "POST", "/invocations", split([[1, 2], [3, 4.5]]))
    assert status == 200 and orjson.loads(out) == {"predictions": [3.0, 7.5]}
    req = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    status, out = call(app, "POST", "/v2/models/iris-prod/infer", orjson.dumps(req))
    assert status == 200
    doc = orjson.loads(out)
    assert doc["model_name"] == "iris-prod" and doc["model_version"] == "3"
    assert doc["outputs"][0]["data"] == [3.0]
    status, _ = call(app, "POST", "/v2/models/iris-prod/versions/3/infer", orjson.dumps(req))
    assert status == 200


def test_client_errors_are_4xx_json_naming_the_problem() -> None:
    app = make_app()
    app.state.model = FakeModel()  # type: ignore[assignment]
    status, out = call(app, "POST", "/invocations", split([[1, "x"]]))
    assert status == 400
    doc = orjson.loads(out)
    assert doc["error_code"] == "BAD_REQUEST" and "'b'" in doc["message"]
    status, out = call(app, "POST", "/invocations", split([[-1, 1]]))
    assert status == 400 and b"negative a" in out
    status, out = call(app, "POST", "/v2/models/iris-prod/infer", b"garbage")
    assert status == 400 and "error" in orjson.loads(out)
    assert call(app, "POST", "/invocations", b"a,b\n1,2", "text/plain")[0] == 415
    assert call(app, "GET", "/invocations")[0] == 405
    assert call(app, "POST", "/v2/health/live")[0] == 405
    status, out = call(app, "POST", "/v2/models/other/infer", b"{}")
    assert status == 404 and b"iris-prod" in out
    assert call(app, "GET", "/v2/models/iris-prod/versions/9")[0] == 404
    assert call(app, "GET", "/nope")[0] == 404


def test_csv_goes_through_the_same_checks() -> None:
    app = make_app()
    app.state.model = FakeModel()  # type: ignore[assignment]
    status, out = call(app, "POST", "/invocations", b"a,b\n1,2\n", "text/csv")
    assert status == 200 and orjson.loads(out) == {"predictions": [3.0]}
    status, _ = call(app, "POST", "/invocations", b"a,c\n1,2\n", "text/csv")
    assert status == 400


def test_server_errors_are_500_without_internals(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    app.state.model = FakeModel()  # type: ignore[assignment]
    status, out = call(app, "POST", "/invocations", split([[2e9, 1]]))
    assert status == 500
    assert b"secret" not in out and b"Traceback" not in out
    assert "boom" in caplog.text


def test_deeply_nested_json_is_a_400_naming_the_nesting() -> None:
    app = make_app()
    app.state.model = FakeModel()  # type: ignore[assignment]
    deep = b"[" * 5000 + b"]" * 5000
    for path in ("/invocations", "/v2/models/iris-prod/infer"):
        status, out = call(app, "POST", path, deep)
        assert status == 400 and b"nests deeper than 1024 levels" in out


def test_a_binary_tensor_request_is_refused_naming_the_extension() -> None:
    app = make_app()
    app.state.model = FakeModel()  # type: ignore[assignment]
    status, _, out = call_with_headers(
        app,
        "POST",
        "/v2/models/iris-prod/infer",
        b'{"inputs":[]}' + b"\0" * 16,
        "application/octet-stream",
        [(b"inference-header-content-length", b"13")],
    )
    assert status == 415 and b"binary tensor extension" in out


def test_model_metadata_lists_the_signature_outputs() -> None:
    from mlflow.types import ColSpec, Schema, TensorSpec

    app = make_app()
    model = FakeModel()
    model.output_schema = Schema([TensorSpec(np.dtype(np.float64), (-1, 3))])
    app.state.model = model  # type: ignore[assignment]
    status, out = call(app, "GET", "/v2/models/iris-prod")
    doc = orjson.loads(out)
    assert status == 200
    assert doc["inputs"] == [
        {"name": "a", "datatype": "FP64", "shape": [-1]},
        {"name": "b", "datatype": "FP64", "shape": [-1]},
    ]
    assert doc["outputs"] == [{"name": "output-0", "datatype": "FP64", "shape": [-1, 3]}]
    model.output_schema = Schema([ColSpec("long", "label"), ColSpec("string", "why")])
    doc = orjson.loads(call(app, "GET", "/v2/models/iris-prod")[1])
    assert doc["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "why", "datatype": "BYTES", "shape": [-1]},
    ]
    model.output_schema = None
    assert orjson.loads(call(app, "GET", "/v2/models/iris-prod")[1])["outputs"] == []


def test_body_limit() -> None:
    app = make_app(MLOPS_MAX_BODY_BYTES="10")
    app.state.model = FakeModel()  # type: ignore[assignment]
    assert call(app, "POST", "/invocations", split([[1, 2]]))[0] == 413


def test_metrics_count_requests_rows_and_drift() -> None:
    app = make_app()
    model = FakeModel()
    app.state.model = model  # type: ignore[assignment]
    rng = np.random.default_rng(0)
    train = rng.normal(size=(1000, 2))
    import pandas as pd

    base = profiles.compute_profile(pd.DataFrame(train, columns=["a", "b"]))
    monitor = DriftMonitor(base, window=100, min_rows=10)
    app.state.drift = monitor
    app.metrics.add_drift(monitor)
    for _ in range(3):
        call(app, "POST", "/invocations", split(rng.random(size=(5, 2)).tolist()))
    call(app, "POST", "/invocations", split([[1, "x"]]))
    _, text = call(app, "GET", "/metrics")
    lines = text.decode().splitlines()

    def value(prefix: str) -> float:
        hits = [ln for ln in lines if ln.startswith(prefix)]
        assert len(hits) == 1, (prefix, hits)
        return float(hits[0].rsplit(" ", 1)[1])

    # the version comes from MODEL_URI: a canary's analysis selects its pods by it
    base_labels = 'model_deployment="iris-prod",model_version="3",namespace="ml"'
    ok = f'mlops_runtime_requests_total{{{base_labels},route="/invocations",status="200"}}'
    bad = f'mlops_runtime_requests_total{{{base_labels},route="/invocations",status="400"}}'
    assert value(ok) == 3
    assert value(bad) == 1
    assert value(f'mlops_runtime_predicted_rows_total{{{base_labels},route="/invocations"}}') == 15
    assert value(f"mlops_drift_window_rows{{{base_labels}}}") == 15
    assert value(f"mlops_drift_psi{{{base_labels}}}") >= 0
    assert value(f'mlops_feature_drift_psi{{feature="a",{base_labels}}}') >= 0
    assert "mlops_prediction_drift_psi" not in text.decode()  # baseline has no predictions


# --- settings ------------------------------------------------------------------------------


def test_settings_defaults_and_names() -> None:
    cfg = RuntimeConfig.from_env({"MODEL_URI": "models:/fraud/7"})
    assert cfg.model_name == "fraud" and cfg.model_deployment == "fraud"
    assert cfg.port == 8080 and cfg.drift and cfg.namespace == ""
    assert cfg.model_version == "7"
    assert RuntimeConfig.from_env({"MODEL_URI": "models:/fraud@champion"}).model_version == ""
    pinned = {"MODEL_URI": "/models/fraud", "MLOPS_MODEL_VERSION": "12"}
    assert RuntimeConfig.from_env(pinned).model_version == "12"
    cfg = RuntimeConfig.from_env(
        {
            "MODEL_URI": "models:/fraud/7",
            "MODEL_NAME": "fd",
            "MLOPS_MODEL_DEPLOYMENT": "fd",
            "PORT": "9000",
            "MLOPS_DRIFT": "off",
        }
    )
    assert (cfg.model_name, cfg.port, cfg.drift) == ("fd", 9000, False)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"MODEL_URI": "models:/m/1", "PORT": "http"},
        {"MODEL_URI": "models:/m/1", "PORT": "70000"},
        {"MODEL_URI": "models:/m/1", "MLOPS_DRIFT": "maybe"},
        {"MODEL_URI": "models:/m/1", "MODEL_NAME": "a/b"},
        {"MODEL_URI": "models:/m/1", "MLOPS_DRAIN_SECONDS": "-1"},
        {"MODEL_URI": "models:/m/1", "MLOPS_WORKERS": "0"},
    ],
)
def test_bad_settings_are_one_line_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        RuntimeConfig.from_env(env)


def test_parse_model_uri() -> None:
    assert parse_model_uri("models:/fraud/7") == ModelRef("models:/fraud/7", "fraud", "7")
    assert parse_model_uri("models:/fraud@champion").version == "@champion"
    assert parse_model_uri("/models/fraud/").name == "fraud"


def test_requirement_check_reports_only_real_mismatches(tmp_path: Path) -> None:
    from importlib import metadata

    numpy_version = metadata.version("numpy")
    (tmp_path / "requirements.txt").write_text(
        f"numpy=={numpy_version}\nscikit-learn==0.0.1\nno-such-dist==1.0\n-r other.txt\n"
    )
    assert check_requirements(tmp_path) == [
        f"scikit-learn 0.0.1 (installed: {metadata.version('scikit-learn')})",
        "no-such-dist 1.0 (installed: not installed)",
    ]
    assert check_requirements(tmp_path / "absent") == []


def test_the_runtime_docs_table_is_generated_from_the_model() -> None:
    from pathlib import Path

    from mlops_operator.runtime import config

    doc = Path(__file__).resolve().parents[2] / "docs" / "runtime.md"
    text = doc.read_text()
    assert config.render_docs(text) == text, "run `make docs`"
    # every variable the operator sets on a model pod is a documented runtime setting
    from mlops_operator.builders.model_deployment import get_env
    from tests.support.objects import CTX, MODEL, OWNER, make_spec

    set_by_operator = {e["name"] for e in get_env(OWNER, make_spec(), MODEL, CTX)} - {"HOME"}
    assert set_by_operator <= set(RuntimeConfig.documented())


def test_the_prestop_drain_turns_readiness_off_and_closes_every_connection() -> None:
    app = make_app(MLOPS_DRAIN_DELAY_SECONDS="0.05")
    app.state.model = FakeModel()  # type: ignore[assignment]
    status, headers, _ = call_with_headers(app, "GET", "/v2/health/ready")
    assert status == 200 and b"connection" not in headers  # keep-alive as usual
    started = time.perf_counter()
    status, _, body = call_with_headers(app, "GET", "/-/drain")
    assert status == 200 and body == b'{"drained":true}'
    assert time.perf_counter() - started >= 0.05  # it holds the preStop hook that long
    status, headers, _ = call_with_headers(app, "GET", "/v2/health/ready")
    assert status == 503 and headers[b"connection"] == b"close"
    # predictions still answer (the client's request in flight), and close their connection
    status, headers, _ = call_with_headers(
        app,
        "POST",
        "/invocations",
        b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
    )
    assert status == 200 and headers[b"connection"] == b"close"
    assert call(app, "POST", "/-/drain")[0] == 405


def test_concurrent_requests_on_both_protocols_share_model_calls_and_get_their_own_rows() -> None:
    """On the predict thread (MLOPS_PREDICT_THREADS=1), requests that arrive while the model is
    busy are scored in one call (runtime/batching.py); each caller gets its own rows."""
    calls: list[int] = []

    class SlowModel(FakeModel):
        def predict(self, parsed: Parsed) -> tuple[Any, Any]:
            time.sleep(0.05)
            assert parsed.frame is not None
            calls.append(len(parsed.frame))
            return super().predict(parsed)

    app = make_app(MLOPS_PREDICT_THREADS="1")
    app.state.model = SlowModel()  # type: ignore[assignment]

    def oip(a: float) -> bytes:
        tensor = {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [a, 1]}
        return orjson.dumps({"inputs": [tensor]})

    async def scenario() -> list[tuple[int, bytes]]:
        bodies = [(split([[i, 1]] * (i + 1)), "/invocations") for i in range(6)]
        bodies += [(oip(100 + i), "/v2/models/iris-prod/infer") for i in range(3)]
        return await asyncio.gather(*(acall(app, "POST", p, b) for b, p in bodies))

    out = asyncio.run(scenario())
    assert all(status == 200 for status, _ in out), out
    for i in range(6):
        assert orjson.loads(out[i][1]) == {"predictions": [i + 1.0] * (i + 1)}
    for i in range(3):
        assert orjson.loads(out[6 + i][1])["outputs"][0]["data"] == [101.0 + i]
    assert len(calls) < 9 and sum(calls) == sum(range(1, 7)) + 3, calls
    text = app.metrics.render().decode()
    assert "mlops_runtime_batch_size_count" in text


# --- several workers (MLOPS_WORKERS): peers over unix sockets in this one process -----------


def pair(tmp_path: Path, **env: str) -> tuple[RuntimeApp, RuntimeApp]:
    a, b = (make_app(WorkerGroup(i, 2, tmp_path), MLOPS_WORKERS="2", **env) for i in range(2))
    return a, b


def test_a_pod_of_two_workers_is_ready_only_when_both_are(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    a.serve_model(FakeModel())  # type: ignore[arg-type]
    assert call(a, "GET", "/v2/health/ready")[0] == 503  # b still loads
    assert call(a, "GET", "/v2/models/iris-prod/ready")[0] == 503
    assert call(a, "POST", "/invocations", split([[1, 2]]))[0] == 200  # a itself can score
    b.serve_model(FakeModel())  # type: ignore[arg-type]
    assert call(a, "GET", "/v2/health/ready")[0] == 200
    assert call(b, "GET", "/v2/health/ready")[0] == 200
    b.begin_drain()
    assert call(a, "GET", "/v2/health/ready")[0] == 503


def test_one_scrape_adds_up_both_workers_and_drain_reaches_both(tmp_path: Path) -> None:
    a, b = pair(tmp_path, MLOPS_DRAIN_DELAY_SECONDS="0")
    for app in (a, b):
        app.serve_model(FakeModel())  # type: ignore[arg-type]

    async def scenario() -> None:
        server = await peers.serve(b.group, b.peer_commands())  # type: ignore[arg-type]
        try:
            for app, n in ((a, 2), (b, 3)):
                for _ in range(n):
                    assert (await acall(app, "POST", "/invocations", split([[1, 2]])))[0] == 200
            status, text = await acall(a, "GET", "/metrics")
            assert status == 200
            ok = (
                'mlops_runtime_requests_total{model_deployment="iris-prod",model_version="3",'
                'namespace="ml",route="/invocations",status="200"} 5.0'
            )
            assert ok in text.decode()
            assert 'mlops_runtime_workers{model_deployment="iris-prod"' in text.decode()
            # the preStop call reaches a only; b drains too
            assert (await acall(a, "GET", "/-/drain"))[0] == 200
            assert b.state.draining and not b.group.all_ready()  # type: ignore[union-attr]
        finally:
            server.close()
            await server.wait_closed()
        # a peer that does not answer fails the scrape rather than lowering the totals
        status, body = await acall(a, "GET", "/metrics")
        assert status == 503 and b"worker(s) 1 of 2 did not answer" in body

    asyncio.run(scenario())
