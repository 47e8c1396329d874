"""Runs the operator process: metrics server, webhook receiver, leader election, then kopf.

Start it with `mlops-operator run` (cli.py), which validates the settings first. `kopf run`
is not a way in: the clients and queues are built by wiring.py and handed to kopf as its
memo, which only this module does.

With leader election on, kopf starts only once this process holds the Lease (leader.py);
until then it stands by, serving /healthz and /metrics. Losing the Lease ends the process at
once, as controller-runtime does: a half-stopped kopf could still write while the new leader
starts, and the Deployment's restart makes this replica a standby again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import sys

import kopf
from aiohttp import web

from mlops_operator import metrics, wiring
from mlops_operator.seams import PRODUCTION, Seams
from mlops_operator.settings import Settings
from mlops_operator.webhooks.receiver import Receiver, tls_context
from mlops_operator.webhooks.receiver import serve as serve_webhooks

log = logging.getLogger(__name__)

EXIT_LEADERSHIP_LOST = 3


def run_operator(settings: Settings, seams: Seams = PRODUCTION) -> int:
    import mlops_operator.handlers  # noqa: F401  (registers the handlers with kopf)

    return asyncio.run(_run(settings, seams))


async def _kopf(settings: Settings, seams: Seams, receiver: Receiver | None) -> None:
    from kopf._core.engines.peering import Identity  # kopf does not re-export the type

    from mlops_operator.leader import default_identity

    wired = wiring.build(settings, seams, observer=metrics.METRICS)
    if receiver is not None:
        receiver.sink = wired.alias_moved
    log.info(
        "mlops-operator started: MLflow %s, resync %ss, namespaces %s",
        settings.mlflow_tracking_uri,
        settings.resync_seconds,
        list(settings.namespaces) or "all",
    )
    namespaces = list(settings.namespaces)
    ready, stop = asyncio.Event(), asyncio.Event()
    signals = asyncio.create_task(_stop_on_signals(ready, stop), name="signals")
    try:
        await kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,
            settings=wiring.kopf_settings(),
            memo=wired.memo,
            # kopf's own default asks getpass for the user name, which fails for a numeric uid
            # with no passwd entry (the image's 65532, as Pod Security `restricted` wants)
            identity=Identity(default_identity()),
            ready_flag=ready,
            stop_flag=stop,
        )
    finally:
        if receiver is not None:
            receiver.sink = None
        signals.cancel()
        await wired.close()


async def _stop_on_signals(ready: asyncio.Event, stop: asyncio.Event) -> None:
    """Once kopf is up (it installs its own handlers at start), SIGTERM and SIGINT set `stop`.
    kopf's handlers resolve a future, and a second signal while stopping (Ctrl+C twice, a
    SIGTERM after a SIGINT) raised InvalidStateError from inside the event loop; setting an
    Event twice is nothing."""
    await ready.wait()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop_once, stop, sig)


def _stop_once(stop: asyncio.Event, sig: signal.Signals) -> None:
    if not stop.is_set():
        log.info("%s received: stopping", sig.name)
    stop.set()


async def _run(settings: Settings, seams: Seams) -> int:
    servers: list[web.AppRunner] = []
    receiver = None
    try:
        if settings.metrics_port:
            try:
                servers.append(await metrics.serve(settings.metrics_port))
            except OSError as e:
                log.error("cannot serve metrics on port %d: %s", settings.metrics_port, e)
                return 2
        if settings.webhook_port:
            # a standby serves it too, answering 503 (MLflow retries) until it leads
            receiver = Receiver((settings.webhook_secret,), settings.webhook_tolerance_seconds)
            try:
                tls = tls_context(settings.webhook_cert_file, settings.webhook_key_file)
                servers.append(await serve_webhooks(receiver, settings.webhook_port, tls))
            except (OSError, ssl.SSLError) as e:
                log.error("cannot serve webhooks on port %d: %s", settings.webhook_port, e)
                return 2
        if not settings.leader_election:
            metrics.METRICS.set_leader(True)
            await _kopf(settings, seams, receiver)
            return 0
        return await _run_elected(settings, seams, receiver)
    finally:
        for server in servers:
            await server.cleanup()


async def _run_elected(settings: Settings, seams: Seams, receiver: Receiver | None) -> int:
    elector, store = wiring.build_elector(settings, on_change=metrics.METRICS.set_leader)
    metrics.METRICS.set_leader(False)
    log.info(
        "leader election: candidate %s for Lease %s/%s",
        elector.identity,
        store.namespace,
        settings.leader_election_name,
    )
    try:
        await elector.acquire()
        log.info("leader election: %s is the leader, starting to reconcile", elector.identity)
        operator = asyncio.create_task(_kopf(settings, seams, receiver), name="kopf")
        holding = asyncio.create_task(elector.hold(), name="leader-election")
        done, _ = await asyncio.wait({operator, holding}, return_when=asyncio.FIRST_COMPLETED)
        if holding in done:
            log.error("leader election lost (%s): exiting at once", holding.result())
            _exit_now(EXIT_LEADERSHIP_LOST)
        holding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holding
        # kopf stopped (SIGTERM) or failed: either way hand the Lease over before leaving
        await elector.release()
        operator.result()
        return 0
    finally:
        await store.close()


def _exit_now(code: int) -> None:
    for h in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            h.flush()
    sys.stderr.flush()
    os._exit(code)
