"""Runtime settings: a pydantic-settings model, read once from the environment and validated
before anything starts.

The operator sets the first six (DESIGN.md, "The runtime container"); the rest have defaults
that suit a pod and exist for tuning and for the benchmark. MLflow reads its own variables
(``MLFLOW_TRACKING_URI``, credentials from the ``credentialsSecret``) itself. docs/runtime.md's
table is generated from these fields (`make docs`; a test fails when it is stale).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode

from mlops_operator.contract import (
    ENV_MLFLOW_TRACKING_URI,
    ENV_MODEL_DEPLOYMENT,
    ENV_MODEL_NAME,
    ENV_MODEL_URI,
    ENV_MODEL_VERSION,
    ENV_POD_NAMESPACE,
    ENV_PORT,
    ENV_WORKERS,
    SHADOW_CONFIG_DIR,
    SHADOW_CONFIG_KEY,
)
from mlops_operator.envsettings import EnvSettings, sync_docs, var
from mlops_operator.runtime.model import parse_model_uri

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TABLE_START, TABLE_END = "<!-- runtime table: make docs -->\n", "<!-- end of runtime table -->\n"


class ConfigError(ValueError):
    pass


class RuntimeConfig(EnvSettings):
    error = ConfigError

    model_uri: str = var(
        ENV_MODEL_URI,
        "",
        "Required. The model to serve: models:/<name>/<version> (pinned by the operator) "
        "or a path.",
    )
    model_name: str = var(
        ENV_MODEL_NAME,
        "",
        "Name in the OIP paths /v2/models/<name>/... (the ModelDeployment's name); "
        f"empty = {ENV_MODEL_DEPLOYMENT}, else the registered model's name.",
    )
    model_deployment: str = var(
        ENV_MODEL_DEPLOYMENT,
        "",
        f"Value of the model_deployment metric label; empty = {ENV_MODEL_NAME}.",
    )
    model_version: str = var(
        ENV_MODEL_VERSION,
        "",
        "Value of the model_version metric label; empty = the version in "
        f"{ENV_MODEL_URI} (models:/<name>/<version>).",
    )
    namespace: str = var(
        ENV_POD_NAMESPACE, "", "Value of the namespace metric label (the downward API sets it)."
    )
    mlflow_tracking_uri: str = var(
        ENV_MLFLOW_TRACKING_URI, "", "Registry to download models:/ URIs from (read by MLflow)."
    )
    port: int = var(ENV_PORT, "8080", "HTTP port.")
    host: str = var("MLOPS_HOST", "0.0.0.0", "Address to bind.")
    drift: bool = var(
        "MLOPS_DRIFT", "on", "`on`/`off`: keep the drift window and export PSI gauges."
    )
    drift_window: int = var("MLOPS_DRIFT_WINDOW", "10000", "Rows in the sliding drift window.")
    drift_min_rows: int = var("MLOPS_DRIFT_MIN_ROWS", "500", "Rows needed before PSI is exported.")
    workers: int = var(
        ENV_WORKERS,
        "1",
        "Worker processes serving the port together (SO_REUSEPORT), each with its own copy of "
        "the model; /metrics and readiness speak for all of them. The operator sets it from "
        "the container's CPU request (whole cores, 1 to 8) unless spec.runtime.env does.",
    )
    predict_threads: int = var(
        "MLOPS_PREDICT_THREADS", "1", "Threads that run the model; 0 = on the event loop."
    )
    batch_max_size: int = var(
        "MLOPS_BATCH_MAX_SIZE",
        "32",
        "Adaptive batching: at most this many concurrent requests scored by one model call "
        "(1 = off; off when MLOPS_PREDICT_THREADS is 0). A request that finds the model idle "
        "is scored at once.",
    )
    batch_max_wait_ms: float = var(
        "MLOPS_BATCH_MAX_WAIT_MS",
        "2",
        "How long a batch that is not full may wait for more requests, counted from its oldest "
        "request's arrival; only while requests queue behind a running call.",
    )
    drain_seconds: float = var(
        "MLOPS_DRAIN_SECONDS", "30", "On SIGTERM, how long in-flight requests may take."
    )
    drain_delay_seconds: float = var(
        "MLOPS_DRAIN_DELAY_SECONDS",
        "5",
        "On the preStop call (GET /-/drain): how long to keep answering, every answer closing "
        "its connection, before SIGTERM comes.",
    )
    keep_alive_seconds: float = var(
        "MLOPS_KEEP_ALIVE_SECONDS", "75", "Idle keep-alive timeout; above proxies' 60 s."
    )
    max_body_bytes: int = var(
        "MLOPS_MAX_BODY_BYTES", "67108864", "Largest request body accepted (64 MiB)."
    )
    direct_predict: bool = var(
        "MLOPS_DIRECT_PREDICT",
        "on",
        "`on`/`off`: skip MLflow's re-enforcement of codec-typed frames.",
    )
    # NoDecode: a comma-separated list, not the JSON pydantic-settings expects by default
    preload_modules: Annotated[tuple[str, ...], NoDecode] = var(
        "MLOPS_PRELOAD_MODULES", "skops.io", "Modules imported before MLflow, comma-separated."
    )
    log_level: str = var("MLOPS_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR.")
    shadow_file: str = var(
        "MLOPS_SHADOW_FILE",
        f"{SHADOW_CONFIG_DIR}/{SHADOW_CONFIG_KEY}",
        "Where the operator's shadow config appears (the ConfigMap <name>-shadow, mounted "
        "optional); re-read every 2 s. Empty = never copy requests.",
    )
    shadow_queue: int = var(
        "MLOPS_SHADOW_QUEUE", "256", "Copies waiting for the candidate; beyond it they are dropped."
    )
    shadow_concurrency: int = var(
        "MLOPS_SHADOW_CONCURRENCY", "4", "Copies in flight to the candidate at once."
    )
    shadow_timeout_seconds: float = var(
        "MLOPS_SHADOW_TIMEOUT_SECONDS", "5", "How long a copy may wait for the candidate."
    )

    @field_validator("*", mode="before")
    @classmethod
    def _each(cls, value: Any, info: ValidationInfo) -> object:
        assert info.field_name is not None
        return _parse(info.field_name, cls.env_name(info.field_name), str(value).strip())

    @model_validator(mode="after")
    def _names(self) -> RuntimeConfig:
        # the metric label and the OIP name default to each other, then to the model's name
        name = self.model_name or self.model_deployment or parse_model_uri(self.model_uri).name
        if not name or "/" in name:
            raise ConfigError(f"{ENV_MODEL_NAME} must be a non-empty name without '/': {name!r}")
        object.__setattr__(self, "model_name", name)
        object.__setattr__(self, "model_deployment", self.model_deployment or name)
        version = self.model_version or parse_model_uri(self.model_uri).version
        # models:/<name>@<alias> names no version: the label stays empty
        object.__setattr__(self, "model_version", "" if version.startswith("@") else version)
        return self


INTS = {
    "port": (1, 65535),
    "drift_window": (1, 10_000_000),
    "drift_min_rows": (1, 10_000_000),
    "workers": (1, 64),
    "predict_threads": (0, 256),
    "batch_max_size": (1, 4096),
    "max_body_bytes": (1, 2**40),
    "shadow_queue": (1, 100_000),
    "shadow_concurrency": (1, 256),
}


def _parse(attr: str, key: str, raw: str) -> object:
    if attr == "model_uri" and not raw:
        raise ConfigError(f"{key} is required (models:/<name>/<version> or a path)")
    if attr in INTS:
        lo, hi = INTS[attr]
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ConfigError(f"{key} must be between {lo} and {hi}, got {value}")
        return value
    if attr == "batch_max_wait_ms":
        try:
            ms = float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number of milliseconds, got {raw!r}") from None
        if not 0 <= ms <= 1000:
            raise ConfigError(f"{key} must be between 0 and 1000, got {ms}")
        return ms
    if attr in (
        "drain_seconds",
        "drain_delay_seconds",
        "keep_alive_seconds",
        "shadow_timeout_seconds",
    ):
        try:
            seconds = float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number of seconds, got {raw!r}") from None
        if not 0 <= seconds < 86400:
            raise ConfigError(f"{key} must be between 0 and 86400, got {seconds}")
        return seconds
    if attr in ("drift", "direct_predict"):
        if raw.lower() in ("on", "true", "1", "yes"):
            return True
        if raw.lower() in ("off", "false", "0", "no"):
            return False
        raise ConfigError(f"{key} must be on or off, got {raw!r}")
    if attr == "preload_modules":
        return tuple(m.strip() for m in raw.split(",") if m.strip())
    if attr == "log_level":
        if raw.upper() not in LEVELS:
            raise ConfigError(f"{key}: unknown level {raw.upper()!r}")
        return raw.upper()
    return raw


def render_docs(text: str) -> str:
    """`text` (docs/runtime.md) with its generated table replaced by the current one."""
    return RuntimeConfig.render(text, TABLE_START, TABLE_END)


if __name__ == "__main__":  # python -m mlops_operator.runtime.config docs/runtime.md [--check]
    sys.exit(sync_docs(Path(sys.argv[1]), render_docs, "--check" in sys.argv[2:]))
