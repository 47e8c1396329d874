"""A FAKE of the Kubeflow Pipelines v2beta1 REST API, because a real KFP server (Argo
Workflows, MySQL, object store, a cluster that runs containers) cannot run on one machine.

What is real around it: the requests come from the real `kfp.Client` of the operator's
`kfp` backend; every request body and every response is (de)serialized through the models of
the `kfp-server-api` package, so a field the real API would not accept fails here too; and a
submitted run really executes: the inline pipeline spec is run by the project's local worker
(kfp's local runner), which trains and registers the model in the real MLflow fixture.
A platform spec (kfp-kubernetes' format) is parsed with kfp-kubernetes' own proto, and its
secretAsEnv is applied to the worker the way KFP's driver applies it to task pods, from a
Secret the test provides (read_secret).
What is faked: storage (in memory), run ids, the scheduler, and pods (one local worker runs
every task).

It serves exactly the calls kfp.Client makes for the backend: GET healthz; experiments list
(filter on display_name) and create; runs create, list (filter on display_name), get,
terminate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kfp_server_api
import yaml
from aiohttp import web

from tests.support.mlflow_server import free_port

API = "/apis/v2beta1"
# filter.proto's Predicate.Operation numbers (kfp.client.client._FILTER_OPERATIONS)
OPERATIONS = {
    0: "UNKNOWN",
    1: "EQUALS",
    2: "NOT_EQUALS",
    3: "GREATER_THAN",
    5: "GREATER_THAN_EQUALS",
    6: "LESS_THAN",
    7: "LESS_THAN_EQUALS",
    8: "IN",
    9: "IS_SUBSTRING",
}


class _Resp:
    """What ApiClient.deserialize expects: an object with .data holding the JSON text."""

    def __init__(self, data: Any) -> None:
        self.data = json.dumps(data)


_client = kfp_server_api.ApiClient()


def parse(body: Any, klass: str) -> Any:
    """Deserialize into a kfp-server-api model: unknown types fail as they would upstream."""
    return _client.deserialize(_Resp(body), klass)


def dump(model: Any) -> Any:
    return _client.sanitize_for_serialization(model)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class FakeRun:
    run: Any  # V2beta1Run
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    terminated: bool = False
    # the platform spec's kubernetes executor configs, checked against kfp-kubernetes' proto
    executors: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # what secretAsEnv put into the tasks


@dataclass
class FakeKfp:
    root: Path
    port: int = field(default_factory=free_port)
    runs: dict[str, FakeRun] = field(default_factory=dict)
    experiments: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # held runs report RUNNING and start only on release(): "a run still going", on demand
    hold: bool = False
    # how KFP's driver reads a Secret of its namespace by name (None: absent); a test that
    # submits secretAsEnv sets it
    read_secret: Callable[[str], dict[str, str] | None] | None = None
    _runner: web.AppRunner | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --------------------------------------------------------------- handlers

    def _filter_name(self, request: web.Request) -> str | None:
        raw = request.query.get("filter")
        if not raw:
            return None
        # The server reads the filter as protobuf JSON, which takes camelCase or snake_case
        # names and enums by name or number; kfp.Client itself sends stringValue and 1.
        doc = json.loads(raw)
        for p in doc.get("predicates", []):
            for k in list(p):
                snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k)
                p[snake] = p.pop(k)
            if isinstance(p.get("operation"), int):
                p["operation"] = OPERATIONS[p["operation"]]
        flt = parse(doc, "V2beta1Filter")
        for pred in flt.predicates or []:
            assert pred.key == "display_name" and pred.operation == "EQUALS", pred
            return str(pred.string_value)
        return None

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response(dump(kfp_server_api.V2beta1GetHealthzResponse(multi_user=False)))

    async def list_experiments(self, request: web.Request) -> web.Response:
        name = self._filter_name(request)
        exps = [e for e in self.experiments.values() if name is None or e.display_name == name]
        return web.json_response(
            dump(
                kfp_server_api.V2beta1ListExperimentsResponse(
                    experiments=exps, total_size=len(exps)
                )
            )
        )

    async def create_experiment(self, request: web.Request) -> web.Response:
        exp = parse(await request.json(), "V2beta1Experiment")
        assert exp.display_name, "an experiment needs a display_name"
        exp.experiment_id = str(uuid.uuid4())
        exp.created_at = _now()
        exp.storage_state = "AVAILABLE"
        self.experiments[exp.experiment_id] = exp
        return web.json_response(dump(exp))

    async def create_run(self, request: web.Request) -> web.Response:
        run = parse(await request.json(), "V2beta1Run")
        assert run.display_name and run.pipeline_spec, "a run needs a name and a pipeline spec"
        assert run.experiment_id in self.experiments, "unknown experiment"
        run.run_id = str(uuid.uuid4())
        run.created_at = _now()
        run.state = "PENDING"
        workdir = self.root / run.run_id
        workdir.mkdir(parents=True)
        fake = FakeRun(run, workdir)
        self.runs[run.run_id] = fake
        if self.hold:
            run.state = "RUNNING"
        else:
            self._start(fake)
        return web.json_response(dump(run))

    def _platform(self, fake: FakeRun) -> dict[str, Any]:
        """Split a submitted {pipeline_spec, platform_spec}; parse the kubernetes executor
        configs with kfp-kubernetes' proto, as the KFP driver does (unknown fields fail)."""
        spec = fake.run.pipeline_spec
        if "pipeline_spec" not in spec:
            return dict(spec)
        from google.protobuf import json_format
        from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s
        from kfp.pipeline_spec import pipeline_spec_pb2

        platform = spec.get("platform_spec") or {}
        json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
        kube = (platform.get("platforms") or {}).get("kubernetes") or {}
        for name, cfg in ((kube.get("deploymentSpec") or {}).get("executors") or {}).items():
            parsed = json_format.ParseDict(cfg, k8s.KubernetesExecutorConfig())
            fake.executors[name] = json_format.MessageToDict(parsed)
        return dict(spec["pipeline_spec"])

    def _secret_env(self, fake: FakeRun) -> dict[str, str]:
        """secretAsEnv as the driver applies it. The fake runs every task in one worker
        process, so the executors' env is merged (the operator gives all the same)."""
        env: dict[str, str] = {}
        for cfg in fake.executors.values():
            for ref in cfg.get("secretAsEnv", []):
                name = ref.get("secretNameParameter", {}).get("runtimeValue", {}).get(
                    "constant"
                ) or ref.get("secretName")
                data = self.read_secret(name) if self.read_secret else None
                if data is None:
                    assert ref.get("optional"), f"Secret {name} not found"
                    continue
                for m in ref.get("keyToEnv", []):
                    if m["secretKey"] in data:
                        env[m["envVar"]] = data[m["secretKey"]]
                    else:
                        assert ref.get("optional"), f"Secret {name} has no {m['secretKey']}"
        return env

    def _start(self, fake: FakeRun) -> None:
        spec = self._platform(fake)
        fake.env = self._secret_env(fake)
        package = fake.workdir / "pipeline.yaml"
        package.write_text(yaml.safe_dump(spec, sort_keys=False))
        params = dict((fake.run.runtime_config.parameters or {}) if fake.run.runtime_config else {})
        with open(fake.workdir / "run.log", "ab") as log:
            fake.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlops_operator.pipelines.local_worker",
                    "--package",
                    str(package),
                    "--parameters-json",
                    json.dumps(params),
                    "--workdir",
                    str(fake.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **fake.env},
            )
        fake.run.state = "RUNNING"

    def release(self) -> None:
        """Start the held runs (thread-safe enough: runs only ever get added)."""
        self.hold = False
        for fake in list(self.runs.values()):
            if fake.process is None and not fake.terminated:
                self._start(fake)

    def _refresh(self, fake: FakeRun) -> None:
        if fake.terminated or fake.run.state in ("SUCCEEDED", "FAILED", "CANCELED"):
            return
        if fake.process is None or fake.process.poll() is None:
            return
        result_file = fake.workdir / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        fake.run.finished_at = _now()
        if result.get("status") == "Succeeded":
            fake.run.state = "SUCCEEDED"
        else:
            fake.run.state = "FAILED"
            fake.run.error = kfp_server_api.GooglerpcStatus(
                code=2, message=result.get("message", "the run failed")
            )

    async def list_runs(self, request: web.Request) -> web.Response:
        name = self._filter_name(request)
        runs = []
        for f in self.runs.values():
            self._refresh(f)
            if name is None or f.run.display_name == name:
                runs.append(f.run)
        return web.json_response(
            dump(kfp_server_api.V2beta1ListRunsResponse(runs=runs, total_size=len(runs)))
        )

    async def get_run(self, request: web.Request) -> web.Response:
        fake = self.runs.get(request.match_info["run_id"])
        if fake is None:
            return web.json_response({"code": 5, "message": "run not found"}, status=404)
        self._refresh(fake)
        return web.json_response(dump(fake.run))

    async def terminate(self, request: web.Request) -> web.Response:
        fake = self.runs.get(request.match_info["run_id"].removesuffix(":terminate"))
        if fake is None:
            return web.json_response({"code": 5, "message": "run not found"}, status=404)
        if fake.process and fake.process.poll() is None:
            os.killpg(fake.process.pid, signal.SIGTERM)
            fake.process.wait(10)
        fake.terminated = True
        fake.run.state = "CANCELED"
        fake.run.finished_at = _now()
        return web.json_response({})

    # --------------------------------------------------------------- lifecycle

    def _app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.requests.append((request.method, request.path))
            try:
                return await handler(request)  # type: ignore[no-any-return]
            except Exception as e:  # a request the real API would refuse, or a fake's bug
                import traceback

                entry = f"{request.method} {request.path_qs}\n{traceback.format_exc()}\n"
                log = self.root / "fake-kfp.log"
                old = log.read_text() if log.exists() else ""
                log.write_text(old + entry)
                return web.json_response({"code": 3, "message": f"fake KFP: {e!r}"}, status=400)

        app = web.Application(middlewares=[record])
        app.router.add_get(f"{API}/healthz", self.healthz)
        app.router.add_get(f"{API}/experiments", self.list_experiments)
        app.router.add_post(f"{API}/experiments", self.create_experiment)
        app.router.add_get(f"{API}/runs", self.list_runs)
        app.router.add_post(f"{API}/runs", self.create_run)
        app.router.add_get(API + "/runs/{run_id}", self.get_run)
        app.router.add_post(API + "/runs/{run_id}", self.terminate)  # {id}:terminate
        return app

    def start(self) -> FakeKfp:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._runner = web.AppRunner(self._app())
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        for f in self.runs.values():
            if f.process and f.process.poll() is None:
                os.killpg(f.process.pid, signal.SIGKILL)
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
