"""Starts kopf with the operator's handlers (`kopf run -m mlops_operator.main` works too).

Settings and the I/O clients are created once here and handed to the handlers through
kopf's memo, so handlers never read global configuration.
"""

from __future__ import annotations

import asyncio
import logging

import kopf

from mlops_operator.settings import Settings

log = logging.getLogger(__name__)


def run_operator(settings: Settings) -> int:
    from mlops_operator import handlers

    handlers.register(settings)
    namespaces = list(settings.namespaces)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,
            memo=handlers.make_memo(settings),
        )
    )
    return 0
