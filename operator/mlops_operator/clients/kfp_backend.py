"""The `kfp` pipeline backend: runs on a Kubeflow Pipelines API server (v2beta1).

kfp's client blocks, so each call runs in a worker thread. KFP makes run ids server-side and
has no idempotency key: runs get a deterministic display name carrying the RetrainJob's
uid, and `find` looks that name up before `submit` creates anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml

from mlops_operator.clients.pipelines import (
    BackendUnavailable,
    JobId,
    RunRef,
    RunState,
    Traits,
)
from mlops_operator.pipelines import platform

log = logging.getLogger(__name__)

EXPERIMENT = "mlops-operator"

# KFP v2beta1 run states -> our phases
_PHASES = {
    "PENDING": "Pending",
    "RUNTIME_STATE_UNSPECIFIED": "Pending",
    "RUNNING": "Running",
    "PAUSED": "Running",
    "CANCELING": "Running",
    "SUCCEEDED": "Succeeded",
    "SKIPPED": "Failed",
    "FAILED": "Failed",
    "CANCELED": "Failed",
}


def phase_of(state: str | None) -> str:
    return _PHASES.get((state or "RUNTIME_STATE_UNSPECIFIED").upper(), "Running")


class KfpBackend:
    name = "kfp"
    # a remote API: poll less often the longer the run takes (5 s, 10 s, ... 5 min); KFP
    # itself retries its pods, and there is no orphaned worker to restart here
    traits = Traits(poll_seconds=5.0, poll_backoff=True, can_restart=False)

    def __init__(self, host: str) -> None:
        self.host = host.rstrip("/")
        self._client: Any = None

    def _kfp(self) -> Any:
        if self._client is None:
            import kfp

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                try:
                    # the constructor checks /apis/v2beta1/healthz
                    self._client = kfp.Client(host=self.host)
                except Exception as e:
                    raise BackendUnavailable(f"KFP at {self.host}: {_short(e)}") from e
        return self._client

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            try:
                return fn(self._kfp(), *args, **kwargs)
            except BackendUnavailable:
                raise
            except Exception as e:
                status = getattr(e, "status", None)
                if status is None or status >= 500:
                    self._client = None  # reconnect next time
                    raise BackendUnavailable(f"KFP at {self.host}: {_short(e)}") from e
                raise

        return await asyncio.to_thread(run)

    def _ref(self, run: Any) -> RunRef:
        return RunRef(
            id=str(run.run_id),
            name=str(run.display_name),
            url=f"{self.host}/#/runs/details/{run.run_id}",
        )

    async def find(self, job: JobId) -> RunRef | None:
        flt = json.dumps(
            {
                "predicates": [
                    {"key": "display_name", "operation": "EQUALS", "string_value": job.run_name}
                ]
            }
        )
        resp = await self._call(lambda c: c.list_runs(filter=flt, page_size=10))
        runs = [r for r in (resp.runs or []) if r.display_name == job.run_name]
        if len(runs) > 1:
            log.warning("%d KFP runs named %s; following the oldest", len(runs), job.run_name)
        if not runs:
            return None
        runs.sort(key=lambda r: str(r.created_at or ""))
        return self._ref(runs[0])

    async def submit(
        self,
        job: JobId,
        package: Path,
        parameters: dict[str, Any],
        credentials_secret: str | None = None,
    ) -> RunRef:
        def create(c: Any) -> Any:
            with tempfile.TemporaryDirectory(prefix="mlops-kfp-") as tmp:
                path = package
                if credentials_secret:
                    path = _with_secret_env(package, Path(tmp), credentials_secret)
                return c.create_run_from_pipeline_package(
                    str(path),
                    arguments=parameters,
                    run_name=job.run_name,
                    experiment_name=EXPERIMENT,
                    enable_caching=False,
                )

        result = await self._call(create)
        return RunRef(
            id=str(result.run_id),
            name=job.run_name,
            url=f"{self.host}/#/runs/details/{result.run_id}",
        )

    async def poll(self, ref: RunRef) -> RunState:
        run = await self._call(lambda c: c.get_run(ref.id))
        state = str(run.state or "RUNTIME_STATE_UNSPECIFIED")
        phase = phase_of(state)
        if phase == "Failed":
            err = getattr(run, "error", None)
            msg = getattr(err, "message", None) or f"the KFP run ended {state}"
            return RunState("Failed", f"Run{state.capitalize()}", str(msg), state)
        if phase == "Succeeded":
            return RunState("Succeeded", "Completed", "the KFP run succeeded", state)
        return RunState(phase, backend_state=state)  # type: ignore[arg-type]

    async def stop(self, ref: RunRef) -> None:
        await self._call(lambda c: c.terminate_run(ref.id))

    async def restart(self, ref: RunRef) -> None:
        raise NotImplementedError(f"KFP runs are not restarted by the operator ({ref.id})")


def _with_secret_env(package: Path, tmp: Path, secret: str) -> Path:
    """A copy of `package` with the platform spec as its second YAML document, as kfp's
    compiler writes it for kfp-kubernetes (kfp.Client submits both)."""
    spec = yaml.safe_load(package.read_text())
    out = tmp / package.name
    out.write_text(yaml.safe_dump_all([spec, platform.secret_env(spec, secret)], sort_keys=False))
    return out


def _short(e: BaseException) -> str:
    s = str(e).strip()
    return (s.splitlines()[0] if s else type(e).__name__)[:300]
