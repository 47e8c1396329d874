"""The operator's settings: one pydantic-settings model, read once from the environment at start.

Every variable is a field here: its environment name (validation_alias), its default as one
would type it, and its help. docs/settings.md's table is generated from these fields
(`make docs`; a test fails when it is stale). A bad value stops the operator at start with a
message naming the variable, instead of failing later inside a handler.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlparse

from pydantic import ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode

from mlops_operator.envsettings import EnvSettings, sync_docs, var

Backend = Literal["local", "kfp"]


class SettingsError(ValueError):
    """A setting has a value the operator cannot use."""


class Settings(EnvSettings):
    error = SettingsError

    mlflow_tracking_uri: str = var(
        "MLFLOW_TRACKING_URI",
        "http://127.0.0.1:5000",
        "MLflow tracking server the operator resolves aliases and versions against "
        "(MLflow's own variable).",
    )
    runtime_image: str = var(
        "MLOPS_RUNTIME_IMAGE",
        "ghcr.io/mlops-operator/runtime:0.1.0",
        "Default container image of the `mlflow` runtime (spec.runtime.image overrides it).",
    )
    runtime_mlflow_uri: str = var(
        "MLOPS_RUNTIME_MLFLOW_URI",
        "",
        "MLflow URI the model pods use to download the model; empty = MLFLOW_TRACKING_URI. "
        "Set it when pods reach MLflow under another address than the operator does.",
    )
    resync_seconds: float = var(
        "MLOPS_RESYNC_SECONDS",
        "30",
        "Seconds between periodic re-checks of every ModelDeployment (alias moves, children).",
    )
    api_timeout_seconds: float = var(
        "MLOPS_API_TIMEOUT_SECONDS",
        "30",
        "Seconds the operator waits for one API server request before it counts it as failed, "
        "reports it in status (ApiUnavailable) and retries with backoff.",
    )
    pipeline_backend: Backend = var(
        "MLOPS_PIPELINE_BACKEND",
        "local",
        "Default RetrainJob backend: `local` (kfp's local runner in a worker process) or "
        "`kfp` (a Kubeflow Pipelines API server).",
    )
    kfp_host: str = var(
        "MLOPS_KFP_HOST",
        "",
        "Kubeflow Pipelines API endpoint for the `kfp` backend, e.g. http://ml-pipeline.kubeflow:8888.",
    )
    prometheus_url: str = var(
        "MLOPS_PROMETHEUS_URL",
        "",
        "Prometheus the drift trigger and canary analysis query; empty disables "
        "drift-triggered retraining, and a Canary rollout then stalls (RolloutUnavailable).",
    )
    local_concurrency: int = var(
        "MLOPS_LOCAL_CONCURRENCY", "2", "How many `local` pipeline runs may execute at once."
    )
    max_concurrent_reconciles: int = var(
        "MLOPS_MAX_CONCURRENT_RECONCILES",
        "16",
        "How many ModelDeployments (and, apart, RetrainJobs) are reconciled at once; the others "
        "wait their turn, first come first served.",
    )
    pipeline_packages_dir: str = var(
        "MLOPS_PIPELINE_PACKAGES_DIR",
        "",
        "A directory of compiled pipeline packages (`<name>.yaml`, as `make pipelines` writes "
        "them) that RetrainJobs may name beside the shipped ones; a shipped name always means "
        "the shipped pipeline. Empty: the shipped pipelines only.",
    )
    # NoDecode: a comma-separated list, not the JSON pydantic-settings expects by default
    namespaces: Annotated[tuple[str, ...], NoDecode] = var(
        "MLOPS_NAMESPACES",
        "",
        "Comma-separated namespaces, or globs such as team-*, to watch; empty = all namespaces.",
    )
    work_dir: str = var(
        "MLOPS_WORK_DIR",
        "/tmp/mlops-operator",
        "Where the `local` backend keeps run directories and logs.",
    )
    metrics_port: int = var(
        "MLOPS_METRICS_PORT",
        "8080",
        "Port of the operator's /metrics and health endpoints (0 = off).",
    )
    webhook_port: int = var(
        "MLOPS_WEBHOOK_PORT",
        "0",
        "HTTPS port of the MLflow registry webhook receiver (POST /webhooks/mlflow; 0 = off). "
        "A delivered alias move reconciles the ModelDeployments following that alias at once "
        "instead of at their next resync. Needs the three settings below.",
    )
    webhook_cert_file: str = var(
        "MLOPS_WEBHOOK_CERT_FILE",
        "",
        "PEM certificate (chain) the webhook receiver serves; MLflow must trust its issuer.",
    )
    webhook_key_file: str = var(
        "MLOPS_WEBHOOK_KEY_FILE", "", "PEM private key of MLOPS_WEBHOOK_CERT_FILE."
    )
    webhook_secret: str = var(
        "MLOPS_WEBHOOK_SECRET",
        "",
        "The secret the MLflow webhook was created with: a delivery whose HMAC signature does "
        "not match it is refused (and counted as forged).",
    )
    webhook_tolerance_seconds: float = var(
        "MLOPS_WEBHOOK_TOLERANCE_SECONDS",
        "300",
        "How far a delivery's timestamp may be from now, either way, before it is refused as "
        "stale; a delivery id seen within twice this is refused as a replay.",
    )
    log_level: str = var(
        "MLOPS_LOG_LEVEL", "INFO", "Python log level of the operator: DEBUG, INFO, WARNING, ERROR."
    )
    leader_election: bool = var(
        "MLOPS_LEADER_ELECTION",
        "false",
        "Elect a leader on a coordination.k8s.io/v1 Lease so that of several replicas only one "
        "reconciles and a standby takes over when it dies (`true`/`false`; the chart turns it on).",
    )
    leader_election_namespace: str = var(
        "MLOPS_LEADER_ELECTION_NAMESPACE",
        "",
        "Namespace of the leader-election Lease; empty = the pod's own namespace in a cluster, "
        "`default` outside one.",
    )
    leader_election_name: str = var(
        "MLOPS_LEADER_ELECTION_NAME",
        "mlops-operator",
        "Name of the leader-election Lease; replicas that share it elect one leader.",
    )
    leader_election_lease_seconds: float = var(
        "MLOPS_LEADER_ELECTION_LEASE_SECONDS",
        "15",
        "How long a leader's Lease is valid without renewal: a standby takes over that long "
        "after the leader dies. The leader renews every 2/15 of it and gives up (exits) when "
        "it could not renew for 2/3 of it, as client-go does with 15 s / 10 s / 2 s.",
    )

    @model_validator(mode="after")
    def _webhook_complete(self) -> Settings:
        if self.webhook_port:
            for attr in ("webhook_cert_file", "webhook_key_file", "webhook_secret"):
                if not getattr(self, attr):
                    raise SettingsError(
                        f"{self.env_name(attr)} is required when MLOPS_WEBHOOK_PORT is set"
                    )
            if self.webhook_port == self.metrics_port:
                raise SettingsError("MLOPS_WEBHOOK_PORT must differ from MLOPS_METRICS_PORT")
        return self

    @property
    def pod_mlflow_uri(self) -> str:
        return self.runtime_mlflow_uri or self.mlflow_tracking_uri

    @field_validator("*", mode="before")
    @classmethod
    def _each(cls, value: Any, info: ValidationInfo) -> object:
        assert info.field_name is not None
        name = cls.model_fields[info.field_name].validation_alias
        return _parse(info.field_name, str(name), str(value).strip())


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
    if attr in ("resync_seconds", "api_timeout_seconds", "webhook_tolerance_seconds"):
        try:
            v = float(raw)
        except ValueError:
            raise bad("expected a number of seconds") from None
        hi = 86400 if attr == "resync_seconds" else 600
        if not 1 <= v <= hi:
            raise bad(f"expected between 1 and {hi} seconds")
        return v
    if attr in ("webhook_cert_file", "webhook_key_file") and raw and not Path(raw).is_file():
        raise bad("no such file")
    if attr in ("local_concurrency", "max_concurrent_reconciles", "metrics_port", "webhook_port"):
        try:
            n = int(raw)
        except ValueError:
            raise bad("expected an integer") from None
        lo, hi = {"local_concurrency": (1, 64), "max_concurrent_reconciles": (1, 1000)}.get(
            attr, (0, 65535)
        )
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
    return bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", s))


def _is_dns_subdomain(s: str) -> bool:
    return len(s) <= 253 and bool(
        re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", s)
    )


def documented_variables() -> dict[str, tuple[str, str]]:
    """name -> (default as typed, help), in declaration order: the docs table's rows."""
    return Settings.documented()


TABLE_START, TABLE_END = "<!-- settings table: make docs -->\n", "<!-- end of settings table -->\n"


def render_docs(text: str) -> str:
    """`text` (docs/settings.md) with its generated table replaced by the current one."""
    return Settings.render(text, TABLE_START, TABLE_END)


def main(argv: list[str]) -> int:
    """python -m mlops_operator.settings docs/settings.md [--check]"""
    return sync_docs(Path(argv[0]), render_docs, "--check" in argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
