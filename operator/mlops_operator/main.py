"""Starts kopf with the operator's handlers (`kopf run -m mlops_operator.main` works too).

Settings and the I/O clients are created once here and handed to the handlers through
kopf's memo, so handlers never read global configuration.

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
import sys

import kopf

from mlops_operator import metrics, workqueue
from mlops_operator.settings import Settings

log = logging.getLogger(__name__)

EXIT_LEADERSHIP_LOST = 3


def run_operator(settings: Settings) -> int:
    from mlops_operator import handlers

    handlers.register(settings)
    return asyncio.run(_run(settings))


async def _kopf(settings: Settings) -> None:
    from kopf._core.engines.peering import Identity  # kopf does not re-export the type

    from mlops_operator import handlers
    from mlops_operator.leader import default_identity

    namespaces = list(settings.namespaces)
    await kopf.operator(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=True,
        memo=handlers.make_memo(settings),
        # kopf's own default asks getpass for the user name, which fails for a numeric uid
        # with no passwd entry (the image's 65532, as Pod Security `restricted` wants)
        identity=Identity(default_identity()),
    )


async def _run(settings: Settings) -> int:
    workqueue.set_default_observer(metrics.METRICS)
    server = None
    if settings.metrics_port:
        try:
            server = await metrics.serve(settings.metrics_port)
        except OSError as e:
            log.error("cannot serve metrics on port %d: %s", settings.metrics_port, e)
            return 2
    try:
        if not settings.leader_election:
            metrics.METRICS.set_leader(True)
            await _kopf(settings)
            return 0
        return await _run_elected(settings)
    finally:
        if server is not None:
            await server.cleanup()


async def _run_elected(settings: Settings) -> int:
    from mlops_operator.clients.kube import load_credentials
    from mlops_operator.leader import (
        HttpLeaseStore,
        LeaderElector,
        Timing,
        default_identity,
        default_namespace,
    )

    namespace = default_namespace(settings.leader_election_namespace)
    store = HttpLeaseStore(load_credentials(), namespace, settings.leader_election_name)
    elector = LeaderElector(
        store,
        default_identity(),
        Timing.from_lease_duration(settings.leader_election_lease_seconds),
        on_change=metrics.METRICS.set_leader,
    )
    metrics.METRICS.set_leader(False)
    log.info(
        "leader election: candidate %s for Lease %s/%s",
        elector.identity,
        namespace,
        settings.leader_election_name,
    )
    try:
        await elector.acquire()
        log.info("leader election: %s is the leader, starting to reconcile", elector.identity)
        operator = asyncio.create_task(_kopf(settings), name="kopf")
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
