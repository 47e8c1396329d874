"""The Kubernetes API, as the reconcilers need it: apply, get, list, delete, patch status.

A thin async client over aiohttp (which kopf already uses), authenticated from the same
kubeconfig or in-cluster service account as kopf. Server-side apply with one field manager is
how children are written, so fields other controllers own (HPA replicas, annotations) stay.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp

from mlops_operator import metrics
from mlops_operator.contract import (
    HTTP_ROUTE_API_VERSION,
    HTTP_ROUTE_KIND,
    MANAGER,
    PROMETHEUS_RULE_API_VERSION,
    PROMETHEUS_RULE_KIND,
)

FIELD_MANAGER = MANAGER

# (apiVersion, kind) -> plural, for the kinds the operator touches
PLURALS: dict[tuple[str, str], str] = {
    ("v1", "Pod"): "pods",
    ("v1", "Service"): "services",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Event"): "events",
    ("v1", "Namespace"): "namespaces",
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "ReplicaSet"): "replicasets",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("coordination.k8s.io/v1", "Lease"): "leases",
    ("mlops.dev/v1alpha1", "ModelDeployment"): "modeldeployments",
    ("mlops.dev/v1alpha1", "RetrainJob"): "retrainjobs",
    (PROMETHEUS_RULE_API_VERSION, PROMETHEUS_RULE_KIND): "prometheusrules",
    (HTTP_ROUTE_API_VERSION, HTTP_ROUTE_KIND): "httproutes",
}
DISCOVERY_SECONDS = 10.0  # how long an answer of serves() is reused (a CRD may appear)


# How server-side apply answers a value of the wrong type in a field the CRD leaves untyped (a
# string for an int, "abc" for a quantity): a 500, though the request is what is wrong.
_SSA_TYPE_ERRORS = ("failed to create typed patch object", "failed to convert new object")


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def invalid(self) -> bool:
        """The object sent is wrong (400, 422, or SSA's type errors): sending it again fails
        again."""
        if self.status in (400, 422):
            return True
        return self.status == 500 and any(m in self.message for m in _SSA_TYPE_ERRORS)

    @property
    def namespace_gone(self) -> bool:
        """The object or its namespace is gone, or the namespace is terminating: nothing more
        can be written there. (A kind that is not served is a 404 too, and is not that.)"""
        terminating = self.status == 403 and "because it is being terminated" in self.message
        unserved = "could not find the requested resource" in self.message
        return terminating or (self.status == 404 and not unserved)

    @property
    def forbidden(self) -> bool:
        return self.status == 403 and not self.namespace_gone


def transient(e: BaseException) -> bool:
    """A failure the same request may not meet again: the API server busy (429, 409 on a
    write race, 5xx that is no type error), slow (a timeout) or unreachable."""
    if isinstance(e, ApiError):
        return not (e.invalid or e.forbidden or e.namespace_gone)
    return isinstance(e, TimeoutError | aiohttp.ClientError)


def describe(e: BaseException) -> str:
    """One line for a status message or a log line (a timeout has no text of its own)."""
    if isinstance(e, TimeoutError):
        return "the API server did not answer in time"
    text = str(e) or type(e).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def path_of(
    api_version: str,
    kind: str,
    namespace: str | None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    plural = PLURALS[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    p = base + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
    if name:
        p += f"/{name}"
    if subresource:
        p += f"/{subresource}"
    return p


class Kube(Protocol):
    async def apply(
        self, obj: dict[str, Any], manager: str = FIELD_MANAGER, subresource: str | None = None
    ) -> dict[str, Any]: ...
    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None: ...
    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]: ...
    async def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, uid: str | None = None
    ) -> bool: ...
    async def create(self, obj: dict[str, Any]) -> dict[str, Any]: ...
    async def serves(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves this kind (e.g. a CRD that may not be installed)."""
        ...

    async def patch_merge(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Credentials:
    server: str
    ssl: ssl.SSLContext
    token: str | None


def load_credentials() -> Credentials:
    """In-cluster service account, else the kubeconfig (KUBECONFIG), like kopf's login."""
    from kubernetes import client, config

    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)
    except config.ConfigException:
        config.load_kube_config(client_configuration=cfg)
    ctx = (
        ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.ssl_ca_cert
        else (ssl.create_default_context())
    )
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    token = cfg.get_api_key_with_prefix("authorization") or None
    return Credentials(server=cfg.host.rstrip("/"), ssl=ctx, token=token)


def session(creds: Credentials, *, limit: int, timeout: float) -> aiohttp.ClientSession:
    """The one HTTP client setup for the API server (HttpKube and leader.HttpLeaseStore): the
    credentials' TLS context and bearer token, JSON, a bounded connection pool."""
    headers = {"Accept": "application/json"}
    if creds.token:
        headers["Authorization"] = creds.token
    return aiohttp.ClientSession(
        headers=headers,
        connector=aiohttp.TCPConnector(ssl=creds.ssl, limit=limit),
        # the timeout is the API server's answer, not the wait for a free connection: with
        # 1,000 objects reconciling at once, requests queued behind the pool timed out
        timeout=aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout),
    )


