"""The MLflow model registry, as the operator needs it.

MLflow's client blocks, so every call runs in a worker thread; nothing outside this module
knows. Errors come out as RegistryError with the condition reason the status uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

from mlops_operator.contract import TAG_METRIC_PREFIX, Reason, ResolvedModel


class RegistryError(Exception):
    """reason: Reason.MODEL_NOT_FOUND, VERSION_NOT_FOUND, ALIAS_NOT_SET or REGISTRY_UNAVAILABLE."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class VersionInfo:
    version: str
    metrics: dict[str, float]
    tags: dict[str, str]


class Registry(Protocol):
    async def resolve(self, name: str, alias: str | None, version: str | None) -> ResolvedModel: ...

    async def find_version_by_tag(self, name: str, key: str, value: str) -> VersionInfo | None: ...

    async def version_info(self, name: str, version: str) -> VersionInfo: ...

    async def alias_holder(self, name: str, alias: str) -> str | None: ...

    async def set_alias(self, name: str, alias: str, version: str) -> None: ...

    async def set_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...


CACHE_SECONDS = 1.0


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
        self._cache: dict[tuple[str, str | None, str | None], tuple[float, ResolvedModel]] = {}
        self._inflight: dict[tuple[str, str | None, str | None], asyncio.Future[ResolvedModel]] = {}
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    async def resolve(self, name: str, alias: str | None, version: str | None) -> ResolvedModel:
        # Many ModelDeployments may follow the same alias and resync together: one lookup
        # per (model, alias|version) per second is enough, and spares the registry.
        key = (name, alias, version)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        # single flight: callers arriving while a lookup is under way share its answer
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(self._resolve, name, alias, version))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(key, None))
        resolved = await asyncio.shield(pending)
        self._cache[key] = (now, resolved)
        if len(self._cache) > 10_000:
            self._cache.clear()
        return resolved

    def _resolve(self, name: str, alias: str | None, version: str | None) -> ResolvedModel:
        c = self._client
        if alias:
            mv = self._call(lambda: c.get_model_version_by_alias(name, alias), name, alias=alias)
        else:
            mv = self._call(lambda: c.get_model_version(name, str(version)), name, version=version)
        source = self._call(
            lambda: c.get_model_version_download_uri(name, mv.version), name, version=mv.version
        )
        return ResolvedModel(
            name=name,
            version=str(mv.version),
            alias=alias,
            source=str(source),
            run_id=mv.run_id or None,
        )

    async def find_version_by_tag(self, name: str, key: str, value: str) -> VersionInfo | None:
        return await asyncio.to_thread(self._find_by_tag, name, key, value)

    def _find_by_tag(self, name: str, key: str, value: str) -> VersionInfo | None:
        c = self._client
        flt = f"name = '{_quote(name)}' and tags.`{key}` = '{_quote(value)}'"
        found = self._call(lambda: c.search_model_versions(flt), name)
        if not found:
            return None
        # the tag is unique per RetrainJob uid; should two ever exist, the oldest wins
        return self._info(min(found, key=lambda v: int(v.version)))

    async def version_info(self, name: str, version: str) -> VersionInfo:
        def get() -> VersionInfo:
            mv = self._call(
                lambda: self._client.get_model_version(name, version), name, version=version
            )
            return self._info(mv)

        return await asyncio.to_thread(get)

    def _info(self, mv: Any) -> VersionInfo:
        tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        metrics: dict[str, float] = {}
        if mv.run_id:
            try:
                run = self._client.get_run(mv.run_id)
                metrics.update({k: float(v) for k, v in run.data.metrics.items()})
            except Exception:  # the version's tags below are the fallback
                pass
        # the pipeline also writes its metrics as version tags metric.<name>
        for k, v in tags.items():
            if k.startswith(TAG_METRIC_PREFIX):
                with contextlib.suppress(ValueError):
                    metrics.setdefault(k.removeprefix(TAG_METRIC_PREFIX), float(v))
        return VersionInfo(version=str(mv.version), metrics=metrics, tags=tags)

    async def alias_holder(self, name: str, alias: str) -> str | None:
        def get() -> str | None:
            try:
                mv = self._call(
                    lambda: self._client.get_model_version_by_alias(name, alias), name, alias=alias
                )
            except RegistryError as e:
                if e.reason in (Reason.ALIAS_NOT_SET, Reason.MODEL_NOT_FOUND):
                    return None
                raise
            return str(mv.version)

        return await asyncio.to_thread(get)

    async def set_alias(self, name: str, alias: str, version: str) -> None:
        def put() -> None:
            self._call(
                lambda: self._client.set_registered_model_alias(name, alias, version),
                name,
                version=version,
            )

        await asyncio.to_thread(put)

    async def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        def put() -> None:
            self._call(
                lambda: self._client.set_model_version_tag(name, version, key, value),
                name,
                version=version,
            )

        await asyncio.to_thread(put)

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
                Reason.REGISTRY_UNAVAILABLE, f"MLflow at {self.tracking_uri}: {_short(e)}"
            ) from e
        except Exception as e:  # connection refused, timeouts, DNS: all "unavailable"
            raise RegistryError(
                Reason.REGISTRY_UNAVAILABLE,
                f"MLflow at {self.tracking_uri} unreachable: {_short(e)}",
            ) from e

    def _missing(self, name: str, alias: str | None, version: str | None) -> RegistryError:
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(name)
        except MlflowException as e:
            if str(getattr(e, "error_code", "")) in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return RegistryError(
                    Reason.MODEL_NOT_FOUND, f"registered model {name!r} does not exist in MLflow"
                )
            return RegistryError(Reason.REGISTRY_UNAVAILABLE, f"MLflow: {_short(e)}")
        except Exception as e:
            return RegistryError(Reason.REGISTRY_UNAVAILABLE, f"MLflow unreachable: {_short(e)}")
        if alias:
            return RegistryError(
                Reason.ALIAS_NOT_SET, f"registered model {name!r} has no alias {alias!r}"
            )
        return RegistryError(
            Reason.VERSION_NOT_FOUND, f"registered model {name!r} has no version {version}"
        )


def _quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace("'", "\\'")


def _short(e: BaseException) -> str:
    s = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return s[:300]
