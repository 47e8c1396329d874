"""Run one compiled pipeline with kfp's local runner: the process behind the ``local`` backend.

    python -m mlops_operator.pipelines.local_worker \\
        --package .../packages/tabular-train.yaml \\
        --parameters-json '{"model_name": "fraud", "retrainjob": "ml/fraud-1/<uid>", ...}' \\
        --workdir /tmp/mlops-operator/runs/<uid>

The operator spawns this as a subprocess, so its event loop never waits on a pipeline, and
reads ``result.json`` when the process has gone. Spawn it with ``start_new_session=True`` and
stop it with ``os.killpg(pid, signal.SIGTERM)``: the pipeline's tasks are subprocesses of
this one and share its process group.

The workdir holds
    run.log       everything, appended: this worker's lines, kfp's progress, each task's output
    result.json   written once, atomically, when the run ends (removed when a run starts)
    root/         kfp's pipeline root: every task's artifacts and output parameters

``result.json``
    {"status": "Succeeded", "version": "7", "metrics": {"accuracy": 0.97, ...},
     "pipeline": "tabular-train", "started_at": "...Z", "completed_at": "...Z",
     "duration_seconds": 21.4, "log": "<workdir>/run.log"}
    {"status": "Failed", "reason": "ValidationFailed", "message": "data validation failed: ...",
     "failed_task": "validate-data", "pipeline": ..., "started_at", "completed_at", ...}

Reasons: ``ValidationFailed`` (the data was refused; the message is the validation's),
``InvalidParameters`` (refused before anything ran: unknown, missing or mistyped
parameters), ``PipelineFailed`` (a task failed; the message is its last exception line),
``Terminated`` (SIGTERM/SIGINT). Exit status 0 on success, 1 on failure.

kfp 2.17.3 runs a compiled package directly: ``kfp.components.load_component_from_file``
gives a component whose implementation is the pipeline's graph, and calling it outside a
pipeline definition after ``kfp.local.init`` executes that graph locally. So the worker needs
only the YAML the operator ships, not the pipeline's Python source.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from mlops_operator.contract import format_time
from mlops_operator.pipelines import catalog

LOG = "run.log"
RESULT = "result.json"
FAILURE_FILE_ENV = "MLOPS_PIPELINE_FAILURE_FILE"
_FAILURE = "failure.json"  # where a component reports why it failed (see FAILURE_FILE_ENV)
MAX_MESSAGE = 2000

log = logging.getLogger("mlops_operator.local_worker")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FAILED_TASK = re.compile(r"Inner task failed: '([^']+)'")
_EXCEPTION_LINE = re.compile(
    r"^\s*(?P<line>(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)\b.*)$"
)


class Worker:
    """One run of one package in one workdir."""

    def __init__(self, workdir: Path, package: Path) -> None:
        self.workdir = workdir
        self.package = package
        self.pipeline = package.stem
        self.started = time.time()
        self.finished = False
        self.log_start = 0

    # --- results ----------------------------------------------------------------------------

    def result(self, status: str, **fields: Any) -> dict[str, Any]:
        now = time.time()
        return {
            "status": status,
            **fields,
            "pipeline": self.pipeline,
            "started_at": _rfc3339(self.started),
            "completed_at": _rfc3339(now),
            "duration_seconds": round(now - self.started, 3),
            "log": str(self.workdir / LOG),
        }

    def failed(self, reason: str, message: str, **fields: Any) -> dict[str, Any]:
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        return self.result("Failed", reason=reason, message=message, **fields)

    def write(self, result: Mapping[str, Any]) -> None:
        write_json_atomic(self.workdir / RESULT, result)
        self.finished = True

    # --- the run ----------------------------------------------------------------------------

    def run(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        try:
            declared = catalog.package_parameters(self.package)
        except (OSError, ValueError) as e:
            return self.failed("PipelineFailed", f"cannot read package {self.package}: {e}")
        problems = catalog.check_values(declared, parameters)
        if problems:
            return self.failed("InvalidParameters", "; ".join(problems))

        from kfp import components, local

        failure_file = self.workdir / _FAILURE
        failure_file.unlink(missing_ok=True)
        os.environ[FAILURE_FILE_ENV] = str(failure_file)
        # task output reaches run.log as it happens instead of when a task's buffer fills
        os.environ["PYTHONUNBUFFERED"] = "1"
        workspace = self.workdir / "workspace"
        workspace.mkdir(exist_ok=True)
        local.init(
            # use_venv=True would pip-install kfp into a fresh venv per task: needs the
            # internet and costs seconds; the operator's environment already has every package
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(self.workdir / "root"),
            workspace_root=str(workspace),
            raise_on_error=True,
        )
        pipeline = components.load_component_from_file(str(self.package))
        log.info("running pipeline %s from %s", self.pipeline, self.package)
        try:
            task = pipeline(**parameters)
        except RuntimeError as e:
            return self._task_failed(_ANSI.sub("", str(e)), failure_file)
        except Exception as e:  # a kfp bug or an unexpected argument error; still a result
            log.exception("the local runner raised")
            return self.failed("PipelineFailed", f"{type(e).__name__}: {e}")

        outputs = dict(task.outputs)
        if "version" not in outputs:
            return self.failed(
                "PipelineFailed", f"pipeline {self.pipeline} has no output named 'version'"
            )
        metrics = outputs.get("metrics") or {}
        return self.result(
            "Succeeded",
            version=str(outputs["version"]),
            metrics={str(k): float(v) for k, v in dict(metrics).items()},
        )

    def _task_failed(self, error: str, failure_file: Path) -> dict[str, Any]:
        match = _FAILED_TASK.search(error)
        task = match.group(1) if match else None
        reported = _read_failure(failure_file)
        if reported:
            return self.failed(reported[0], reported[1], failed_task=task)
        line = last_exception_line(self._log_text())
        message = f"task {task!r} failed: {line}" if task and line else (line or error)
        return self.failed("PipelineFailed", message, failed_task=task)

    def _log_text(self) -> str:
        sys.stdout.flush()
        try:
            with open(self.workdir / LOG, "rb") as f:
                f.seek(self.log_start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # --- signals ----------------------------------------------------------------------------

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Record the stop, take the tasks down with us, exit now."""
        if not self.finished:
            name = signal.Signals(signum).name
            with contextlib.suppress(OSError):
                self.write(self.failed("Terminated", f"the worker was stopped by {name}"))
        if os.getpgrp() == os.getpid():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.killpg(os.getpid(), signal.SIGTERM)
        os._exit(128 + signum)


