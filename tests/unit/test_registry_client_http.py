"""The registry client's HTTP side without a registry: MLflow's credential variables are sent,
a server error reads as unavailable, and the operator process never imports MLflow."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys

import pytest
from aiohttp import web

from mlops_operator.clients.registry import MlflowRegistry, RegistryError
from mlops_operator.contract import Reason
from tests.support.operator_metrics import free_port

pytestmark = pytest.mark.unit


def test_mlflows_credential_variables_are_sent() -> None:
    """A small aiohttp server stands in for an MLflow behind authentication (the test MLflow
    has none): it records the Authorization header of each call and answers a 500, which must
    read as unavailable, never as a missing model."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"error_code": "INTERNAL_ERROR", "message": "boom"}, status=500)

    async def scenario() -> list[tuple[str, str]]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        uri = f"http://127.0.0.1:{port}"
        out = []
        try:
            for env in (
                {"MLFLOW_TRACKING_TOKEN": "t0k"},
                {"MLFLOW_TRACKING_USERNAME": "ann", "MLFLOW_TRACKING_PASSWORD": "pw"},
            ):
                reg = MlflowRegistry(uri, env=env)
                try:
                    await reg.resolve("m", "champion", None)
                except RegistryError as e:
                    out.append((e.reason, e.message))
                finally:
                    await reg.close()
        finally:
            await runner.cleanup()
        return out

    answers = asyncio.run(scenario())
    assert [r for r, _ in answers] == [Reason.REGISTRY_UNAVAILABLE] * 2, answers
    assert "500" in answers[0][1], answers
    assert seen == ["Bearer t0k", "Basic " + base64.b64encode(b"ann:pw").decode()], seen


def test_the_operator_process_never_imports_mlflow() -> None:
    # MLflow's client costs the operator about 120 MB; only the REST API is used
    code = (
        "import sys, mlops_operator.main, mlops_operator.wiring;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_request_timeout_is_mlflows_variable_or_ten_seconds() -> None:
    from mlops_operator.clients.registry import _timeout

    assert _timeout({}) == 10.0
    assert _timeout({"MLFLOW_HTTP_REQUEST_TIMEOUT": "3.5"}) == 3.5
    assert _timeout({"MLFLOW_HTTP_REQUEST_TIMEOUT": "ten"}) == 10.0
    assert _timeout({"MLFLOW_HTTP_REQUEST_TIMEOUT": "0"}) == 10.0


def test_forget_drops_the_cached_answer_and_one_under_way() -> None:
    """After an alias move (a webhook), the next resolve asks MLflow again, and a lookup that
    was under way before the move does not put its (old) answer back into the cache."""
    holder = {"version": "1"}
    release = asyncio.Event()
    asked: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("registered-models/alias"):
            asked.append(holder["version"])
            v = holder["version"]
            if v == "1" and len(asked) == 2:
                await release.wait()  # the second lookup is slow: the alias moves meanwhile
            return web.json_response({"model_version": {"version": v, "run_id": "r"}})
        return web.json_response({"artifact_uri": "mlflow-artifacts:/x"})

    async def scenario() -> list[str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        reg = MlflowRegistry(f"http://127.0.0.1:{port}", env={})
        try:
            first = (await reg.resolve("m", "champion", None)).version
            cached = (await reg.resolve("m", "champion", None)).version
            reg.forget("m", "champion")
            slow = asyncio.ensure_future(reg.resolve("m", "champion", None))
            await asyncio.sleep(0.2)
            holder["version"] = "2"
            reg.forget("m", "champion")  # the webhook of the move arrives mid-lookup
            fresh = (await reg.resolve("m", "champion", None)).version
            release.set()
            stale = (await slow).version
            after = (await reg.resolve("m", "champion", None)).version
        finally:
            await reg.close()
            await runner.cleanup()
        return [first, cached, stale, fresh, after]

    assert asyncio.run(scenario()) == ["1", "1", "1", "2", "2"]
