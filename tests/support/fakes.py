"""FAKES of the Kube and Registry Protocols (clients/), for pure reconcile-flow unit tests.

They stand in for the API server and the MLflow registry only where a unit test wants to
follow one reconcile pass step by step (what it reads, what it writes, in which order) in
milliseconds. They are not the contract: the integration tests run the same reconcilers
against the real kube-apiserver and a real `mlflow server`, and those decide. What they
model of the real thing, and no more:

- FakeKube: objects by (apiVersion, kind, namespace, name); kinds it does not serve
  (`unserved`, by default the Prometheus Operator's PrometheusRule, as on a plain cluster);
  a resourceVersion that grows on
  every write; metadata.generation that grows when the spec changes; merge patches (RFC 7386)
  with the resourceVersion precondition (409 when stale); server-side apply as "the applied
  object replaces the fields it names" (no field ownership); equality label selectors
  (`k=v,k2=v2`); delete with a uid precondition. Every write is recorded in `writes`.
  `faults` makes a verb on a kind answer with an error instead (what the real API server
  answers in those cases is in the integration tests; this is how a unit test meets one).
- FakeRegistry: versions with tags and metrics, aliases, and an outage switch.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from mlops_operator.clients.kube import PLURALS, ApiError
from mlops_operator.clients.prometheus import PrometheusError
from mlops_operator.clients.registry import RegistryError, VersionInfo
from mlops_operator.contract import (
    PROMETHEUS_RULE_API_VERSION,
    PROMETHEUS_RULE_KIND,
    Reason,
    ResolvedModel,
)

Key = tuple[str, str, str | None, str]


@dataclass
class Write:
    verb: str  # apply | create | patch | delete
    kind: str
    name: str
    subresource: str | None = None
    body: dict[str, Any] = field(default_factory=dict)


def merge(old: Any, patch: Any) -> Any:
    """RFC 7386: null deletes, objects merge, anything else replaces."""
    if not isinstance(patch, dict) or not isinstance(old, dict):
        return copy.deepcopy(patch)
    out = dict(old)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(old.get(k), v)
    return out


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.writes: list[Write] = []
        self.unserved: set[tuple[str, str]] = {(PROMETHEUS_RULE_API_VERSION, PROMETHEUS_RULE_KIND)}
        self._rv = itertools.count(1)
        self._uid = itertools.count(1)
        # (verb, kind) -> the exception the next calls raise; kind "*" is any kind
        self.faults: dict[tuple[str, str], BaseException] = {}
        self.faulted: list[tuple[str, str]] = []  # the calls that met one

    # -- test set-up ---------------------------------------------------------------------
    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as if a user had created it (not recorded as a write)."""
        obj = copy.deepcopy(obj)
        m = obj.setdefault("metadata", {})
        m.setdefault("uid", f"uid-{next(self._uid)}")
        m.setdefault("generation", 1)
        m["resourceVersion"] = str(next(self._rv))
        self.objects[self._key(obj)] = obj
        return copy.deepcopy(obj)

    def _fault(self, verb: str, kind: str) -> None:
        e = self.faults.get((verb, kind)) or self.faults.get((verb, "*"))
        if e is not None:
            self.faulted.append((verb, kind))
            raise e

    def writes_of(self, verb: str, kind: str | None = None) -> list[Write]:
        return [w for w in self.writes if w.verb == verb and kind in (None, w.kind)]

    # -- the Kube Protocol -----------------------------------------------------------------
    async def apply(
        self, obj: dict[str, Any], manager: str = "mlops-operator", subresource: str | None = None
    ) -> dict[str, Any]:
        key = self._key(obj)
        if (key[0], key[1]) in self.unserved:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self._fault("apply", key[1])
        self.writes.append(Write("apply", obj["kind"], key[3], subresource, copy.deepcopy(obj)))
        old = self.objects.get(key)
        if old is None:
            if obj["kind"] == "Service":  # the API server allocates the address
                obj = copy.deepcopy(obj)
                obj["spec"].setdefault("clusterIP", f"10.96.0.{len(self.objects) % 250 + 2}")
            return self.put(obj)
        new = merge(old, {k: v for k, v in obj.items() if k != "metadata"})
        new["metadata"] = merge(old["metadata"], obj.get("metadata", {}))
        return self._store(old, new)

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        _known(api_version, kind)
        self._fault("get", kind)
        obj = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(obj) if obj else None

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        want = dict(p.split("=", 1) for p in label_selector.split(",")) if label_selector else {}
        return [
            copy.deepcopy(o)
            for (av, k, ns, _), o in self.objects.items()
            if (av, k) == (api_version, kind)
            and namespace in (None, ns)
            and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in want.items())
        ]

    async def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, uid: str | None = None
    ) -> bool:
        key = (api_version, kind, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            return False
        if uid and obj["metadata"]["uid"] != uid:
            raise ApiError(409, "Conflict", f"uid precondition failed for {name}")
        self.writes.append(Write("delete", kind, name))
        del self.objects[key]
        return True

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        key = self._key(obj)
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f"{obj['kind']} {key[3]} already exists")
        self.writes.append(Write("create", obj["kind"], key[3], None, copy.deepcopy(obj)))
        return self.put(obj)

    async def patch_merge(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        self._fault("patch", kind)
        old = self.objects.get((api_version, kind, namespace, name))
        if old is None:
            raise ApiError(404, "NotFound", f"{kind} {name} not found")
        rv = (patch.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        self.writes.append(Write("patch", kind, name, subresource, copy.deepcopy(patch)))
        if subresource == "status":
            new = dict(old, status=merge(old.get("status") or {}, patch.get("status") or {}))
        else:
            new = merge(old, {k: v for k, v in patch.items() if k != "status"})
            new["metadata"].pop("resourceVersion", None)
            new["metadata"] = {**new["metadata"]}
        return self._store(old, new)

    async def serves(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) not in self.unserved

    async def close(self) -> None:
        pass

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _key(obj: dict[str, Any]) -> Key:
        m = obj["metadata"]
        _known(obj["apiVersion"], obj["kind"])
        return (obj["apiVersion"], obj["kind"], m.get("namespace"), m["name"])

    def _store(self, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        new["metadata"]["uid"] = old["metadata"]["uid"]
        gen = old["metadata"].get("generation", 1)
        new["metadata"]["generation"] = gen + (new.get("spec") != old.get("spec"))
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[self._key(new)] = new
        return copy.deepcopy(new)


@dataclass
class FakeVersion:
    version: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class FakeRegistry:
    def __init__(self) -> None:
        self.models: dict[str, list[FakeVersion]] = {}
        self.aliases: dict[tuple[str, str], str] = {}
        self.down = False  # an outage: every call raises RegistryUnavailable

    def add(self, name: str, alias: str | None = None, **metrics: float) -> str:
        versions = self.models.setdefault(name, [])
        v = FakeVersion(str(len(versions) + 1), metrics=dict(metrics))
        versions.append(v)
        if alias:
            self.aliases[(name, alias)] = v.version
        return v.version

    def _up(self) -> None:
        if self.down:
            raise RegistryError(Reason.REGISTRY_UNAVAILABLE, "MLflow unreachable (fake outage)")

    async def resolve(self, name: str, alias: str | None, version: str | None) -> ResolvedModel:
        self._up()
        if name not in self.models:
            raise RegistryError(Reason.MODEL_NOT_FOUND, f"registered model {name!r} does not exist")
        if alias:
            held = self.aliases.get((name, alias))
            if held is None:
                raise RegistryError(Reason.ALIAS_NOT_SET, f"{name!r} has no alias {alias!r}")
            return ResolvedModel(name, held, alias=alias)
        if version not in {v.version for v in self.models[name]}:
            raise RegistryError(Reason.VERSION_NOT_FOUND, f"{name!r} has no version {version}")
        return ResolvedModel(name, str(version))

    async def find_version_by_tag(self, name: str, key: str, value: str) -> VersionInfo | None:
        self._up()
        found = [v for v in self.models.get(name, []) if v.tags.get(key) == value]
        return VersionInfo(found[0].version, found[0].metrics, found[0].tags) if found else None

    async def version_info(self, name: str, version: str) -> VersionInfo:
        self._up()
        v = next(v for v in self.models[name] if v.version == version)
        return VersionInfo(v.version, v.metrics, v.tags)

    async def alias_holder(self, name: str, alias: str) -> str | None:
        self._up()
        return self.aliases.get((name, alias))

    async def set_alias(self, name: str, alias: str, version: str) -> None:
        self._up()
        self.aliases[(name, alias)] = version

    async def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._up()
        next(v for v in self.models[name] if v.version == version).tags[key] = value


def _known(api_version: str, kind: str) -> None:
    # HttpKube finds a kind's path in PLURALS: a kind missing there fails for real, so here too
    if (api_version, kind) not in PLURALS:
        raise KeyError(f"{kind} ({api_version}) is not in clients/kube.PLURALS")


class FakePrometheus:
    """Answers a canary analysis' queries (builders/slo.py) from values a test sets; the real
    Prometheus judges real pods in tests/integration/test_canary.py."""

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {"requests": 100.0, "errors": 0.0, "p99": 0.05}
        # a shadow phase's comparison (what the stable pods measured of the copies)
        self.values.update(agreement=1.0, absolute_error=0.0, relative_error=0.0)
        self.down = False
        self.queries: list[str] = []

    async def scalar(self, expr: str) -> float | None:
        self.queries.append(expr)
        if self.down:
            raise PrometheusError("connection refused (fake outage)")
        for metric, key in (
            ("mlops_shadow_agreements", "agreement"),
            ("mlops_shadow_absolute_error", "absolute_error"),
            ("mlops_shadow_relative_error", "relative_error"),
        ):
            if expr.startswith(f"sum(increase({metric}"):
                return self.values[key]
        if expr.startswith("sum(increase("):
            return self.values["requests"]
        if expr.startswith("histogram_quantile("):
            return self.values["p99"]
        if expr.startswith("max("):
            return self.values.get("drift")
        return self.values["errors"]
