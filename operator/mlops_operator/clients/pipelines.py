"""Pipeline backends behind one small interface: where a RetrainJob's run executes.

Both backends are idempotent by design: a run has a deterministic name carrying the
RetrainJob's uid, and `find` looks it up before anything is submitted, so an operator that
dies between submitting and writing status adopts the run instead of starting another.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from mlops_operator.contract import format_time

Phase = Literal["Pending", "Running", "Succeeded", "Failed", "Lost"]


@dataclass(frozen=True)
class JobId:
    namespace: str
    name: str
    uid: str

    @property
    def lineage(self) -> str:
        """The value of the mlops.dev/retrainjob tag on the version the run registers."""
        return f"{self.namespace}/{self.name}/{self.uid}"

    @property
    def run_name(self) -> str:
        return _keep_uid(f"rtj-{self.namespace}-{self.name}", self.uid, RUN_NAME_MAX)

    @property
    def dir_name(self) -> str:
        """The run directory's name: a file name, so at most NAME_MAX bytes."""
        return _keep_uid(self.name, self.uid, NAME_MAX)


RUN_NAME_MAX = 250  # what KFP's display name takes
NAME_MAX = 255  # bytes in one file name (Linux); Kubernetes names are ASCII


def _keep_uid(prefix: str, uid: str, limit: int) -> str:
    """`<prefix>-<uid>` within `limit` characters: the prefix gives way, never the uid (which
    is what makes the name unique). A valid Kubernetes name can be 253 characters long."""
    return f"{prefix[: max(0, limit - len(uid) - 1)]}-{uid}"


@dataclass(frozen=True)
class RunRef:
    id: str
    name: str
    url: str | None = None
    logs: str | None = None


@dataclass(frozen=True)
class RunState:
    phase: Phase
    reason: str = ""
    message: str = ""
    backend_state: str = ""


class Busy(Exception):
    """No capacity for another run now; try again later."""


class BackendUnavailable(Exception):
    """The backend cannot be reached; what runs keeps running."""


@dataclass(frozen=True)
class Traits:
    """How the reconciler treats a backend's runs (what differs between backends)."""

    poll_seconds: float  # the delay between polls of a running run
    poll_backoff: bool  # poll less often the longer a run takes
    can_restart: bool  # an orphaned (Lost) run can be started again, once


class PipelineBackend(Protocol):
    name: str
    traits: Traits

    async def find(self, job: JobId) -> RunRef | None: ...
    async def submit(
        self,
        job: JobId,
        package: Path,
        parameters: dict[str, Any],
        credentials_secret: str | None = None,
    ) -> RunRef: ...
    async def poll(self, ref: RunRef) -> RunState: ...
    async def stop(self, ref: RunRef) -> None: ...
    async def restart(self, ref: RunRef) -> None:
        """Start an orphaned run again (only called when traits.can_restart)."""
        ...


def utcnow() -> str:
    return format_time(dt.datetime.now(dt.UTC))


