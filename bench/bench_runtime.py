"""Benchmark: the project's runtime vs `mlflow models serve --env-manager local`.

    .venv/bin/python bench/bench_runtime.py [--rounds 3] [--requests 200] [--cold-starts 3]

One run, one machine, two models, each registered (the small one with its drift baseline) in
a real `mlflow server` on 127.0.0.1; every server loads the same `models:/` URI from it and
gets the same `POST /invocations` (`dataframe_split`) bodies:
  * small: StandardScaler + LogisticRegression on scikit-learn's breast-cancer data (30
    double features);
  * realistic: a Pipeline with preprocessing, a ColumnTransformer (one-hot encoding of two
    string columns, scaling of eight numeric ones) before a GradientBoostingRegressor of 300
    trees, on scikit-learn's diabetes data.

Servers: the runtime (adaptive batching on, its default), the runtime with batching off
(MLOPS_BATCH_MAX_SIZE=1: what it was before batching), and `mlflow models serve`, with the
same number of worker processes each (--workers: MLOPS_WORKERS, and mlflow's own --workers),
every model at every count given (1 and 2 unless told). Measured, with the servers' blocks
interleaved (A B C, C B A, ...) so background load hits all:
  * cold start: process start -> first successful prediction (includes download from the
    registry), median of --cold-starts tries each, alternating which server goes first (small
    model)
  * p50 / p99 latency and throughput at concurrency 1, 8 and 32 with 1-row requests, and at 1
    and 8 with 100-row requests; each block is --requests requests over keep-alive
    connections after a warm-up
  * the runtime with drift on vs MLOPS_DRIFT=off (small model, same requests)

The client is a minimal HTTP/1.1 keep-alive client on uvloop, so its own cost per request is
small and identical for every server. Only 127.0.0.1 is used. Results are printed, and written
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
REALISTIC_NAME = "bench-diabetes-gbr"


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


def register_realistic(tracking_uri: str) -> tuple[str, list[list[object]], list[str]]:
    """The realistic model: preprocessing (one-hot, scaling) and gradient boosting."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    mlflow.set_tracking_uri(tracking_uri)
    x, y = load_diabetes(return_X_y=True, as_frame=True, scaled=False)
    x["sex"] = x["sex"].map({1.0: "f", 2.0: "m"}).astype(str)
    x["age_band"] = pd.cut(x["age"], [0, 30, 45, 60, 120], labels=["a", "b", "c", "d"]).astype(str)
    numeric = [c for c in x.columns if c not in ("sex", "age_band", "age")]
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex", "age_band"]),
            ("num", StandardScaler(), numeric),
        ]
    )
    x = x.drop(columns=["age"])
    model = Pipeline(
        [("pre", pre), ("gbr", GradientBoostingRegressor(n_estimators=300, random_state=0))]
    ).fit(x, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x, model.predict(x)),
            pip_requirements=["scikit-learn"],
            registered_model_name=REALISTIC_NAME,
            # MLflow 3 saves with skops, which trusts a tree's node storage only when told
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
    version = info.registered_model_version
    rows = [list(r) for r in x.itertuples(index=False)]
    return f"models:/{REALISTIC_NAME}/{version}", rows, [str(c) for c in x.columns]


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


