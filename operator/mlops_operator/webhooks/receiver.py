"""The HTTPS endpoint MLflow's registry webhooks are delivered to: POST /webhooks/mlflow.

Served from the operator's event loop on MLOPS_WEBHOOK_PORT, beside (not on) the metrics port:
it is the one port the operator opens to callers outside the cluster's control plane, so it has
its own TLS certificate and its own Service. A delivery that verify.py believes and that moves
or removes an alias wakes, at once, each ModelDeployment that follows that model and alias;
the periodic resync stays the backstop for any delivery that never arrives.

The answers follow what MLflow does with them: it retries on 429 and 5xx only, so a refused
delivery (401, 400, 409) is not sent again, and a standby replica's 503 is.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from mlops_operator import metrics
from mlops_operator.webhooks.verify import AliasEvent, Result, SeenDeliveries, verify

log = logging.getLogger(__name__)

PATH = "/webhooks/mlflow"
# MLflow's alias payloads are a few hundred bytes; this bounds what an unauthenticated caller
# can make the operator read and hash
MAX_BODY_BYTES = 64 * 1024

STATUS = {
    Result.ACCEPTED: 200,
    Result.IGNORED: 200,
    Result.FORGED: 401,
    Result.STALE: 400,
    Result.MALFORMED: 400,
    Result.REPLAYED: 409,
    Result.STANDBY: 503,
}


# Where accepted alias events go (wiring.py: the ModelDeployment queue); -> how many
# ModelDeployments were woken.
AliasSink = Callable[[AliasEvent], int]


@dataclass
class Receiver:
    secrets: tuple[str, ...]
    tolerance_seconds: float
    clock: Callable[[], float] = time.time
    # None until this process leads and its queues exist (main.py sets it, and clears it)
    sink: AliasSink | None = None
    seen: SeenDeliveries = field(init=False)

    def __post_init__(self) -> None:
        self.seen = SeenDeliveries(self.tolerance_seconds)

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return self._answer(Result.MALFORMED, f"body over {MAX_BODY_BYTES} bytes", "")
        try:
            body = await request.content.read(MAX_BODY_BYTES + 1)
        except (OSError, ValueError) as e:
            return self._answer(Result.MALFORMED, f"cannot read the body: {e}", "")
        if len(body) > MAX_BODY_BYTES:
            return self._answer(Result.MALFORMED, f"body over {MAX_BODY_BYTES} bytes", "")
        sink = self.sink
        if sink is None:
            # not recorded as seen: the leader must be able to accept MLflow's retry of it
            return self._answer(Result.STANDBY, "this replica is not the leader", "")
        v = verify(
            request.headers, body, self.secrets, self.clock(), self.tolerance_seconds, self.seen
        )
        woken = 0
        if v.event is not None:
            try:
                woken = sink(v.event)
            except Exception:  # a bug here must not turn into MLflow retrying for ever
                log.exception("webhook delivery %s: waking ModelDeployments failed", v.delivery_id)
        why = f"{v.why}: {woken} ModelDeployment(s) woken" if v.event else v.why
        return self._answer(v.result, why, v.delivery_id, woken)

    @staticmethod
    def _answer(result: Result, why: str, delivery_id: str, woken: int = 0) -> web.Response:
        metrics.observe_webhook(result.value)
        status = STATUS[result]
        level = logging.INFO if status < 300 else logging.WARNING
        log.log(level, "webhook delivery %s: %s (%s)", delivery_id or "-", result.value, why)
        body = {"result": result.value, "message": why, "woken": woken}
        return web.json_response(body, status=status)


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


async def serve(
    receiver: Receiver, port: int, tls: ssl.SSLContext, host: str = "0.0.0.0"
) -> web.AppRunner:
    """Start serving the receiver over HTTPS; the caller cleans the runner up."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(PATH, receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=tls).start()
    log.info("MLflow webhook receiver on https://%s:%d%s", host, port, PATH)
    return runner
