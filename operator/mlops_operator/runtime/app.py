"""The ASGI application: routes, JSON errors and request metrics, with no web framework.

Why no framework: the same trivial endpoint under the same uvicorn (uvloop + httptools), on
this project's 2-core machine under load, answered at p50 203 us as a bare ASGI callable,
237 us with Starlette and 369 us with FastAPI at concurrency 1, and 7,100 / 3,060 / 2,100
requests/s at concurrency 8. The protocol surface is small and fixed, so it is written out here.

The model runs on a small thread pool (MLOPS_PREDICT_THREADS, default 1) rather than on the
event loop: inline was 5-15% faster for a sub-millisecond model, but a slow model would then
stall liveness probes and /metrics behind it. Set 0 for tiny models if that trade suits.

Routes (``{model}`` is MODEL_NAME; ``/versions/{v}`` may follow it):
    GET  /v2/health/live  /v2/health/ready  /v2  /v2/models/{model}  /v2/models/{model}/ready
    POST /v2/models/{model}/infer
    POST /invocations     GET /ping  /health  /version
    GET  /metrics

Client mistakes get 4xx with a JSON body naming the problem; a failure inside the server gets
500 with a generic message, and the traceback goes to the log only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlops_operator.contract import ROUTE_DRAIN, ROUTE_INFER, ROUTE_INVOCATIONS
from mlops_operator.runtime import codec, oip, peers
from mlops_operator.runtime.batching import Batcher
from mlops_operator.runtime.codec import BadRequest
from mlops_operator.runtime.config import RuntimeConfig
from mlops_operator.runtime.drift import DriftMonitor
from mlops_operator.runtime.http import (
    Handler,
    HttpError,
    Receive,
    Response,
    Scope,
    Send,
    error,
    header,
    rows_of,
)
from mlops_operator.runtime.metrics import CONTENT_TYPE, RuntimeMetrics
from mlops_operator.runtime.model import LoadedModel
from mlops_operator.runtime.peers import WorkerGroup
from mlops_operator.runtime.schema import tensor_metadata
from mlops_operator.runtime.shadow import Mirror

log = logging.getLogger("mlops_operator.runtime")

# the header that marks a request of the OIP binary tensor extension (Triton's, KServe's)
BINARY_HEADER = b"inference-header-content-length"
TEXT = b"text/plain; charset=utf-8"
VERSION = "0.1.0"
# bodies and answers up to this many bytes are decoded and encoded on the event loop; an
# answer's size is guessed from its rows
INLINE_LIMIT, ROW_BYTES = 64 * 1024, 32


class ServingState:
    """What the probes report: loaded model (or load error), and whether we are draining."""

    def __init__(self) -> None:
        self.model: LoadedModel | None = None
        self.load_error: str | None = None
        self.draining = False
        self.drift: DriftMonitor | None = None

    @property
    def ready(self) -> bool:
        return self.model is not None and not self.draining


class RuntimeApp:
    """ASGI 3 application serving one model."""

    def __init__(
        self, config: RuntimeConfig, metrics: RuntimeMetrics, group: WorkerGroup | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.state = ServingState()
        # one of several workers of the pod (runtime/peers.py); None: the only one
        self.group = group
        self._executor = (
            ThreadPoolExecutor(config.predict_threads, thread_name_prefix="predict")
            if config.predict_threads > 0
            else None
        )
        name = config.model_name
        s = self.metrics.shadow
        self.mirror = (
            Mirror(
                config.shadow_file,
                config.model_version,
                s,
                queue_size=config.shadow_queue,
                workers=config.shadow_concurrency,
                timeout_seconds=config.shadow_timeout_seconds,
            )
            if config.shadow_file
            else None
        )
        self._batcher = Batcher(
            self._predict,
            self._run,
            self._observe,
            max_size=config.batch_max_size if self._executor is not None else 1,
            max_wait=config.batch_max_wait_ms / 1000,
            on_batch=self.metrics.observe_batch,
        )
        self._model_prefix = f"/v2/models/{name}"
        self._get: dict[str, tuple[str, Callable[[], Response]]] = {
            "/v2/health/live": ("/v2/health/live", self._live),
            "/v2/health/ready": ("/v2/health/ready", self._ready),
            "/v2": ("/v2", self._server_metadata),
            "/ping": ("/ping", self._ping),
            "/health": ("/health", self._ping),
            "/version": ("/version", self._version),
            "/metrics": ("/metrics", self._metrics),
        }

    # --- the serving state, for this worker and its peers -------------------------------

    def serve_model(self, model: LoadedModel) -> None:
        """The model has loaded: serve it (ready unless draining already)."""
        self.state.model = model
        if not self.state.draining:
            self.metrics.ready.set(1)
            if self.group is not None:
                self.group.mark_ready(True)

    def begin_drain(self) -> None:
        """Not ready from now on; answers close their connections."""
        self.state.draining = True
        self.metrics.ready.set(0)
        if self.group is not None:
            self.group.mark_ready(False)

    def _pod_ready(self) -> bool:
        # the kernel sends a connection to any worker: the pod is ready when all of them are
        return self.state.ready and (self.group is None or self.group.all_ready())

    def peer_commands(self) -> peers.Commands:
        """What the other workers of the pod may ask of this one."""
        return peers.commands(lambda: json.dumps(self.metrics.payload()).encode(), self.begin_drain)

    # --- ASGI entry ----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not served
        start = time.perf_counter()
        self.metrics.in_flight.inc()
        route = "unmatched"
        try:
            route, handler = self._resolve(scope["method"], scope["path"])
            resp = await handler(scope, receive)
        except HttpError as e:
            resp = error(e.status, str(e), route)
        except BadRequest as e:
            resp = error(400, str(e), route)
        except Exception:
            log.exception("internal error serving %s %s", scope["method"], scope["path"])
            resp = error(500, "internal error while serving the request (see server log)", route)
        finally:
            self.metrics.in_flight.dec()
        headers = [
            (b"content-type", resp.content_type),
            (b"content-length", str(len(resp.body)).encode()),
        ]
        if self.state.draining:
            # the client reconnects, to a pod that stays, instead of keeping this connection
            # until the server closes it under a request in flight
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        await send({"type": "http.response.body", "body": resp.body})
        self.metrics.observe(route, resp.status, time.perf_counter() - start, resp.rows)
        if resp.copy is not None and resp.status == 200 and self.mirror is not None:
            self.mirror.offer(*resp.copy, resp.body)  # after the caller has its answer

    def _resolve(self, method: str, path: str) -> tuple[str, Handler]:
        """The route template (the metrics label) and its handler, or HttpError."""
        if path == ROUTE_INVOCATIONS:
            return path, self._post(method, self._invocations)
        if path == ROUTE_DRAIN:
            if method not in ("GET", "HEAD"):
                raise HttpError(405, "method not allowed; use GET")
            return path, self._drain
        if path == "/metrics" and self.group is not None:
            if method not in ("GET", "HEAD"):
                raise HttpError(405, "method not allowed; use GET")
            return path, self._metrics_of_all
        hit = self._get.get(path.rstrip("/") or path)
        if hit is not None:
            route, fn = hit
            return route, self._get_only(method, fn)
        if not path.startswith("/v2/models/"):
            raise HttpError(404, f"no route for {method} {path}")
        # /v2/models/{name}[/versions/{v}][/ready|/infer]
        parts = path[len("/v2/models/") :].rstrip("/").split("/")
        name, rest = parts[0], parts[1:]
        if name != self.config.model_name:
            raise HttpError(
                404,
                f"model {name!r} is not served here; this server serves {self.config.model_name!r}",
            )
        if len(rest) >= 2 and rest[0] == "versions":
            model = self.state.model
            if model is not None and model.ref.version and rest[1] != model.ref.version:
                raise HttpError(404, f"model {name!r} version {rest[1]!r} is not served here")
            rest = rest[2:]
        if not rest:
            return "/v2/models/{model}", self._get_only(method, self._model_metadata)
        if rest == ["ready"]:
            return "/v2/models/{model}/ready", self._get_only(method, self._model_ready)
        if rest == ["infer"]:
            return ROUTE_INFER, self._post(method, self._infer_oip)
        raise HttpError(404, f"no route for {method} {path}")

    @staticmethod
    def _get_only(method: str, fn: Callable[[], Response]) -> Handler:
        if method not in ("GET", "HEAD"):
            raise HttpError(405, "method not allowed; use GET")

        async def handler(scope: Scope, receive: Receive) -> Response:
            return fn()

        return handler

    @staticmethod
    def _post(method: str, handler: Handler) -> Handler:
        if method != "POST":
            raise HttpError(405, "method not allowed; use POST")
        return handler

    # --- health and metadata -------------------------------------------------------------

    async def _drain(self, scope: Scope, receive: Receive) -> Response:
        """The preStop hook: stop being ready, answer everything with Connection: close for
        drain_delay_seconds (clients move to the other pods), then let SIGTERM come."""
        if not self.state.draining:
            log.info("preStop: draining for %.0fs before SIGTERM", self.config.drain_delay_seconds)
        self.begin_drain()
        if self.group is not None:  # the preStop call reached this worker only
            await peers.drain_others(self.group)
        await asyncio.sleep(self.config.drain_delay_seconds)
        return Response(200, b'{"drained":true}')

    def _live(self) -> Response:
        return Response(200, b'{"live":true}')

    def _ready(self) -> Response:
        ready = self._pod_ready()
        return Response(200 if ready else 503, b'{"ready":true}' if ready else b'{"ready":false}')

    def _model_ready(self) -> Response:
        ready = self._pod_ready()
        body = {"name": self.config.model_name, "ready": ready}
        return Response(200 if ready else 503, codec.encode_json(body))

    def _ping(self) -> Response:
        # MLflow's scoring server answers /ping 200 once it can score: same meaning here
        if self.state.ready:
            return Response(200, b"\n", TEXT)
        raise HttpError(503, "model not loaded yet")

    def _version(self) -> Response:
        return Response(200, VERSION.encode(), TEXT)

    def _server_metadata(self) -> Response:
        body = {"name": "mlops-runtime", "version": VERSION, "extensions": []}
        return Response(200, codec.encode_json(body))

    def _model_metadata(self) -> Response:
        model = self._require_model()
        if model.schema is not None:
            inputs = [
                {"name": c.name, "datatype": c.type.oip_datatype, "shape": [-1]}
                for c in model.schema.columns
            ]
        else:
            inputs = tensor_metadata(model.mlflow_schema, "input")
        body = {
            "name": self.config.model_name,
            "versions": [model.ref.version] if model.ref.version else [],
            "platform": "mlflow",
            "inputs": inputs,
            "outputs": tensor_metadata(model.output_schema, "output"),
            "parameters": {"model_uri": model.ref.uri, "registered_model": model.ref.name},
        }
        return Response(200, codec.encode_json(body))

    def _metrics(self) -> Response:
        return Response(200, self.metrics.render(), CONTENT_TYPE.encode())

    async def _metrics_of_all(self, scope: Scope, receive: Receive) -> Response:
        """All workers' counts added up. A worker that does not answer fails the scrape: totals
        without it would fall, and Prometheus reads a counter that falls as a restart."""
        assert self.group is not None
        try:
            payloads = await peers.metrics_of_others(self.group)
        except peers.Unanswered as e:
            raise HttpError(503, str(e)) from None
        return Response(200, self.metrics.render_merged(payloads), CONTENT_TYPE.encode())

    # --- inference -----------------------------------------------------------------------

    def _require_model(self) -> LoadedModel:
        model = self.state.model
        if model is None:
            raise HttpError(503, "model not loaded yet")
        return model

    async def _invocations(self, scope: Scope, receive: Receive) -> Response:
        self._require_model()
        ctype = header(scope, b"content-type").split(";")[0].strip().lower()
        body = await self._read_body(receive)
        if ctype not in ("application/json", "text/csv"):
            raise HttpError(
                415,
                f"content type {ctype or '(none)'!r} is not supported; use application/json "
                "(or text/csv)",
            )
        model = self._require_model()
        if ctype == "text/csv":
            parsed = await self._near(len(body), codec.parse_csv, body, model.schema)
        else:
            parsed = await self._near(len(body), codec.parse_invocations, body, model.schema)
        data, predictions = await self._batcher.predict(parsed)
        out = await self._near(rows_of(data) * ROW_BYTES, codec.invocations_response, predictions)
        return Response(200, out, rows=rows_of(data), copy=(ROUTE_INVOCATIONS, ctype, body))

    async def _infer_oip(self, scope: Scope, receive: Receive) -> Response:
        self._require_model()
        if header(scope, BINARY_HEADER):
            raise HttpError(
                415,
                "the Open Inference Protocol binary tensor extension "
                "(Inference-Header-Content-Length) is not supported here; send every tensor "
                "as JSON 'data' (tritonclient: binary_data=False on inputs and outputs)",
            )
        body = await self._read_body(receive)
        model = self._require_model()
        parsed, request_id = await self._near(len(body), oip.parse_oip, body, model.schema)
        data, predictions = await self._batcher.predict(parsed)
        version = model.ref.version
        name = self.config.model_name
        size = rows_of(data) * ROW_BYTES
        out = await self._near(size, oip.oip_response, name, version, request_id, predictions)
        # the candidate serves another version: its unversioned path
        copy = (f"{self._model_prefix}/infer", "application/json", body)
        return Response(200, out, rows=rows_of(data), copy=copy)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._executor is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _near(self, size: int, fn: Callable[..., Any], *args: Any) -> Any:
        """Decoding and encoding: on the event loop for small requests (a thread hop costs
        more than the work), on the predict thread for big ones (the probes stay answered)."""
        if size <= INLINE_LIMIT:
            return fn(*args)
        return await self._run(fn, *args)

    def _predict(self, parsed: codec.Parsed) -> tuple[Any, Any]:
        return self._require_model().predict(parsed)

    def _observe(self, data: Any, predictions: Any) -> None:
        if self.state.drift is not None:
            self.state.drift.observe(data, predictions)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HttpError(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.config.max_body_bytes:
                raise HttpError(413, f"request body larger than {self.config.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
