"""Shadow traffic: copies of a share of the prediction requests, sent to a candidate version.

The operator says where and how much in the ConfigMap ``<name>-shadow``, which the pod mounts
(optional: absent means off) at SHADOW_CONFIG_DIR. The file is re-read at most every
POLL_SECONDS, on the request path, so starting or stopping a shadow never changes the pod
template and never restarts a pod. The kubelet refreshes a mounted ConfigMap on its pod sync
(every syncFrequency, 1 minute by default): a shadow starts that long after it is written.

A request the stable model answered 200 is offered to the mirror after its answer is sent: the
copy goes into a bounded queue (full: it is dropped and counted), and a few workers post the
copies to the candidate and compare its predictions with the ones the caller got. The caller
never waits for any of it. The candidate's answers are discarded; what is kept is the
comparison, in the metrics the operator's analysis reads (contract.METRIC_SHADOW_*).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_operator.runtime.metrics import ShadowMetrics

log = logging.getLogger("mlops_operator.runtime.shadow")

POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Target:
    url: str  # http://<address>:<port>, no path
    percent: float  # share of the answered prediction requests copied, 0-100
    version: str  # the candidate's model version (the metrics' shadow_version)


def parse_target(text: str) -> Target | None:
    """The ConfigMap's shadow.json; None when it says off. Raises ValueError when malformed."""
    if not text.strip():
        return None
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    percent = float(raw.get("percent", 0))
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be between 0 and 100, got {percent}")
    url, version = str(raw.get("target", "")), str(raw.get("version", ""))
    if percent == 0:
        return None
    if not url.startswith("http://") or not version:
        raise ValueError("target (http://host:port) and version are required")
    return Target(url.rstrip("/"), percent, version)


@dataclass(frozen=True)
class Comparison:
    predictions: int  # pairs compared (the longer answer's length)
    agreements: int  # identical ones
    numeric: int  # pairs where both are numbers
    absolute_error: float  # sum of |candidate - stable| over the numeric pairs
    relative_error: float  # sum of |candidate - stable| / |stable|


def predictions_of(answer: Any) -> list[Any]:
    """The predictions of an /invocations or an OIP answer, flattened in order."""
    if isinstance(answer, dict):
        if "predictions" in answer:
            return _flat(answer["predictions"])
        if "outputs" in answer:
            out: list[Any] = []
            for o in answer["outputs"] or []:
                out.extend(_flat(o.get("data") if isinstance(o, dict) else o))
            return out
    return _flat(answer)


def _flat(x: Any) -> list[Any]:
    if isinstance(x, list):
        return [y for item in x for y in _flat(item)]
    if isinstance(x, dict):
        return [y for key in sorted(x) for y in _flat(x[key])]
    return [x]


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def compare(stable: list[Any], candidate: list[Any]) -> Comparison:
    """Pair by position; an answer of another length disagrees on every missing pair."""
    agree = numeric = 0
    abs_sum = rel_sum = 0.0
    for s, c in zip(stable, candidate, strict=False):
        if _number(s) and _number(c):
            numeric += 1
            diff = abs(float(c) - float(s))
            abs_sum += diff
            if diff:
                rel_sum += diff / abs(float(s)) if s else 1.0
            agree += diff == 0
        else:
            agree += s == c
    return Comparison(max(len(stable), len(candidate)), agree, numeric, abs_sum, rel_sum)


def _report_end(task: asyncio.Task[None]) -> None:
    # a worker only ends by cancellation; anything else (an import that fails in the image)
    # would leave the queue to fill in silence
    if not task.cancelled() and task.exception() is not None:
        log.error("shadow worker stopped: %r; copies are dropped", task.exception())


@dataclass(frozen=True)
class Copy:
    target: Target
    path: str
    content_type: str
    body: bytes
    answer: bytes  # what the caller got


class Mirror:
    """The bounded queue and its workers; offer() never blocks and never raises."""

    def __init__(
        self,
        config_file: str,
        own_version: str,
        metrics: ShadowMetrics,
        *,
        queue_size: int = 256,
        workers: int = 4,
        timeout_seconds: float = 5.0,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self.path = Path(config_file) if config_file else None
        self.own_version = own_version
        self.metrics = metrics
        self.queue: asyncio.Queue[Copy] = asyncio.Queue(maxsize=queue_size)
        self.workers = workers
        self.timeout = timeout_seconds
        self.chance = chance
        self.target: Target | None = None
        self._raw: str | None = None
        self._checked = -math.inf
        self._tasks: list[asyncio.Task[None]] = []
        self._session: Any = None

    def refresh(self, now: float | None = None) -> Target | None:
        """Re-read the config file when POLL_SECONDS have passed since the last read."""
        now = time.monotonic() if now is None else now
        if self.path is None or now - self._checked < POLL_SECONDS:
            return self.target
        self._checked = now
        try:
            raw = self.path.read_text()
        except OSError:
            raw = ""  # not mounted, or the ConfigMap is gone: off
        if raw == self._raw:
            return self.target
        self._raw = raw
        try:
            target = parse_target(raw)
        except ValueError as e:
            log.warning("shadow config %s ignored: %s", self.path, e)
            target = None
        if target is not None and target.version == self.own_version:
            target = None  # a pod of the candidate's own version never copies to itself
        if target != self.target:
            if target is None:
                log.info("shadow off")
            else:
                log.info(
                    "shadow on: %g%% of requests copied to version %s at %s",
                    target.percent,
                    target.version,
                    target.url,
                )
        self.target = target
        self.metrics.percent.set(target.percent if target else 0)
        return target

    def offer(self, path: str, content_type: str, body: bytes, answer: bytes) -> None:
        target = self.refresh()
        if target is None or self.chance() * 100 >= target.percent:
            return
        try:
            self.queue.put_nowait(Copy(target, path, content_type, body, answer))
        except asyncio.QueueFull:
            self.metrics.outcome(target.version, "dropped")
            return
        if not self._tasks:
            self._tasks = [asyncio.ensure_future(self._work()) for _ in range(self.workers)]
            for t in self._tasks:
                t.add_done_callback(_report_end)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _work(self) -> None:
        import aiohttp  # only pods that shadow pay for the import

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=self.workers),
            )
        while True:
            copy = await self.queue.get()
            try:
                await self._send(copy, aiohttp)
            except Exception:  # a copy must never take its worker down
                log.exception("shadow copy failed")
                self.metrics.outcome(copy.target.version, "error")

    async def _send(self, copy: Copy, aiohttp: Any) -> None:
        version = copy.target.version
        start = time.perf_counter()
        try:
            async with self._session.post(
                copy.target.url + copy.path,
                data=copy.body,
                headers={"content-type": copy.content_type},
            ) as r:
                status, payload = r.status, await r.read()
        except TimeoutError:
            self.metrics.outcome(version, "timeout")
            return
        except (aiohttp.ClientError, OSError):
            self.metrics.outcome(version, "error")
            return
        self.metrics.duration(version, time.perf_counter() - start)
        if status != 200:
            # the stable version answered this request 200: anything else is the candidate's
            self.metrics.outcome(version, "error")
            return
        try:
            got = predictions_of(json.loads(payload))
            want = predictions_of(json.loads(copy.answer))
        except ValueError:
            self.metrics.outcome(version, "error")
            return
        self.metrics.outcome(version, "ok")
        self.metrics.compared(version, compare(want, got))
