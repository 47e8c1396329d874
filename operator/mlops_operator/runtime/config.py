"""Runtime settings, read once from the environment and validated before anything starts.

The operator sets the first five (DESIGN.md, "The runtime container"); the rest have defaults
that suit a pod and exist for tuning and for the benchmark. MLflow reads its own variables
(``MLFLOW_TRACKING_URI``, credentials from the ``credentialsSecret``) itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mlops_operator.contract import (
    ENV_MLFLOW_TRACKING_URI,
    ENV_MODEL_DEPLOYMENT,
    ENV_MODEL_NAME,
    ENV_MODEL_URI,
    ENV_POD_NAMESPACE,
    ENV_PORT,
)
from mlops_operator.runtime.model import parse_model_uri

# variable -> meaning; the single list that docs and --help print
VARIABLES: dict[str, str] = {
    ENV_MODEL_URI: "model to serve: models:/<name>/<version> (pinned by the operator) or a path",
    ENV_MODEL_NAME: "name in the OIP paths /v2/models/<name>/... (the ModelDeployment's name)",
    ENV_MODEL_DEPLOYMENT: "value of the model_deployment metric label (default MODEL_NAME)",
    ENV_POD_NAMESPACE: "value of the namespace metric label (downward API; default empty)",
    ENV_MLFLOW_TRACKING_URI: "registry to download models:/ URIs from (read by MLflow)",
    ENV_PORT: "HTTP port (default 8080)",
    "MLOPS_HOST": "address to bind (default 0.0.0.0)",
    "MLOPS_DRIFT": "on|off: keep the drift window and export PSI gauges (default on)",
    "MLOPS_DRIFT_WINDOW": "rows in the sliding drift window (default 10000)",
    "MLOPS_DRIFT_MIN_ROWS": "rows needed before PSI is exported (default 500)",
    "MLOPS_PREDICT_THREADS": "threads that run the model; 0 = on the event loop (default 1)",
    "MLOPS_DRAIN_SECONDS": "on SIGTERM, how long in-flight requests may take (default 30)",
    "MLOPS_KEEP_ALIVE_SECONDS": "idle keep-alive timeout; above proxies' 60 s (default 75)",
    "MLOPS_MAX_BODY_BYTES": "largest request body accepted (default 67108864)",
    "MLOPS_DIRECT_PREDICT": "on|off: skip MLflow's re-enforcement of codec-typed frames (on)",
    "MLOPS_PRELOAD_MODULES": "modules imported before MLflow, comma-separated (skops.io)",
    "MLOPS_LOG_LEVEL": "DEBUG|INFO|WARNING|ERROR (default INFO)",
}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RuntimeConfig:
    model_uri: str
    model_name: str
    model_deployment: str
    namespace: str = ""
    host: str = "0.0.0.0"
    port: int = 8080
    drift: bool = True
    drift_window: int = 10_000
    drift_min_rows: int = 500
    predict_threads: int = 1
    drain_seconds: float = 30.0
    keep_alive_seconds: float = 75.0
    max_body_bytes: int = 64 * 1024 * 1024
    direct_predict: bool = True
    preload_modules: tuple[str, ...] = ("skops.io",)
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuntimeConfig:
        e = os.environ if env is None else env
        uri = e.get(ENV_MODEL_URI, "").strip()
        if not uri:
            raise ConfigError("MODEL_URI is required (models:/<name>/<version> or a path)")
        name = e.get(ENV_MODEL_NAME, "").strip() or e.get(ENV_MODEL_DEPLOYMENT, "").strip()
        name = name or parse_model_uri(uri).name
        if not name or "/" in name:
            raise ConfigError(f"MODEL_NAME must be a non-empty name without '/': {name!r}")
        level = e.get("MLOPS_LOG_LEVEL", "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"MLOPS_LOG_LEVEL: unknown level {level!r}")
        return cls(
            model_uri=uri,
            model_name=name,
            model_deployment=e.get(ENV_MODEL_DEPLOYMENT, "").strip() or name,
            namespace=e.get(ENV_POD_NAMESPACE, "").strip(),
            host=e.get("MLOPS_HOST", "0.0.0.0"),
            port=_int(e, ENV_PORT, 8080, 1, 65535),
            drift=_switch(e, "MLOPS_DRIFT", True),
            drift_window=_int(e, "MLOPS_DRIFT_WINDOW", 10_000, 1, 10_000_000),
            drift_min_rows=_int(e, "MLOPS_DRIFT_MIN_ROWS", 500, 1, 10_000_000),
            predict_threads=_int(e, "MLOPS_PREDICT_THREADS", 1, 0, 256),
            drain_seconds=_float(e, "MLOPS_DRAIN_SECONDS", 30.0),
            keep_alive_seconds=_float(e, "MLOPS_KEEP_ALIVE_SECONDS", 75.0),
            max_body_bytes=_int(e, "MLOPS_MAX_BODY_BYTES", 64 * 1024 * 1024, 1, 2**40),
            direct_predict=_switch(e, "MLOPS_DIRECT_PREDICT", True),
            preload_modules=tuple(
                m.strip()
                for m in e.get("MLOPS_PRELOAD_MODULES", "skops.io").split(",")
                if m.strip()
            ),
            log_level=level,
        )


def _int(e: Mapping[str, str], key: str, default: int, lo: int, hi: int) -> int:
    raw = e.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{key} must be between {lo} and {hi}, got {value}")
    return value


def _float(e: Mapping[str, str], key: str, default: float) -> float:
    raw = e.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number of seconds, got {raw!r}") from None
    if not 0 <= value < 86400:
        raise ConfigError(f"{key} must be between 0 and 86400, got {value}")
    return value


def _switch(e: Mapping[str, str], key: str, default: bool) -> bool:
    raw = e.get(key, "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{key} must be on or off, got {raw!r}")