def make_servers(
    model_uri: str, tracking_uri: str, label: str, workers: int = 1
) -> dict[str, Server]:
    """The runtime (batching on), the runtime with batching off or with drift off, and
    `mlflow models serve`; `workers` worker processes each."""
    base = dict(
        os.environ,
        MLFLOW_TRACKING_URI=tracking_uri,
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",  # mlflow execs uvicorn from here
        PYTHONWARNINGS="ignore",
    )
    ours, ours_off, ours_alone, theirs = (free_port() for _ in range(4))
    runtime = [str(VENV_BIN / "mlops-runtime")]
    ours_env = dict(
        base,
        MODEL_URI=model_uri,
        MODEL_NAME="bench",
        PORT=str(ours),
        MLOPS_HOST="127.0.0.1",
        MLOPS_LOG_LEVEL="WARNING",
        MLOPS_WORKERS=str(workers),
    )
    alone_env = dict(ours_env, PORT=str(ours_alone), MLOPS_BATCH_MAX_SIZE="1")
    return {
        "runtime": Server(f"runtime {label}", runtime, ours_env, ours),
        "runtime batch=off": Server(f"runtime batch=off {label}", runtime, alone_env, ours_alone),
        "runtime drift=off": Server(
            f"runtime drift=off {label}", runtime,
            dict(ours_env, PORT=str(ours_off), MLOPS_DRIFT="off"), ours_off,
        ),
        "mlflow": Server(
            f"mlflow {label}",
            [
                str(VENV_BIN / "mlflow"), "models", "serve", "-m", model_uri,
                "--env-manager", "local", "--host", "127.0.0.1", "-p", str(theirs),
                "--workers", str(workers),
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


SERVERS = ("runtime", "runtime batch=off", "mlflow")


def scenarios_of(
    rows: Sequence[Sequence[object]], columns: list[str], requests: int
) -> list[tuple[str, bytes, int, int]]:
    def body(n: int) -> bytes:
        data = [list(r) for r in rows[:n]]
        return json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()

    one, hundred = body(1), body(100)
    return [
        ("1 row, c=1", one, 1, requests),
        ("1 row, c=8", one, 8, requests * 2),
        ("1 row, c=32", one, 32, requests * 4),
        ("100 rows, c=1", hundred, 1, requests // 2),
        ("100 rows, c=8", hundred, 8, requests),
    ]


def measure_model(
    label: str,
    model_uri: str,
    rows: Sequence[Sequence[object]],
    columns: list[str],
    args: argparse.Namespace,
    tracking_uri: str,
    work: Path,
    servers: dict[str, Server],
    workers: int = 1,
) -> dict[str, object]:
    """Every scenario on the three servers of one model (and, for the small model with one
    worker, the cold starts and drift on/off)."""
    global PROBE_BODY
    scenarios = scenarios_of(rows, columns, args.requests)
    PROBE_BODY = scenarios[0][1]
    made = make_servers(model_uri, tracking_uri, f"{label} w{workers}", workers)
    servers.update({s.label: s for s in made.values()})
    small = label == "small" and workers == 1
    cold: dict[str, list[float]] = {"runtime": [], "mlflow": []}
    if small:  # cold starts, alternating which goes first
        for i in range(args.cold_starts):
            for name in ("runtime", "mlflow") if i % 2 == 0 else ("mlflow", "runtime"):
                cold[name].append(made[name].start(work))
                made[name].stop()
            print(f"# cold start {i + 1}: {cold}", flush=True)
    live = [*SERVERS, *(["runtime drift=off"] if small else [])]
    for name in live:
        made[name].start(work)
    measured: dict[tuple[str, str], list[Result]] = {}
    for rnd in range(args.rounds):
        for name, body, conc, total in scenarios:
            order = SERVERS if rnd % 2 == 0 else SERVERS[::-1]
            for server in order:
                measured.setdefault((name, server), []).append(
                    run_load(made[server].port, body, conc, total)
                )
        print(f"# {label}, {workers} worker(s): round {rnd + 1}/{args.rounds} done", flush=True)
    if small:
        # drift on vs off: the difference is microseconds, so alternate short blocks many
        # times to cancel out the background load that drifts over seconds
        for name, body, conc, total in scenarios:
            if conc != 1:
                continue
            for i in range(4 * args.rounds):
                both = ["runtime", "runtime drift=off"]
                for server in both if i % 2 == 0 else both[::-1]:
                    measured.setdefault((name, f"drift:{server}"), []).append(
                        run_load(made[server].port, body, 1, max(20, total // 4), warmup=10)
                    )
        print("# drift on/off done", flush=True)
    for name in live:
        made[name].stop()
    return _report(label, workers, scenarios, measured, cold if small else None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scenario")
    ap.add_argument("--requests", type=int, default=200, help="requests per block (1 row, c=1)")
    ap.add_argument("--cold-starts", type=int, default=3, help="cold starts per server")
    ap.add_argument(
        "--models", default="small,realistic", help="which models: small, realistic or both"
    )
    ap.add_argument(
        "--workers",
        default="1,2",
        help="worker processes per server (MLOPS_WORKERS, mlflow's --workers), comma-separated: "
        "every model is measured at each count",
    )
    ap.add_argument(
        "--json",
        type=Path,
        default=ROOT / "bench" / "results" / "runtime.json",
        help="where every figure is written as JSON (to compare two commits)",
    )
    args = ap.parse_args(argv)

    from tests.support.mlflow_server import start_mlflow

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    print(f"# workdir {work}; starting mlflow server ...", flush=True)
    registry = start_mlflow(work / "mlflow")
    servers: dict[str, Server] = {}
    report: dict[str, object] = {}
    counts = [int(w) for w in args.workers.split(",")]
    try:
        for label in args.models.split(","):
            if label == "small":
                uri, rows, columns = register_model(registry.url)
                for w in counts:
                    report[key(label, w)] = measure_model(
                        label, uri, rows, columns, args, registry.url, work, servers, w
                    )
                cost = drift_cost(rows, columns)
                report["drift_in_process"] = cost
                print(
                    "\ndrift window cost in-process (30 features, window 10,000 rows): observe() "
                    f"{cost['observe_us_1_rows']:.1f} us per 1-row request, "
                    f"{cost['observe_us_100_rows']:.1f} us per 100-row request; the scrape that "
                    f"bins a whole new window {cost['scrape_ms_1_rows']:.1f} ms (from 1-row "
                    f"requests), {cost['scrape_ms_100_rows']:.1f} ms (from 100-row requests)"
                )
            elif label == "realistic":
                uri, rrows, columns = register_realistic(registry.url)
                for w in counts:
                    report[key(label, w)] = measure_model(
                        label, uri, rrows, columns, args, registry.url, work, servers, w
                    )
            else:
                raise SystemExit(f"unknown model {label!r}: small or realistic")
        report["seconds"] = time.monotonic() - started
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\n(total {report['seconds']:.0f} s; results in {args.json})")
        return 0
    finally:
        for s in servers.values():
            s.stop()
        registry.stop()


def key(label: str, workers: int) -> str:
    """The JSON key of one model at one worker count ("small", "realistic_workers_2")."""
    return label if workers == 1 else f"{label}_workers_{workers}"


def _report(
    label: str,
    workers: int,
    scenarios: Sequence[tuple[str, bytes, int, int]],
    measured: dict[tuple[str, str], list[Result]],
    cold: dict[str, list[float]] | None,
) -> dict[str, object]:
    import platform

    rows: list[dict[str, object]] = []
    print(
        f"\n## {label} model, {workers} worker(s) each: runtime vs mlflow models serve, and "
        f"batching on vs off ({platform.node()}, {os.cpu_count()} CPUs; ms, requests/s; ratios "
        "runtime / other)\n"
    )
    hdr = (
        f"| {'scenario':<13} | {'runtime p50':>11} | {'p99':>8} | {'rps':>6} "
        f"| {'batch=off p50':>13} | {'p99':>8} | {'rps':>6} "
        f"| {'mlflow p50':>10} | {'p99':>8} | {'rps':>6} "
        f"| {'vs mlflow p50 / p99 / rps':>25} | {'vs batch=off p50 / rps':>22} |"
    )
    print(hdr)
    print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|")
    for name, *_ in scenarios:
        a = summarise(measured[(name, "runtime")])
        o = summarise(measured[(name, "runtime batch=off")])
        b = summarise(measured[(name, "mlflow")])
        vs_mlflow = (
            f"{a['p50_ms'] / b['p50_ms']:.2f}x / {a['p99_ms'] / b['p99_ms']:.2f}x / "
            f"{a['rps'] / b['rps']:.2f}x"
        )
        vs_off = f"{a['p50_ms'] / o['p50_ms']:.2f}x / {a['rps'] / o['rps']:.2f}x"
        print(
            f"| {name:<13} | {a['p50_ms']:>11.2f} | {a['p99_ms']:>8.2f} | {a['rps']:>6.0f} "
            f"| {o['p50_ms']:>13.2f} | {o['p99_ms']:>8.2f} | {o['rps']:>6.0f} "
            f"| {b['p50_ms']:>10.2f} | {b['p99_ms']:>8.2f} | {b['rps']:>6.0f} "
            f"| {vs_mlflow:>25} | {vs_off:>22} |"
        )
        rows.append({"scenario": name, "runtime": a, "runtime_batch_off": o, "mlflow": b})
    print(
        "\ngoals (issue 13): at 1 row, c=8 on the realistic model throughput >= 3x and p99 <= "
        "0.5x of mlflow's; at c=1, p50 no worse than with batching off"
    )
    out: dict[str, object] = {"workers": workers, "comparison": rows}
    if cold is not None:
        ca, cb = statistics.median(cold["runtime"]), statistics.median(cold["mlflow"])
        print(
            f"cold start (median, s): runtime {ca:.2f}, mlflow {cb:.2f} ({ca / cb:.2f}x); "
            f"runtime {cold['runtime']}, mlflow {cold['mlflow']}"
        )
        out["cold_start_s"] = cold
        out["drift"] = _drift_report(scenarios, measured)
    errors = sum(int(r["errors"]) for rs in measured.values() for r in [summarise(rs)])
    if errors:
        print(f"\nWARNING: {errors} non-200 responses during the load blocks")
    out["errors"] = errors
    return out


def _drift_report(
    scenarios: Sequence[tuple[str, bytes, int, int]],
    measured: dict[tuple[str, str], list[Result]],
) -> list[dict[str, object]]:
    print("\n## drift on vs off (runtime, small model, concurrency 1)\n")
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
    return drift


if __name__ == "__main__":
    sys.exit(main())
