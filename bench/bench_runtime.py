"""Benchmark: the project's runtime vs `mlflow models serve --env-manager local`.

    .venv/bin/python bench/bench_runtime.py [--rounds 3] [--requests 400] [--cold-starts 2]

One run, one machine, one model: a scikit-learn pipeline (StandardScaler + LogisticRegression)
trained on scikit-learn's breast-cancer data (30 double features), registered with its drift
baseline in a real `mlflow server` on 127.0.0.1. Both servers load the same `models:/` URI
from that registry and get the same `POST /invocations` (`dataframe_split`) bodies.

Measured, with the servers' blocks interleaved (A B, B A, ...) so background load hits both:
  * cold start: process start -> first successful prediction (includes download from the
    registry), median of --cold-starts tries each, alternating which server goes first
  * p50 / p99 latency and throughput, concurrency 1 and 8, 1-row and 100-row requests; each
    block is --requests requests over keep-alive connections after a warm-up
  * the runtime with drift on vs MLOPS_DRIFT=off (same model, same requests)

The client is a minimal HTTP/1.1 keep-alive client on uvloop, so its own cost per request is
small and identical for both servers. Only 127.0.0.1 is used. Results are printed, and written
to --json FILE (bench/results/runtime.json unless told).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))
VENV_BIN = Path(sys.executable).parent
MODEL_NAME = "bench-breast-cancer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the model ------------------------------------------------------------------------------


def drift_cost(rows: list[list[float]], columns: list[str]) -> dict[str, float]:
    """In-process cost of the drift window, which HTTP timings on a busy 2-core machine cannot
    resolve: observe() per request, and the scrape that bins a full window of new rows."""
    import pandas as pd

    from mlops_operator import profiles
    from mlops_operator.runtime.codec import rows_to_frame
    from mlops_operator.runtime.drift import DriftMonitor
    from mlops_operator.runtime.schema import Column, ColumnSchema, ColumnType

    schema = ColumnSchema(tuple(Column(c, ColumnType.DOUBLE) for c in columns))
    train = pd.DataFrame(rows, columns=columns)
    pred = np.zeros(len(train), dtype=np.int64)
    out: dict[str, float] = {}
    for n in (1, 100):
        monitor = DriftMonitor(profiles.compute_profile(train, predictions=pred))
        frames = [rows_to_frame(columns, rows[i : i + n], schema) for i in range(0, 500, n)]
        preds = [np.zeros(len(f), dtype=np.int64) for f in frames]
        k = 20_000 // n  # twice the window: the queue is full and trimming
        t = time.perf_counter()
        for i in range(k):
            monitor.observe(frames[i % len(frames)], preds[i % len(preds)])
        out[f"observe_us_{n}_rows"] = (time.perf_counter() - t) / k * 1e6
        monitor.observe(frames[0], preds[0])
        t = time.perf_counter()
        monitor.snapshot()
        out[f"scrape_ms_{n}_rows"] = (time.perf_counter() - t) * 1e3
    return out


def register_model(tracking_uri: str) -> tuple[str, list[list[float]], list[str]]:
    """Train, log with signature and baseline, register; returns (uri, rows, columns)."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlops_operator import baselines, profiles

    mlflow.set_tracking_uri(tracking_uri)
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    pred = model.predict(x)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x, pred),
            pip_requirements=["scikit-learn"],
            registered_model_name=MODEL_NAME,
        )
    baselines.log_baseline(profiles.compute_profile(x, predictions=pred), info.model_id)
    version = info.registered_model_version
    return f"models:/{MODEL_NAME}/{version}", x.to_numpy().tolist(), [str(c) for c in x.columns]


# --- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    argv: list[str]
    env: dict[str, str]
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self, logdir: Path) -> float:
        """Start, return seconds from spawn to the first successful prediction."""
        self.log = logdir / f"{self.label.replace(' ', '_')}.log"
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = t0 + 180
        body = PROBE_BODY
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.label} exited ({self.proc.returncode}):\n{tail}")
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{self.port}/invocations",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=5) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.label} did not answer within 180 s")

    def stop(self) -> None:
        """Stop the whole process group and wait until the port is free again.

        `mlflow models serve` runs uvicorn as a child that can outlive the CLI process by a
        few seconds; a cold start measured while it still answers would be nonsense.
        """
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        deadline = time.monotonic() + 20
        while _port_open(self.port):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            time.sleep(0.1)
        self.proc = None


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


PROBE_BODY = b""


