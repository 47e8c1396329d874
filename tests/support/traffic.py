"""Requests sent without pause to a model's Service from a thread, with what came back: the
judge of "no request lost" while pods come and go (the `traffic` fixture starts them)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class Traffic:
    url: str
    bodies: list[dict[str, Any]]  # sent in turn
    # a new connection per request, so that kube-proxy spreads them over the pods as it does
    # many clients' (one keep-alive connection stays with one pod)
    fresh: bool = False
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)
    # what the test is doing now (mark()): each failure says when it came and during what
    phase: str = "start"
    began: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def run(self) -> None:
        with requests.Session() as http:
            for body in itertools.cycle(self.bodies):
                if self.stop.is_set():
                    return
                t = time.perf_counter()
                try:
                    post = requests.post if self.fresh else http.post
                    r = post(self.url, json=body, timeout=15)
                    if r.status_code == 200:
                        self.ok += 1
                        self.versions.add(r.json()["model_version"])
                    else:
                        self._failure(f"{r.status_code} {r.text[:200]}")
                except requests.RequestException as e:
                    self._failure(repr(e))
                self.latencies.append(time.perf_counter() - t)

    def _failure(self, what: str) -> None:
        sent = self.ok + len(self.failed) + 1
        elapsed = time.monotonic() - self.began
        self.failed.append(f"request {sent} at +{elapsed:.1f}s, during {self.phase}: {what}")

    def mark(self, phase: str) -> None:
        self.phase = f"{phase} (from +{time.monotonic() - self.began:.1f}s)"

    def start(self) -> Traffic:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(15)


def traffic_fixture() -> Iterator[Any]:
    started: list[Traffic] = []

    def start(url: str, *bodies: dict[str, Any], fresh: bool = False) -> Traffic:
        t = Traffic(url, list(bodies), fresh=fresh).start()
        started.append(t)
        return t

    yield start
    for t in started:
        t.finish()
