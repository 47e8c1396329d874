"""The MLflow model registry, as the operator needs it: MLflow's REST API (2.0) over aiohttp.

Not MLflow's Python client: importing it costs the operator about 120 MB of memory, and its
calls block, so each needed a worker thread. The calls used here are few and stable
(registered-models/alias, model-versions/get, get-download-uri, search, set-tag, runs/get).
MLflow's own client variables are honoured: MLFLOW_TRACKING_TOKEN (a bearer token),
MLFLOW_TRACKING_USERNAME / _PASSWORD (basic auth), MLFLOW_TRACKING_INSECURE_TLS,
MLFLOW_TRACKING_SERVER_CERT_PATH (a CA bundle) and MLFLOW_HTTP_REQUEST_TIMEOUT (seconds, 10
unless set). There are no retries here: the operator has its own backoff and reports an outage
in status. Errors come out as RegistryError with the condition reason the status uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

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
API = "/api/2.0/mlflow"
# what MLflow answers for a name, version or alias it does not have
MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


class _Unavailable(Exception):
    """MLflow did not answer, or answered with a server error."""


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _tags(mv: dict[str, Any]) -> dict[str, str]:
    return {str(t["key"]): str(t.get("value", "")) for t in mv.get("tags") or []}


class MlflowRegistry:
    def __init__(self, tracking_uri: str, env: dict[str, str] | None = None) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self._env = dict(os.environ) if env is None else env
        self._cache: dict[tuple[str, str | None, str | None], tuple[float, ResolvedModel]] = {}
        self._inflight: dict[tuple[str, str | None, str | None], asyncio.Future[ResolvedModel]] = {}
        # bumped by forget(): a lookup that started before it may hold the old answer
        self._epoch = 0
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            env = self._env
            headers: dict[str, str] = {}
            auth = None
            if env.get("MLFLOW_TRACKING_TOKEN"):
                headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
            elif env.get("MLFLOW_TRACKING_USERNAME"):
                auth = aiohttp.BasicAuth(
                    env["MLFLOW_TRACKING_USERNAME"], env.get("MLFLOW_TRACKING_PASSWORD", "")
                )
            tls: ssl.SSLContext | bool = True
            if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true"):
                tls = False
            elif env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
                tls = ssl.create_default_context(cafile=env["MLFLOW_TRACKING_SERVER_CERT_PATH"])
            self._session = aiohttp.ClientSession(
                headers=headers,
                auth=auth,
                timeout=aiohttp.ClientTimeout(total=_timeout(env)),
                connector=aiohttp.TCPConnector(limit=20, ssl=tls),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _rest(
        self, method: str, endpoint: str, params: dict[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        url = f"{self.tracking_uri}{API}/{endpoint}"
        try:
            async with self._http().request(method, url, params=params, json=body) as r:
                text = await r.text()
                status = r.status
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise _Unavailable(f"MLflow at {self.tracking_uri} unreachable: {_short(e)}") from e
        try:
            out = json.loads(text) if text else {}
        except ValueError:
            out = None
        if status >= 500 or not isinstance(out, dict):
            raise _Unavailable(f"MLflow at {self.tracking_uri}: {status} {_short_text(text)}")
        if status >= 400:
            raise _Refused(str(out.get("error_code", "")), str(out.get("message", text)))
        return out

    async def _call(
        self,
        method: str,
        endpoint: str,
        name: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        alias: str | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        try:
            return await self._rest(method, endpoint, params, body)
        except _Unavailable as e:
            raise RegistryError(Reason.REGISTRY_UNAVAILABLE, str(e)) from None
        except _Refused as e:
            if e.code in MISSING:
                raise await self._missing(name, alias, version) from None
            raise RegistryError(
                Reason.REGISTRY_UNAVAILABLE, f"MLflow at {self.tracking_uri}: {_short(e)}"
            ) from None

    async def _missing(self, name: str, alias: str | None, version: str | None) -> RegistryError:
        """Which of the model, its alias or its version MLflow does not have."""
        try:
            await self._rest("GET", "registered-models/get", {"name": name})
        except _Unavailable as e:
            return RegistryError(Reason.REGISTRY_UNAVAILABLE, str(e))
        except _Refused as e:
            if e.code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return RegistryError(
                    Reason.MODEL_NOT_FOUND, f"registered model {name!r} does not exist in MLflow"
                )
            return RegistryError(Reason.REGISTRY_UNAVAILABLE, f"MLflow: {_short(e)}")
        if alias:
            return RegistryError(
                Reason.ALIAS_NOT_SET, f"registered model {name!r} has no alias {alias!r}"
            )
        return RegistryError(
            Reason.VERSION_NOT_FOUND, f"registered model {name!r} has no version {version}"
        )

    async def _version(self, name: str, alias: str | None, version: str | None) -> dict[str, Any]:
        if alias:
            out = await self._call(
                "GET", "registered-models/alias", name, {"name": name, "alias": alias}, alias=alias
            )
        else:
            out = await self._call(
                "GET",
                "model-versions/get",
                name,
                {"name": name, "version": str(version)},
                version=version,
            )
        mv = out.get("model_version")
        if not isinstance(mv, dict) or "version" not in mv:
            raise RegistryError(
                Reason.REGISTRY_UNAVAILABLE, f"MLflow at {self.tracking_uri}: no model_version"
            )
        return mv

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
            pending = asyncio.ensure_future(self._resolve(name, alias, version))
            self._inflight[key] = pending

            def done(f: asyncio.Future[ResolvedModel]) -> None:
                if self._inflight.get(key) is f:
                    del self._inflight[key]

            pending.add_done_callback(done)
        epoch = self._epoch
        resolved = await asyncio.shield(pending)
        if epoch == self._epoch:
            self._cache[key] = (now, resolved)
        if len(self._cache) > 10_000:
            self._cache.clear()
        return resolved

    def forget(self, name: str, alias: str) -> None:
        """The alias has moved (a registry webhook said so): the next resolve asks MLflow,
        and no lookup that was under way before this fills the cache with the old answer."""
        key = (name, alias, None)
        self._cache.pop(key, None)
        self._inflight.pop(key, None)
        self._epoch += 1

    async def _resolve(self, name: str, alias: str | None, version: str | None) -> ResolvedModel:
        mv = await self._version(name, alias, version)
        v = str(mv["version"])
        out = await self._call(
            "GET",
            "model-versions/get-download-uri",
            name,
            {"name": name, "version": v},
            version=v,
        )
        return ResolvedModel(
            name=name,
            version=v,
            alias=alias,
            source=str(out.get("artifact_uri", "")),
            run_id=mv.get("run_id") or None,
        )

    async def find_version_by_tag(self, name: str, key: str, value: str) -> VersionInfo | None:
        flt = f"name = '{_quote(name)}' and tags.`{key}` = '{_quote(value)}'"
        found: list[dict[str, Any]] = []
        token = ""
        while True:
            params = {"filter": flt, "max_results": "1000"}
            if token:
                params["page_token"] = token
            out = await self._call("GET", "model-versions/search", name, params)
            found += out.get("model_versions") or []
            token = str(out.get("next_page_token") or "")
            if not token:
                break
        if not found:
            return None
        # the tag is unique per RetrainJob uid; should two ever exist, the oldest wins
        return await self._info(min(found, key=lambda v: int(v["version"])))

    async def version_info(self, name: str, version: str) -> VersionInfo:
        return await self._info(await self._version(name, None, version))

    async def _info(self, mv: dict[str, Any]) -> VersionInfo:
        tags = _tags(mv)
        metrics: dict[str, float] = {}
        if mv.get("run_id"):
            # the run's metrics; the version's tags below are the fallback
            with contextlib.suppress(_Unavailable, _Refused):
                run = await self._rest("GET", "runs/get", {"run_id": str(mv["run_id"])})
                for m in ((run.get("run") or {}).get("data") or {}).get("metrics") or []:
                    with contextlib.suppress(KeyError, TypeError, ValueError):
                        metrics[str(m["key"])] = float(m["value"])
        # the pipeline also writes its metrics as version tags metric.<name>
        for k, v in tags.items():
            if k.startswith(TAG_METRIC_PREFIX):
                with contextlib.suppress(ValueError):
                    metrics.setdefault(k.removeprefix(TAG_METRIC_PREFIX), float(v))
        return VersionInfo(version=str(mv["version"]), metrics=metrics, tags=tags)

    async def alias_holder(self, name: str, alias: str) -> str | None:
        try:
            mv = await self._version(name, alias, None)
        except RegistryError as e:
            if e.reason in (Reason.ALIAS_NOT_SET, Reason.MODEL_NOT_FOUND):
                return None
            raise
        return str(mv["version"])

    async def set_alias(self, name: str, alias: str, version: str) -> None:
        body = {"name": name, "alias": alias, "version": version}
        await self._call("POST", "registered-models/alias", name, body=body, version=version)

    async def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": version, "key": key, "value": value}
        await self._call("POST", "model-versions/set-tag", name, body=body, version=version)


def _quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace("'", "\\'")


def _timeout(env: dict[str, str]) -> float:
    """MLFLOW_HTTP_REQUEST_TIMEOUT as MLflow's client reads it; 10 s when unset or not a
    positive number (a typo must not turn every registry call into a crash)."""
    try:
        seconds = float(env.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or 10)
    except ValueError:
        return 10.0
    return seconds if seconds > 0 else 10.0


def _short_text(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def _short(e: BaseException) -> str:
    s = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return s[:300]
