"""`mlops-runtime`: serve one MLflow model over HTTP (settings from the environment).

    MODEL_URI=models:/fraud-detector/7 MODEL_NAME=fraud-detector mlops-runtime
    mlops-runtime --help            the environment variables it reads

Start-up order is chosen for probes: the HTTP server listens at once (liveness answers while
MLflow is still being imported), the model loads on a background thread, and readiness turns
true only when it has loaded. A model that cannot be loaded ends the process with status 1
after one last stderr line naming the URI and the error (with FallbackToLogsOnError it is
the pod's termination message), so Kubernetes restarts it with back-off and the operator
reports the pod as failing with that line. SIGTERM turns
readiness false, closes the listener, lets in-flight requests finish (up to
MLOPS_DRAIN_SECONDS) and exits 0.

With MLOPS_WORKERS above 1 this process is a supervisor (runtime/workers.py): it starts that
many workers, each this same program serving the same port, hands SIGTERM on to them, and when
one ends by itself ends the others and exits with its status, the failing worker's last line
repeated last.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import uvicorn

from mlops_operator.runtime import peers, workers
from mlops_operator.runtime.app import RuntimeApp
from mlops_operator.runtime.config import ConfigError, RuntimeConfig
from mlops_operator.runtime.metrics import RuntimeMetrics
from mlops_operator.runtime.peers import WorkerGroup

log = logging.getLogger("mlops_operator.runtime")

# the kubelet keeps at most 2 KiB of the log tail as termination message: the whole last
# line must fit in it
LAST_LINE_LIMIT = 1500


def one_line(text: str, limit: int = LAST_LINE_LIMIT) -> str:
    """`text` on one line (an exception's message may span several), cut to `limit`."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RuntimeServer(uvicorn.Server):
    """uvicorn's server, with readiness turned off the moment a shutdown signal arrives."""

    def __init__(self, config: uvicorn.Config, app: RuntimeApp) -> None:
        super().__init__(config)
        self.runtime = app
        self.peer_server: asyncio.Server | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.runtime.state.draining:
            log.info("signal %s: draining in-flight requests, then exiting", sig)
        self.runtime.begin_drain()
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        group = self.runtime.group
        # the socket the other workers of the pod ask this one on (runtime/peers.py)
        self.peer_server = (
            await peers.serve(group, self.runtime.peer_commands()) if group is not None else None
        )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self.runtime.mirror is not None:  # copies still queued are not sent
            await self.runtime.mirror.close()
        if self.peer_server is not None:
            self.peer_server.close()


def _loader(app: RuntimeApp, server: RuntimeServer) -> None:
    # a loader that dies leaves a pod that is never ready and says nothing: exit instead
    try:
        load_in_background(app, server)
    except Exception as e:
        log.exception("model loader failed")
        app.state.load_error = one_line(f"{type(e).__name__}: {e}")
        server.should_exit = True


def load_in_background(app: RuntimeApp, server: RuntimeServer) -> None:
    """Load the model, flip readiness, then set up drift; on load failure stop the server."""
    cfg = app.config
    try:
        from mlops_operator.runtime import model as model_mod

        loaded = model_mod.load(
            cfg.model_uri,
            drift=cfg.drift,
            direct=cfg.direct_predict,
            preload=cfg.preload_modules,
        )
    except Exception as e:
        log.exception("could not load model %s", cfg.model_uri)
        app.state.load_error = one_line(f"{type(e).__name__}: {e}")
        server.should_exit = True
        return
    m = app.metrics
    m.load_seconds.set(loaded.load_seconds)
    # the version is a label of every series already (model_version)
    m.info.info({"model_name": loaded.ref.name, "model_uri": loaded.ref.uri})
    app.serve_model(loaded)
    log.info(
        "model %s (version %s) loaded in %.2fs; %s; ready",
        loaded.ref.name,
        loaded.ref.version or "-",
        loaded.load_seconds,
        "direct predict" if loaded.direct else "MLflow enforcement on every request",
    )
    # drift never delays readiness: a baseline kept elsewhere is fetched after it
    if not cfg.drift:
        log.info("drift monitoring switched off (MLOPS_DRIFT=off)")
        return
    baseline = loaded.baseline or model_mod.remote_baseline(cfg.model_uri)
    if baseline is None:
        log.info("no drift baseline (drift/baseline.json) for %s: drift metrics off", cfg.model_uri)
        return
    from mlops_operator.runtime.drift import DriftMonitor

    workers = app.group.count if app.group is not None else 1
    monitor = DriftMonitor(
        baseline, window=cfg.drift_window, min_rows=cfg.drift_min_rows, workers=workers
    )
    app.metrics.add_drift(monitor)
    app.state.drift = monitor
    log.info(
        "drift: window %d rows over %d features; PSI exported from %d rows",
        cfg.drift_window,
        len(baseline.features),
        monitor.min_rows,
    )


def build(cfg: RuntimeConfig, group: WorkerGroup | None = None) -> tuple[RuntimeApp, RuntimeServer]:
    metrics = RuntimeMetrics(cfg.model_deployment, cfg.namespace, cfg.model_version)
    app = RuntimeApp(cfg, metrics, group)
    ucfg = uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        loop="uvloop",
        http="httptools",
        interface="asgi3",
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=int(cfg.keep_alive_seconds),
        timeout_graceful_shutdown=int(cfg.drain_seconds),
    )
    return app, RuntimeServer(ucfg, app)


def main(argv: list[str] | None = None) -> int:
    docs = RuntimeConfig.documented()
    epilog = "environment (docs/runtime.md):\n" + "\n".join(
        f"  {k:26} {help} (default {default or 'empty'})" for k, (default, help) in docs.items()
    )
    ap = argparse.ArgumentParser(
        prog="mlops-runtime",
        description=__doc__,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # set by the supervisor for the workers it starts (runtime/workers.py), never by hand
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        cfg = RuntimeConfig.from_env()
    except ConfigError as e:
        print(f"mlops-runtime: {e}", file=sys.stderr)
        return 2
    group = None
    if args.worker is not None and args.worker_dir is not None:
        group = WorkerGroup(args.worker, cfg.workers, args.worker_dir)
    who = f" [worker {group.index}]" if group is not None else ""
    logging.basicConfig(
        level=cfg.log_level, format=f"%(asctime)s %(levelname)s %(name)s{who}: %(message)s"
    )
    if cfg.workers > 1 and group is None:
        return workers.supervise(cfg)
    started = time.monotonic()
    app, server = build(cfg, group)
    log.info(
        "serving %s as %r on %s:%d (model_deployment=%s namespace=%s)",
        cfg.model_uri,
        cfg.model_name,
        cfg.host,
        cfg.port,
        cfg.model_deployment,
        cfg.namespace or "-",
    )
    threading.Thread(target=_loader, args=(app, server), name="model-loader", daemon=True).start()
    # uvicorn re-raises the signal it caught once it has shut down; with this no-op handler in
    # place that ends in a normal return (exit 0) instead of death by SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: None)
    # one of several workers: the port is shared with the others (the kernel spreads the
    # connections); the only one: uvicorn binds it
    server.run(sockets=[workers.shared_socket(cfg.host, cfg.port)] if group else None)
    if app.state.load_error:
        # the last line of the log: what the pod's termination message and the status quote
        line = one_line(
            f"mlops-runtime: model not loaded from {cfg.model_uri}: {app.state.load_error}"
        )
        if group is not None:  # the supervisor repeats it as the pod's last line
            group.error_file(group.index).write_text(line)
        print(line, file=sys.stderr)
        return 1
    log.info("stopped after %.1fs", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
