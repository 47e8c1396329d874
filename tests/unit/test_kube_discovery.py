"""HttpKube.serves() (whether the API server serves a kind) and its request timeout, asked of a
small real HTTP server (aiohttp) that answers like the discovery endpoints do. The real API
server's answer is exercised by tests/integration/test_slo.py (with and without the
PrometheusRule CRD)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from mlops_operator.clients import kube
from mlops_operator.clients.kube import Credentials, HttpKube
from mlops_operator.contract import PROMETHEUS_RULE_API_VERSION, PROMETHEUS_RULE_KIND

pytestmark = pytest.mark.unit

KIND = (PROMETHEUS_RULE_API_VERSION, PROMETHEUS_RULE_KIND)
Handler = Callable[[web.Request], Awaitable[web.Response]]


@contextlib.asynccontextmanager
async def serving(
    path: str, handler: Handler, client_timeout: float = 30.0
) -> AsyncIterator[HttpKube]:
    """An HttpKube client of a real local HTTP server that answers GET `path` with `handler`."""
    app = web.Application()
    app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    creds = Credentials(f"http://127.0.0.1:{port}", ssl.create_default_context(), None)
    client = HttpKube(creds, timeout=client_timeout)
    try:
        yield client
    finally:
        await client.close()
        await runner.cleanup()


async def scenario(answers: list[Any], monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """serves() once per answer: a dict is the group's resource list, an int a status code."""
    hits: list[int] = []

    async def group(_: web.Request) -> web.Response:
        hits.append(1)
        answer = answers[len(hits) - 1]
        if isinstance(answer, int):
            return web.json_response({"reason": "x", "message": "x"}, status=answer)
        return web.json_response(answer)

    monkeypatch.setattr(kube, "DISCOVERY_SECONDS", 0.0)  # ask every time
    async with serving("/apis/monitoring.coreos.com/v1", group) as client:
        return [await client.serves(*KIND) for _ in answers]


def test_served_only_when_the_group_lists_the_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = {"resources": [{"name": "prometheusrules"}, {"name": "servicemonitors"}]}
    other = {"resources": [{"name": "servicemonitors"}]}
    got = asyncio.run(scenario([listed, other, 404], monkeypatch))
    assert got == [True, False, False]


def test_a_discovery_error_keeps_the_last_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = {"resources": [{"name": "prometheusrules"}]}
    # a 503 after a yes stays yes (what serves does not flap on a blip); a first error says no
    assert asyncio.run(scenario([listed, 503], monkeypatch)) == [True, True]
    assert asyncio.run(scenario([503], monkeypatch)) == [False]


def test_a_request_slower_than_the_timeout_raises_a_transient_timeout() -> None:
    # MLOPS_API_TIMEOUT_SECONDS reaches the client: a server slower than it is a TimeoutError,
    # which the reconcilers report (ApiUnavailable) and retry with backoff
    async def run() -> BaseException | None:
        async def slow(_: web.Request) -> web.Response:
            await asyncio.sleep(5)
            return web.json_response({})

        async with serving("/api/v1/namespaces/ml/services/x", slow, client_timeout=0.3) as client:
            try:
                await client.get("v1", "Service", "ml", "x")
            except BaseException as e:
                return e
        return None

    e = asyncio.run(run())
    assert isinstance(e, TimeoutError)
    assert kube.transient(e)
    assert kube.describe(e) == "the API server did not answer in time"
