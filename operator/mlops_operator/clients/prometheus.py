"""Prometheus instant queries (the drift trigger reads the runtime's PSI through it)."""

from __future__ import annotations

from typing import Protocol

import aiohttp


class PrometheusError(Exception):
    pass


class Prometheus(Protocol):
    async def scalar(self, expr: str) -> float | None: ...


class HttpPrometheus:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def scalar(self, expr: str) -> float | None:
        """The value of a query that yields one series (None when it yields none)."""
        timeout = aiohttp.ClientTimeout(total=10)
        url = f"{self.url}/api/v1/query"
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as s,
                s.get(url, params={"query": expr}) as r,
            ):
                doc = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise PrometheusError(f"Prometheus at {self.url}: {e}") from e
        if doc.get("status") != "success":
            raise PrometheusError(f"Prometheus: {doc.get('error', doc)}")
        result = doc["data"]["result"]
        if not result:
            return None
        return float(result[0]["value"][1])