def make_servers(model_uri: str, tracking_uri: str) -> dict[str, Server]:
    base = dict(
        os.environ,
        MLFLOW_TRACKING_URI=tracking_uri,
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",  # mlflow execs uvicorn from here
        PYTHONWARNINGS="ignore",
    )
    ours = free_port()
    ours_off = free_port()
    theirs = free_port()
    runtime = [str(VENV_BIN / "mlops-runtime")]
    ours_env = dict(
        base,
        MODEL_URI=model_uri,
        MODEL_NAME="bench",
        PORT=str(ours),
        MLOPS_HOST="127.0.0.1",
        MLOPS_LOG_LEVEL="WARNING",
    )
    return {
        "runtime": Server("runtime", runtime, ours_env, ours),
        "runtime drift=off": Server(
            "runtime drift=off", runtime, dict(ours_env, PORT=str(ours_off), MLOPS_DRIFT="off"),
            ours_off,
        ),
        "mlflow": Server(
            "mlflow",
            [
                str(VENV_BIN / "mlflow"), "models", "serve", "-m", model_uri,
                "--env-manager", "local", "--host", "127.0.0.1", "-p", str(theirs),
            ],
            base,
            theirs,
        ),
    }  # fmt: skip


# --- load generator -------------------------------------------------------------------------


