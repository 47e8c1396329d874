"""The workers of one pod (MLOPS_WORKERS above 1) and what they tell each other.

The supervisor (runtime/workers.py) makes a private directory and starts the workers; each one
serves the pod's port (SO_REUSEPORT: the kernel spreads connections over them) and, in that
directory, a unix socket of its own that answers one command per connection:

    metrics   this worker's metric families and drift-window counts (JSON, merge.py)
    drain     start draining, as if the preStop call had reached this worker

and a file ``ready-<i>`` while it has its model and is not draining. A probe, a scrape or the
preStop call reaches one worker, chosen by the kernel; through these it answers for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("mlops_operator.runtime")

# a peer busy for longer than this is treated as gone (its loop never runs the model)
ASK_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class WorkerGroup:
    index: int  # this worker's
    count: int
    dir: Path

    def socket(self, i: int) -> Path:
        return self.dir / f"worker-{i}.sock"

    def error_file(self, i: int) -> Path:
        return self.dir / f"error-{i}"

    def _ready_file(self, i: int) -> Path:
        return self.dir / f"ready-{i}"

    @property
    def peers(self) -> list[int]:
        return [i for i in range(self.count) if i != self.index]

    def mark_ready(self, ready: bool) -> None:
        path = self._ready_file(self.index)
        if ready:
            path.touch()
        else:
            path.unlink(missing_ok=True)

    def all_ready(self) -> bool:
        return all(self._ready_file(i).exists() for i in range(self.count))


Commands = dict[bytes, Callable[[], bytes]]


def commands(metrics: Callable[[], bytes], drain: Callable[[], None]) -> Commands:
    """The commands a worker answers: its ``metrics`` payload, and ``drain``."""

    def drain_too() -> bytes:
        log.info("another worker of the pod took the preStop call: draining too")
        drain()
        return b"ok"

    return {b"metrics": metrics, b"drain": drain_too}


async def serve(group: WorkerGroup, commands: Commands) -> asyncio.Server:
    """This worker's socket, answering ``commands`` (each returns the whole answer)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), ASK_TIMEOUT_SECONDS)
            command = commands.get(line.strip())
            writer.write(command() if command is not None else b"")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("answering a peer worker")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    path = group.socket(group.index)
    path.unlink(missing_ok=True)
    return await asyncio.start_unix_server(answer, path=str(path))


async def ask(path: Path, command: bytes) -> bytes:
    """The answer of the worker at ``path``; OSError or TimeoutError when it gives none
    within ASK_TIMEOUT_SECONDS."""

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_unix_connection(str(path))
        try:
            writer.write(command + b"\n")
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()

    answer = await asyncio.wait_for(exchange(), ASK_TIMEOUT_SECONDS)
    if not answer:
        raise OSError(f"{path}: no answer to {command.decode()!r}")
    return answer


class Unanswered(Exception):
    """Some of the other workers gave no answer."""


async def metrics_of_others(group: WorkerGroup) -> list[dict[str, Any]]:
    """The ``metrics`` answer of every other worker; Unanswered naming those that gave none."""
    answers = await asyncio.gather(
        *(ask(group.socket(i), b"metrics") for i in group.peers), return_exceptions=True
    )
    missing = [i for i, a in zip(group.peers, answers, strict=True) if not isinstance(a, bytes)]
    if missing:
        raise Unanswered(
            f"worker(s) {', '.join(map(str, missing))} of {group.count} did not answer"
        )
    return [json.loads(a) for a in answers if isinstance(a, bytes)]


async def drain_others(group: WorkerGroup) -> None:
    """Tell every other worker to drain; one that does not take it is logged (SIGTERM, which
    the supervisor hands on to all of them, follows anyway)."""
    answers = await asyncio.gather(
        *(ask(group.socket(i), b"drain") for i in group.peers), return_exceptions=True
    )
    for i, answer in zip(group.peers, answers, strict=True):
        if not isinstance(answer, bytes):
            log.warning("worker %d did not take the drain: %s", i, answer)
