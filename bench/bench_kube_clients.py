"""Which async Kubernetes client should clients/kube.py and leader.py use?

Runs the calls the operator makes (server-side apply, get, list by label, merge patch) on a
kind it writes (NetworkPolicy: plain data, no controller acts on it) against the local
cluster's real API server, with the project's own client (clients/kube.HttpKube, the
baseline, measured in the same run) and with lightkube, kr8s and kubernetes_asyncio. Prints
the time per call, its ratio to the baseline, and the import cost of each library (seconds
and resident memory, in a fresh process).

    make bench-clients        # installs the three libraries into the cache, not into .venv

The libraries are not dependencies of the project: this benchmark is the evidence for keeping
or replacing the hand-rolled client (docs/architecture.md), and installs them only for itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LIBS = Path(os.environ.get("MLOPS_BENCH_CLIENT_LIBS", "/tmp/mlops-bench-clients"))
N = int(os.environ.get("MLOPS_BENCH_CLIENT_N", "200"))
ROUNDS = 3
MANAGER = "bench-clients"
API, KIND = "networking.k8s.io/v1", "NetworkPolicy"

Call = Callable[[int], Awaitable[object]]


def cm(ns: str, i: int, value: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": KIND,
        "metadata": {"name": f"np-{i}", "namespace": ns, "labels": {"bench": "clients"}},
        "spec": {"podSelector": {"matchLabels": {"value": value}}, "policyTypes": ["Ingress"]},
    }


def annotation(value: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {"patched": value}}}


async def timed(call: Call, n: int, concurrency: int) -> float:
    """Seconds per call, `n` calls with `concurrency` in flight."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await call(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return (time.perf_counter() - start) / n


class Ours:
    name = "HttpKube (hand-rolled, aiohttp)"

    async def open(self, ns: str) -> None:
        from mlops_operator.clients.kube import HttpKube, load_credentials

        self.ns, self.kube = ns, HttpKube(load_credentials())

    async def apply(self, i: int, value: str) -> object:
        return await self.kube.apply(cm(self.ns, i, value), manager=MANAGER)

    async def get(self, i: int) -> object:
        return await self.kube.get(API, KIND, self.ns, f"np-{i}")

    async def list(self) -> int:
        return len(await self.kube.list(API, KIND, self.ns, "bench=clients"))

    async def patch(self, i: int, value: str) -> object:
        return await self.kube.patch_merge(API, KIND, self.ns, f"np-{i}", annotation(value))

    async def close(self) -> None:
        await self.kube.close()


class Lightkube:
    name = "lightkube 1.0.1 (httpx)"

    async def open(self, ns: str) -> None:
        from lightkube import AsyncClient

        self.ns, self.client = ns, AsyncClient(field_manager=MANAGER)

    async def apply(self, i: int, value: str) -> object:
        from lightkube.resources.networking_v1 import NetworkPolicy

        return await self.client.apply(NetworkPolicy.from_dict(cm(self.ns, i, value)), force=True)

    async def get(self, i: int) -> object:
        from lightkube.resources.networking_v1 import NetworkPolicy

        return await self.client.get(NetworkPolicy, f"np-{i}", namespace=self.ns)

    async def list(self) -> int:
        from lightkube.resources.networking_v1 import NetworkPolicy

        return len(
            [
                x
                async for x in self.client.list(
                    NetworkPolicy, namespace=self.ns, labels={"bench": "clients"}
                )
            ]
        )

    async def patch(self, i: int, value: str) -> object:
        from lightkube.resources.networking_v1 import NetworkPolicy
        from lightkube.types import PatchType

        return await self.client.patch(
            NetworkPolicy,
            f"np-{i}",
            annotation(value),
            namespace=self.ns,
            patch_type=PatchType.MERGE,
        )

    async def close(self) -> None:
        await self.client.close()


class Kr8s:
    name = "kr8s 0.20.15 (httpx)"

    async def open(self, ns: str) -> None:
        import kr8s.asyncio

        self.ns, self.api = ns, await kr8s.asyncio.api()

    async def apply(self, i: int, value: str) -> object:
        from kr8s.asyncio.objects import NetworkPolicy

        obj = await NetworkPolicy(cm(self.ns, i, value), api=self.api)
        # kr8s' server-side apply: a patch of type "apply" with a field manager
        async with self.api.call_api(
            "PATCH",
            version="networking.k8s.io/v1",
            base="/apis",
            namespace=self.ns,
            url=f"networkpolicies/{obj.name}",
            params={"fieldManager": MANAGER, "force": "true"},
            headers={"Content-Type": "application/apply-patch+yaml"},
            content=json.dumps(obj.raw),
        ) as r:
            return r.json()

    async def get(self, i: int) -> object:
        from kr8s.asyncio.objects import NetworkPolicy

        return await NetworkPolicy.get(f"np-{i}", namespace=self.ns, api=self.api)

    async def list(self) -> int:
        found = self.api.get("networkpolicies", namespace=self.ns, label_selector="bench=clients")
        return len([x async for x in found])

    async def patch(self, i: int, value: str) -> object:
        from kr8s.asyncio.objects import NetworkPolicy

        obj = await NetworkPolicy.get(f"np-{i}", namespace=self.ns, api=self.api)
        await obj.patch(annotation(value), type="merge")
        return obj

    async def close(self) -> None:
        pass