def last_exception_line(text: str) -> str | None:
    """The last ``SomeError: message`` line that follows a traceback in ``text``."""
    text = _ANSI.sub("", text)
    start = text.rfind("Traceback (most recent call last)")
    if start < 0:
        return None
    found = None
    for raw in text[start:].splitlines():
        m = _EXCEPTION_LINE.match(raw)
        if m:
            found = m.group("line").strip()
    return found


def write_json_atomic(path: Path, doc: Mapping[str, Any]) -> None:
    """Write ``doc`` so that a reader sees the old file, or none, or all of the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_failure(path: Path) -> tuple[str, str] | None:
    try:
        doc = json.loads(path.read_text())
        return str(doc["reason"]), str(doc["message"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _rfc3339(ts: float) -> str:
    return format_time(datetime.fromtimestamp(ts, UTC))


def _redirect_output(path: Path) -> int:
    """Send this process's stdout and stderr, and so every task's, to ``path``; returns the
    offset where this run's lines start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    start = os.lseek(fd, 0, os.SEEK_END)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return start


def _quiet_kfp() -> None:
    # kfp colours its log lines with ANSI codes and warns about every task whose image name
    # lacks "python"; in a log file a person reads, both are noise
    warnings.filterwarnings("ignore", message="You may be attemping", category=RuntimeWarning)
    try:
        from kfp.local import logging_utils

        for attr in ("CYAN", "GREEN", "RED", "MAGENTA", "RESET"):
            if hasattr(logging_utils.Color, attr):
                setattr(logging_utils.Color, attr, "")
    except ImportError:
        pass


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    file: Path | None = args.parameters_file
    text = str(args.parameters_json) if file is None else file.read_text()
    doc = json.loads(text) if text and text.strip() else {}
    if not isinstance(doc, dict):
        raise ValueError("parameters must be a JSON object")
    return doc


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_operator.pipelines.local_worker",
        description="Run a compiled KFP pipeline with kfp's local runner; see result.json.",
    )
    parser.add_argument("--package", type=Path, required=True, help="compiled pipeline YAML")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--parameters-json", default="{}", help="pipeline parameters, a JSON object")
    given.add_argument("--parameters-file", type=Path, help="file holding that JSON object")
    parser.add_argument("--workdir", type=Path, required=True, help="run directory")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / RESULT).unlink(missing_ok=True)
    worker = Worker(workdir, args.package.resolve())
    worker.log_start = _redirect_output(workdir / LOG)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, worker.on_signal)
    _quiet_kfp()
    log.info("worker pid %d, workdir %s", os.getpid(), workdir)

    try:
        parameters = _parameters(args)
    except (OSError, ValueError) as e:
        result = worker.failed("InvalidParameters", f"cannot read the parameters: {e}")
    else:
        result = worker.run(parameters)

    worker.write(result)
    if result["status"] == "Succeeded":
        log.info(
            "run succeeded in %.1f s: version %s, metrics %s",
            result["duration_seconds"],
            result.get("version"),
            result.get("metrics"),
        )
        return 0
    log.error(
        "run failed in %.1f s (%s): %s",
        result["duration_seconds"],
        result["reason"],
        result["message"],
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
