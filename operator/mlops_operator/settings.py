"""The operator's settings: one typed object, read once from the environment at start.

Every variable is documented here (the `help` of each field) and in docs/settings.md; a test
keeps the two in step. A bad value stops the operator at start with a message naming the
variable, instead of failing later inside a handler.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast
from urllib.parse import urlparse

Backend = Literal["local", "kfp"]


class SettingsError(ValueError):
    """A setting has a value the operator cannot use."""


def _var(name: str, default: str, help: str) -> Any:
    # Defaults are written as the environment variable would be, and parsed like it, so
    # docs/settings.md shows exactly what to type. The metadata feeds the docs and errors.
    return field(default=default, metadata={"env": name, "help": help})


@dataclass(frozen=True)
class Settings:
    mlflow_tracking_uri: str = _var(
        "MLFLOW_TRACKING_URI",
        "http://127.0.0.1:5000",
        "MLflow tracking server the operator resolves aliases and versions against "
        "(MLflow's own variable).",
    )
    runtime_image: str = _var(
        "MLOPS_RUNTIME_IMAGE",
        "ghcr.io/mlops-operator/runtime:0.1.0",
        "Default container image of the `mlflow` runtime (spec.runtime.image overrides it).",
    )
    runtime_mlflow_uri: str = _var(
        "MLOPS_RUNTIME_MLFLOW_URI",
        "",
        "MLflow URI the model pods use to download the model; empty = MLFLOW_TRACKING_URI. "
        "Set it when pods reach MLflow under another address than the operator does.",
    )
    resync_seconds: float = _var(
        "MLOPS_RESYNC_SECONDS",
        "30",
        "Seconds between periodic re-checks of every ModelDeployment (alias moves, children).",
    )
    pipeline_backend: Backend = _var(
        "MLOPS_PIPELINE_BACKEND",
        "local",
        "Default RetrainJob backend: `local` (kfp's local runner in a worker process) or "
        "`kfp` (a Kubeflow Pipelines API server).",
    )
    kfp_host: str = _var(
        "MLOPS_KFP_HOST",
        "",
        "Kubeflow Pipelines API endpoint for the `kfp` backend, e.g. http://ml-pipeline.kubeflow:8888.",
    )
    prometheus_url: str = _var(
        "MLOPS_PROMETHEUS_URL",
        "",
        "Prometheus the drift trigger queries; empty disables drift-triggered retraining.",
    )
    local_concurrency: int = _var(
        "MLOPS_LOCAL_CONCURRENCY", "2", "How many `local` pipeline runs may execute at once."
    )
    namespaces: tuple[str, ...] = _var(
        "MLOPS_NAMESPACES",
        "",
        "Comma-separated namespaces, or globs such as team-*, to watch; empty = all namespaces.",
    )
    work_dir: str = _var(
        "MLOPS_WORK_DIR",
        "/tmp/mlops-operator",
        "Where the `local` backend keeps run directories and logs.",
    )
    metrics_port: int = _var(
        "MLOPS_METRICS_PORT",
        "8080",
        "Port of the operator's /metrics and health endpoints (0 = off).",
    )
    log_level: str = _var(
        "MLOPS_LOG_LEVEL", "INFO", "Python log level of the operator: DEBUG, INFO, WARNING, ERROR."
    )
    leader_election: bool = _var(
        "MLOPS_LEADER_ELECTION",
        "false",
        "Elect a leader on a coordination.k8s.io/v1 Lease so that of several replicas only one "
        "reconciles and a standby takes over when it dies (`true`/`false`; the chart turns it on).",
    )
    leader_election_namespace: str = _var(
        "MLOPS_LEADER_ELECTION_NAMESPACE",
        "",
        "Namespace of the leader-election Lease; empty = the pod's own namespace in a cluster, "
        "`default` outside one.",
    )
    leader_election_name: str = _var(
        "MLOPS_LEADER_ELECTION_NAME",
        "mlops-operator",
        "Name of the leader-election Lease; replicas that share it elect one leader.",
    )
    leader_election_lease_seconds: float = _var(
        "MLOPS_LEADER_ELECTION_LEASE_SECONDS",
        "15",
        "How long a leader's Lease is valid without renewal: a standby takes over that long "
        "after the leader dies. The leader renews every 2/15 of it and gives up (exits) when "
        "it could not renew for 2/3 of it, as client-go does with 15 s / 10 s / 2 s.",
    )

    @property
    def pod_mlflow_uri(self) -> str:
        return self.runtime_mlflow_uri or self.mlflow_tracking_uri

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = env.get(name, f.default)
            values[f.name] = _parse(f.name, name, str(raw).strip())
        return cls(**values)  # type: ignore[arg-type]


def _parse(attr: str, name: str, raw: str) -> object:
    def bad(why: str) -> SettingsError:
        return SettingsError(f"{name}={raw!r} is invalid: {why}")

    if attr in ("mlflow_tracking_uri", "runtime_mlflow_uri", "kfp_host", "prometheus_url"):
        if not raw:
            if attr == "mlflow_tracking_uri":
                raise bad("the operator needs an MLflow tracking server")
            return ""
        u = urlparse(raw)
        ok = u.scheme in ("http", "https") and bool(u.netloc)
        # MLflow also takes local stores, handy for a laptop and for tests
        ok |= attr in ("mlflow_tracking_uri", "runtime_mlflow_uri") and u.scheme in (
            "file",
            "sqlite",
        )
        if not ok:
            raise bad("expected an http(s):// URL")
        return raw.rstrip("/")
    if attr == "resync_seconds":
        try:
            v = float(raw)
        except ValueError:
            raise bad("expected a number of seconds") from None
        if not 1 <= v <= 86400:
            raise bad("expected between 1 and 86400 seconds")
        return v
    if attr in ("local_concurrency", "metrics_port"):
        try:
            n = int(raw)
        except ValueError:
            raise bad("expected an integer") from None
        lo, hi = (1, 64) if attr == "local_concurrency" else (0, 65535)
        if not lo <= n <= hi:
            raise bad(f"expected between {lo} and {hi}")
        return n
    if attr == "pipeline_backend":
        if raw not in ("local", "kfp"):
            raise bad("expected `local` or `kfp`")
        return cast(Backend, raw)
    if attr == "namespaces":
        items = tuple(s.strip() for s in raw.split(",") if s.strip())
        for ns in items:
            # kopf takes globs too (e.g. team-*), then it watches namespaces to find them
            if not _is_dns_label(ns.replace("*", "x")):
                raise bad(f"{ns!r} is not a namespace name or glob")
        return items
    if attr == "leader_election":
        if raw.lower() in ("true", "1", "yes", "on"):
            return True
        if raw.lower() in ("false", "0", "no", "off", ""):
            return False
        raise bad("expected true or false")
    if attr == "leader_election_namespace":
        if raw and not _is_dns_label(raw):
            raise bad("not a namespace name")
        return raw
    if attr == "leader_election_name":
        if not _is_dns_subdomain(raw):
            raise bad("expected a Lease name (lower-case DNS subdomain)")
        return raw
    if attr == "leader_election_lease_seconds":
        try:
            v = float(raw)
        except ValueError:
            raise bad("expected a number of seconds") from None
        # below ~3 s one slow API call loses the lease; above 5 min a dead leader blocks long
        if not 3 <= v <= 300:
            raise bad("expected between 3 and 300 seconds")
        return v
    if attr == "log_level":
        if raw.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise bad("expected DEBUG, INFO, WARNING or ERROR")
        return raw.upper()
    if not raw and attr == "runtime_image":
        raise bad("an image is required")
    return raw


def _is_dns_label(s: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", s))


def _is_dns_subdomain(s: str) -> bool:
    import re

    return len(s) <= 253 and bool(
        re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", s)
    )


def documented_variables() -> dict[str, tuple[str, str]]:
    """name -> (default, help), for docs and for the test that keeps the docs complete."""
    return {f.metadata["env"]: (str(f.default), f.metadata["help"]) for f in fields(Settings)}