class HttpKube:
    def __init__(
        self,
        creds: Credentials,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30,
    ) -> None:
        self._creds = creds
        self._session = session
        self._timeout = timeout
        self._served: dict[tuple[str, str], tuple[bool, float]] = {}

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = session(self._creds, limit=50, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session:
            await self._session.close()

    async def serves(self, api_version: str, kind: str) -> bool:
        key = (api_version, kind)
        hit = self._served.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            found = await self._request("GET", base, ok_missing=True)
        except (ApiError, aiohttp.ClientError, TimeoutError):
            # discovery is a side matter (what serves does not depend on it): keep the last
            # answer, or say no, and ask again on a later pass
            return hit[0] if hit is not None else False
        plural = PLURALS[key]
        served = any(r.get("name") == plural for r in (found or {}).get("resources", []))
        self._served[key] = (served, time.monotonic() + DISCOVERY_SECONDS)
        return served

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        ok_missing: bool = False,
    ) -> dict[str, Any] | None:
        url = self._creds.server + path + (("?" + urlencode(query)) if query else "")
        http = await self._http()
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with http.request(method, url, data=data, headers=headers) as r:
                text = await r.text()
                status, reason = r.status, r.reason
        except TimeoutError:
            metrics.observe_api_request(method, path, "timeout")
            metrics.observe_api_error(method, path, "timeout")
            raise
        except aiohttp.ClientError:
            metrics.observe_api_request(method, path, "connection")
            metrics.observe_api_error(method, path, "connection")
            raise
        metrics.observe_api_request(method, path, status)
        if status == 404 and ok_missing:
            return None
        if status >= 400:
            metrics.observe_api_error(method, path, status)
            try:
                st = json.loads(text)
            except ValueError:
                raise ApiError(status, reason or "", text) from None
            raise ApiError(status, st.get("reason", ""), st.get("message", text))
        return json.loads(text) if text else {}

    async def apply(
        self, obj: dict[str, Any], manager: str = FIELD_MANAGER, subresource: str | None = None
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        p = path_of(
            obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"], subresource
        )
        out = await self._request(
            "PATCH",
            p,
            query={"fieldManager": manager, "force": "true"},
            body=obj,
            content_type="application/apply-patch+yaml",
        )
        assert out is not None
        return out

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        return await self._request(
            "GET", path_of(api_version, kind, namespace, name), ok_missing=True
        )

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        q = {"labelSelector": label_selector} if label_selector else None
        out = await self._request("GET", path_of(api_version, kind, namespace), query=q)
        return list((out or {}).get("items", []))

    async def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, uid: str | None = None
    ) -> bool:
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if uid:
            # only the object we looked at, never a newer one of the same name
            body["preconditions"] = {"uid": uid}
        out = await self._request(
            "DELETE", path_of(api_version, kind, namespace, name), body=body, ok_missing=True
        )
        return out is not None

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        out = await self._request(
            "POST", path_of(obj["apiVersion"], obj["kind"], meta.get("namespace")), body=obj
        )
        assert out is not None
        return out

    async def patch_merge(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        out = await self._request(
            "PATCH",
            path_of(api_version, kind, namespace, name, subresource),
            body=patch,
            content_type="application/merge-patch+json",
        )
        assert out is not None
        return out
