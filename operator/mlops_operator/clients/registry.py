"""The MLflow model registry, as the operator needs it.

MLflow's client blocks, so every call runs in a worker thread; nothing outside this module
knows. Errors come out as RegistryError with the condition reason the status uses.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Protocol

from mlops_operator.builders.model_deployment import ResolvedModel


class RegistryError(Exception):
    """reason is one of ModelNotFound, VersionNotFound, AliasNotSet, RegistryUnavailable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Registry(Protocol):
    async def resolve(self, name: str, alias: str | None, version: str | None) -> ResolvedModel: ...


def _configure_http_retries() -> None:
    # MLflow retries each request up to 7 times with exponential backoff (minutes in all)
    # by default. The operator has its own backoff and must report an outage promptly.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


class MlflowRegistry:
    def __init__(self, tracking_uri: str) -> None:
        _configure_http_retries()
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    async def resolve(self, name: str, alias: str | None, version: str | None) -> ResolvedModel:
        return await asyncio.to_thread(self._resolve, name, alias, version)

    def _resolve(self, name: str, alias: str | None, version: str | None) -> ResolvedModel:
        c = self._client
        try:
            if alias:
                mv = self._call(
                    lambda: c.get_model_version_by_alias(name, alias), name, alias=alias
                )
            else:
                mv = self._call(
                    lambda: c.get_model_version(name, str(version)), name, version=version
                )
            source = self._call(
                lambda: c.get_model_version_download_uri(name, mv.version), name, version=mv.version
            )
        except RegistryError:
            raise
        return ResolvedModel(
            name=name,
            version=str(mv.version),
            alias=alias,
            source=str(source),
            run_id=mv.run_id or None,
        )

    def _call(
        self, fn: Any, name: str, alias: str | None = None, version: str | None = None
    ) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn()
        except MlflowException as e:
            code = str(getattr(e, "error_code", ""))
            if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise self._missing(name, alias, version) from e
            raise RegistryError(
                "RegistryUnavailable", f"MLflow at {self.tracking_uri}: {_short(e)}"
            ) from e
        except Exception as e:  # connection refused, timeouts, DNS: all "unavailable"
            raise RegistryError(
                "RegistryUnavailable", f"MLflow at {self.tracking_uri} unreachable: {_short(e)}"
            ) from e

    def _missing(self, name: str, alias: str | None, version: str | None) -> RegistryError:
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(name)
        except MlflowException as e:
            if str(getattr(e, "error_code", "")) in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return RegistryError(
                    "ModelNotFound", f"registered model {name!r} does not exist in MLflow"
                )
            return RegistryError("RegistryUnavailable", f"MLflow: {_short(e)}")
        except Exception as e:
            return RegistryError("RegistryUnavailable", f"MLflow unreachable: {_short(e)}")
        if alias:
            return RegistryError("AliasNotSet", f"registered model {name!r} has no alias {alias!r}")
        return RegistryError(
            "VersionNotFound", f"registered model {name!r} has no version {version}"
        )


def _short(e: BaseException) -> str:
    s = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return s[:300]