class KubernetesAsyncio:
    name = "kubernetes_asyncio 36.1.0 (aiohttp, generated)"

    async def open(self, ns: str) -> None:
        from kubernetes_asyncio import client, config

        await config.load_kube_config()
        self.ns, self.api_client = ns, client.ApiClient()
        self.v1 = client.NetworkingV1Api(self.api_client)

    async def apply(self, i: int, value: str) -> object:
        return await self.v1.patch_namespaced_network_policy(
            f"np-{i}",
            self.ns,
            cm(self.ns, i, value),
            field_manager=MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    async def get(self, i: int) -> object:
        return await self.v1.read_namespaced_network_policy(f"np-{i}", self.ns)

    async def list(self) -> int:
        out = await self.v1.list_namespaced_network_policy(self.ns, label_selector="bench=clients")
        return len(out.items)

    async def patch(self, i: int, value: str) -> object:
        return await self.v1.patch_namespaced_network_policy(
            f"np-{i}",
            self.ns,
            annotation(value),
            _content_type="application/merge-patch+json",
        )

    async def close(self) -> None:
        await self.api_client.close()


CLIENTS: list[type[Any]] = [Ours, Lightkube, Kr8s, KubernetesAsyncio]
IMPORTS = {
    Ours.name: "import mlops_operator.clients.kube",
    Lightkube.name: "import lightkube, lightkube.resources.networking_v1",
    Kr8s.name: "import kr8s.asyncio, kr8s.asyncio.objects",
    KubernetesAsyncio.name: "import kubernetes_asyncio.client, kubernetes_asyncio.config",
}


async def one_round(client: Any, tag: str) -> dict[str, float]:
    """Seconds per call of each phase; every apply and patch writes a new value (`tag`)."""

    async def apply(i: int) -> object:
        return await client.apply(i, tag)

    async def patch(i: int) -> object:
        return await client.patch(i, tag)

    phases: dict[str, tuple[Call, int]] = {
        "apply x1": (apply, 1),
        "get x1": (client.get, 1),
        "get x16": (client.get, 16),
        "patch x1": (patch, 1),
    }
    out = {phase: await timed(call, N, conc) for phase, (call, conc) in phases.items()}
    start = time.perf_counter()
    for _ in range(10):
        assert await client.list() == N  # every object, by label, each time
    out["list"] = (time.perf_counter() - start) / 10
    return out


async def measure(client: Any, ns: str) -> dict[str, float]:
    await client.open(ns)
    try:
        rounds = [
            await one_round(client, f"{client.__class__.__name__}-{r}") for r in range(ROUNDS)
        ]
        return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    finally:
        await client.close()


def import_cost(statement: str) -> tuple[float, float]:
    """(seconds, MiB of resident memory) that `statement` adds to a fresh interpreter. Current
    RSS (VmRSS), not the high-water mark: a child inherits its parent's, which hides the cost."""
    code = (
        "import sys, time; sys.path.append(sys.argv[1])\n"
        "def rss(): return int(next(l for l in open('/proc/self/status') "
        "if l.startswith('VmRSS')).split()[1]) / 1024\n"
        f"r0 = rss(); t = time.perf_counter(); {statement}\n"
        "print(time.perf_counter() - t, rss() - r0)"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, str(LIBS)], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(3)
    ]
    return statistics.median(float(s) for s, _ in runs), statistics.median(
        float(m) for _, m in runs
    )


def main() -> int:
    sys.path.append(str(LIBS))  # after .venv: the libraries never shadow the project's pins
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    kconfig.load_kube_config()
    core = kclient.CoreV1Api()
    ns = f"bench-clients-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    results: dict[str, dict[str, float]] = {}
    try:
        for cls in CLIENTS:
            results[cls.name] = asyncio.run(measure(cls(), ns))
    finally:
        core.delete_namespace(ns)
    base = results[Ours.name]
    print(f"\n{N} NetworkPolicies, median of {ROUNDS} rounds; ms per call (ratio to HttpKube)")
    phases = list(base)
    print(f"{'client':48}" + "".join(f"{p:>18}" for p in phases) + f"{'import s':>10}{'MiB':>7}")
    for name, row in results.items():
        secs, mib = import_cost(IMPORTS[name])
        cells = "".join(f"{row[p] * 1000:9.2f} ({row[p] / base[p]:4.2f}x)" for p in phases)
        print(f"{name:48}{cells}{secs:10.3f}{mib:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