class Conn:
    """One keep-alive HTTP/1.1 connection; just enough protocol for these two servers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(r, w)

    async def post(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
        if chunked:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                body += await self.reader.readexactly(size + 2)
                if size == 0:
                    return status, body
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def http_request(port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0
    errors: int = 0


async def _load(port: int, body: bytes, concurrency: int, total: int, warmup: int) -> Result:
    request = http_request(port, "/invocations", body)
    conns = [await Conn.open(port) for _ in range(concurrency)]
    try:
        for c in conns:  # warm every connection (and the server's code paths)
            for _ in range(max(1, warmup // concurrency)):
                await c.post(request)
        result = Result()
        remaining = total

        async def worker(c: Conn) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t = time.perf_counter()
                status, _ = await c.post(request)
                result.latencies.append(time.perf_counter() - t)
                if status != 200:
                    result.errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        result.seconds = time.perf_counter() - t0
        result.requests = len(result.latencies)
        return result
    finally:
        for c in conns:
            c.close()


def run_load(port: int, body: bytes, concurrency: int, total: int, warmup: int = 40) -> Result:
    import uvloop

    return uvloop.run(_load(port, body, concurrency, total, warmup))


# --- report ---------------------------------------------------------------------------------


def summarise(results: Sequence[Result]) -> dict[str, float]:
    lat = np.array([x for r in results for x in r.latencies]) * 1000
    n = sum(r.requests for r in results)
    secs = sum(r.seconds for r in results)
    return {
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "rps": n / secs if secs else 0.0,
        "requests": n,
        "errors": sum(r.errors for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scenario")
    ap.add_argument("--requests", type=int, default=200, help="requests per block (1 row)")
    ap.add_argument("--cold-starts", type=int, default=3, help="cold starts per server")
    ap.add_argument(
        "--json",
        type=Path,
        default=ROOT / "bench" / "results" / "runtime.json",
        help="where every figure is written as JSON (to compare two commits)",
    )
    args = ap.parse_args(argv)

    from tests.support.mlflow_server import start_mlflow

    global PROBE_BODY
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    print(f"# workdir {work}; starting mlflow server ...", flush=True)
    registry = start_mlflow(work / "mlflow")
    servers: dict[str, Server] = {}
    try:
        model_uri, rows, columns = register_model(registry.url)
        body1 = json.dumps({"dataframe_split": {"columns": columns, "data": rows[:1]}}).encode()
        body100 = json.dumps({"dataframe_split": {"columns": columns, "data": rows[:100]}})
        PROBE_BODY = body1
        servers = make_servers(model_uri, registry.url)
        ours, off, theirs = servers["runtime"], servers["runtime drift=off"], servers["mlflow"]

        # cold starts, alternating which goes first
        cold: dict[str, list[float]] = {"runtime": [], "mlflow": []}
        for i in range(args.cold_starts):
            order = [ours, theirs] if i % 2 == 0 else [theirs, ours]
            for s in order:
                cold[s.label].append(s.start(work))
                s.stop()
            print(f"# cold start {i + 1}: {cold}", flush=True)

        for s in (ours, off, theirs):
            s.start(work)

        scenarios = [
            ("1 row, c=1", body1, 1, args.requests),
            ("1 row, c=8", body1, 8, args.requests * 2),
            ("100 rows, c=1", body100.encode(), 1, args.requests // 2),
            ("100 rows, c=8", body100.encode(), 8, args.requests),
        ]
        measured: dict[tuple[str, str], list[Result]] = {}
        for rnd in range(args.rounds):
            for name, body, conc, total in scenarios:
                for s in [ours, theirs] if rnd % 2 == 0 else [theirs, ours]:
                    measured.setdefault((name, s.label), []).append(
                        run_load(s.port, body, conc, total)
                    )
            print(f"# round {rnd + 1}/{args.rounds} done", flush=True)
        # drift on vs off: the difference is microseconds, so alternate short blocks many times
        # to cancel out the background load that drifts over seconds
        for name, body, conc, total in scenarios:
            if conc != 1:
                continue
            for i in range(4 * args.rounds):
                for s in [ours, off] if i % 2 == 0 else [off, ours]:
                    measured.setdefault((name, f"drift:{s.label}"), []).append(
                        run_load(s.port, body, 1, max(20, total // 4), warmup=10)
                    )
        print("# drift on/off done", flush=True)

        report = _report(scenarios, measured, cold)
        cost = drift_cost(rows, columns)
        report["drift_in_process"] = cost
        print(
            "\ndrift window cost in-process (30 features, window 10,000 rows): observe() "
            f"{cost['observe_us_1_rows']:.1f} us per 1-row request, "
            f"{cost['observe_us_100_rows']:.1f} us per 100-row request; the scrape that bins a "
            f"whole new window {cost['scrape_ms_1_rows']:.1f} ms (from 1-row requests), "
            f"{cost['scrape_ms_100_rows']:.1f} ms (from 100-row requests)"
        )
        report["seconds"] = time.monotonic() - started
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\n(total {report['seconds']:.0f} s; results in {args.json})")
        return 0
    finally:
        for s in servers.values():
            s.stop()
        registry.stop()


def _report(
    scenarios: Sequence[tuple[str, bytes, int, int]],
    measured: dict[tuple[str, str], list[Result]],
    cold: dict[str, list[float]],
) -> dict[str, object]:
    import platform

    rows: list[dict[str, object]] = []
    print(f"\n## runtime vs mlflow models serve ({platform.node()}, {os.cpu_count()} CPUs)\n")
    hdr = (
        f"| {'scenario':<14} | {'runtime p50':>11} | {'mlflow p50':>10} | {'p50 ratio':>9} "
        f"| {'runtime p99':>11} | {'mlflow p99':>10} | {'runtime rps':>11} "
        f"| {'mlflow rps':>10} | {'rps ratio':>9} |"
    )
    print(hdr)
    print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|")
    for name, *_ in scenarios:
        a = summarise(measured[(name, "runtime")])
        b = summarise(measured[(name, "mlflow")])
        print(
            f"| {name:<14} | {a['p50_ms']:>8.2f} ms | {b['p50_ms']:>7.2f} ms "
            f"| {a['p50_ms'] / b['p50_ms']:>8.2f}x | {a['p99_ms']:>8.2f} ms "
            f"| {b['p99_ms']:>7.2f} ms | {a['rps']:>11.0f} | {b['rps']:>10.0f} "
            f"| {a['rps'] / b['rps']:>8.2f}x |"
        )
        rows.append({"scenario": name, "runtime": a, "mlflow": b})
    ca, cb = statistics.median(cold["runtime"]), statistics.median(cold["mlflow"])
    print(
        f"| {'cold start':<14} | {ca:>9.2f} s | {cb:>8.2f} s | {ca / cb:>8.2f}x "
        f"| {'':>11} | {'':>10} | {'':>11} | {'':>10} | {'':>9} |"
    )
    print("\nratios: runtime / mlflow (goal: p50 <= 0.5x, rps >= 2x, cold start <= 0.5x)")
    print(f"cold starts (s): runtime {cold['runtime']}, mlflow {cold['mlflow']}")

    print("\n## drift on vs off (runtime, concurrency 1)\n")
    print(
        f"| {'scenario':<14} | {'drift on p50':>12} | {'drift off p50':>13} "
        f"| {'paired diff (median, IQR)':>27} |"
    )
    print(f"|{'-' * 16}|{'-' * 14}|{'-' * 15}|{'-' * 29}|")
    drift: list[dict[str, object]] = []
    for name, _, conc, _ in scenarios:
        if conc != 1:
            continue
        on_blocks = measured[(name, "drift:runtime")]
        off_blocks = measured[(name, "drift:runtime drift=off")]
        on, off = summarise(on_blocks), summarise(off_blocks)
        # each on block ran right next to an off block: their difference cancels most of the
        # background load, which pooled percentiles do not
        diffs = [
            (summarise([a])["p50_ms"] - summarise([b])["p50_ms"]) * 1000
            for a, b in zip(on_blocks, off_blocks, strict=True)
        ]
        q1, med, q3 = (float(np.percentile(diffs, q)) for q in (25, 50, 75))
        print(
            f"| {name:<14} | {on['p50_ms']:>9.3f} ms | {off['p50_ms']:>10.3f} ms "
            f"| {med:>+7.0f} us ({q1:>+6.0f} .. {q3:>+6.0f}) |"
        )
        drift.append({"scenario": name, "on": on, "off": off, "paired_diff_us": diffs})
    errors = sum(int(r["errors"]) for rs in measured.values() for r in [summarise(rs)])
    if errors:
        print(f"\nWARNING: {errors} non-200 responses during the load blocks")
    return {"comparison": rows, "cold_start_s": cold, "drift": drift}


if __name__ == "__main__":
    sys.exit(main())