class LocalBackend:
    """kfp's local runner in a worker process per run (never on the operator's event loop).

    Each run gets a directory `<work_dir>/<namespace>/<name>-<uid>/` holding run.json (what
    was submitted), pid, run.log (everything the run printed) and, at the end, result.json.
    Workers run in their own session, so a restarted operator finds them still running and
    adopts them by their directory.
    """

    name = "local"
    # a file check is cheap: poll steadily; an orphaned worker can be started again
    traits = Traits(poll_seconds=2.0, poll_backoff=False, can_restart=True)

    def __init__(self, work_dir: str | Path, concurrency: int) -> None:
        self.work_dir = Path(work_dir)
        self.concurrency = concurrency
        self._children: list[subprocess.Popen[bytes]] = []

    def _alive(self, d: Path) -> bool:
        # A worker this process started is alive until it has exited (its cmdline may not
        # show the run directory yet in the instant after fork); one adopted after a restart
        # is recognised by its pid and its command line.
        pid = _worker_pid(d)
        for p in self._children:
            if p.pid == pid:
                return p.poll() is None
        return live_worker_pid(d) is not None

    def _reap(self) -> None:
        # workers we started are our children: collect the ended ones (no zombies)
        self._children = [p for p in self._children if p.poll() is None]

    def run_dir(self, job: JobId) -> Path:
        return self.work_dir / job.namespace / job.dir_name

    async def find(self, job: JobId) -> RunRef | None:
        d = self.run_dir(job)
        if not (d / "run.json").exists():
            return None
        return self._ref(job, d)

    def _ref(self, job: JobId, d: Path) -> RunRef:
        return RunRef(
            id=f"local-{job.uid}", name=job.run_name, url=f"file://{d}", logs=str(d / "run.log")
        )

    def active(self) -> int:
        """Live workers under work_dir (of any operator process on this machine)."""
        self._reap()
        return sum(
            1
            for pid_file in self.work_dir.glob("*/*/pid")
            if self._alive(pid_file.parent) and not (pid_file.parent / "result.json").exists()
        )

    async def submit(
        self,
        job: JobId,
        package: Path,
        parameters: dict[str, Any],
        credentials_secret: str | None = None,
    ) -> RunRef:
        # credentials_secret is for task pods; this worker runs with the operator's own
        # environment (and the operator reads no Secrets)
        if self.active() >= self.concurrency:
            raise Busy(f"{self.concurrency} local run(s) already running (MLOPS_LOCAL_CONCURRENCY)")
        d = self.run_dir(job)
        d.mkdir(parents=True, exist_ok=True)
        (d / "result.json").unlink(missing_ok=True)
        run = {
            "job": job.lineage,
            "package": str(package),
            "parameters": parameters,
            "submitted_at": utcnow(),
        }
        tmp = d / "run.json.tmp"
        tmp.write_text(json.dumps(run, indent=2))
        tmp.replace(d / "run.json")
        self._spawn(d, package, parameters)
        return self._ref(job, d)

    def _spawn(self, d: Path, package: Path, parameters: dict[str, Any]) -> None:
        with open(d / "run.log", "ab") as log:
            p = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlops_operator.pipelines.local_worker",
                    "--package",
                    str(package),
                    "--parameters-json",
                    json.dumps(parameters),
                    "--workdir",
                    str(d),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._children.append(p)
        (d / "pid").write_text(str(p.pid))

    async def restart(self, ref: RunRef) -> None:
        """Run an orphaned run again in its directory (same parameters, same lineage)."""
        d = Path(ref.url.removeprefix("file://")) if ref.url else None
        if d is None:
            raise ValueError("local run without a directory")
        run = json.loads((d / "run.json").read_text())
        self._spawn(d, Path(run["package"]), run["parameters"])

    async def poll(self, ref: RunRef) -> RunState:
        self._reap()
        d = Path(ref.url.removeprefix("file://")) if ref.url else Path()
        result = d / "result.json"
        if result.exists():
            try:
                r = json.loads(result.read_text())
            except ValueError:
                return RunState("Running", backend_state="Finishing")
            if r.get("status") == "Succeeded":
                return RunState("Succeeded", "Completed", "the pipeline run succeeded", "Succeeded")
            return RunState(
                "Failed",
                r.get("reason") or "PipelineFailed",
                r.get("message") or "the pipeline run failed",
                "Failed",
            )
        if self._alive(d):
            return RunState("Running", backend_state="Running")
        if not (d / "pid").exists():
            return RunState("Pending", backend_state="Pending")
        return RunState(
            "Lost",
            "WorkerLost",
            f"the local worker of this run stopped without a result (see {d}/run.log)",
            "Lost",
        )

    async def stop(self, ref: RunRef) -> None:
        d = Path(ref.url.removeprefix("file://")) if ref.url else Path()
        pid = _worker_pid(d)
        if pid is None or not self._alive(d):
            return  # never signal a pid that is no longer our worker
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(50):
            await asyncio.sleep(0.1)
            if not self._alive(d):
                self._reap()
                return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _worker_pid(d: Path) -> int | None:
    try:
        return int((d / "pid").read_text())
    except (OSError, ValueError):
        return None


def live_worker_pid(d: Path) -> int | None:
    """The pid of the live local worker of run directory `d`, else None. A recycled pid (its
    command line does not name `d`) or a zombie of a worker that already ended is not one."""
    pid = _worker_pid(d)
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return None
    return pid if str(d).encode() in cmdline else None
