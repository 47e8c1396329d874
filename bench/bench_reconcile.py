#!/usr/bin/env python3
"""The operator beside kube-controller-manager on the local cluster, N objects at a time.

For each size N, two halves back to back on one cluster, each created by the same pool of
concurrent clients (--pool, 8) on a node pool made for the benchmark (kwok nodes whose pod
capacity fits N, tainted so that only the benchmark's pods land there):

- the baseline: N Deployments applied directly, in a namespace the operator does not watch;
  kube-controller-manager creates their ReplicaSets;
- the operator: N ModelDeployments; the operator creates their Deployments.

The first half's namespace is deleted (and gone) before the second starts. Latencies are taken
from watch events as this process receives them: object ADDED -> child ADDED (ReplicaSet,
Deployment), and object ADDED -> Ready (the Deployment Available; the ModelDeployment
Ready=True for its generation). Then, for the operator half:

- writes per converged ModelDeployment, from the operator's own counters
  (mlops_operator_api_requests_total, mlops_operator_events_total): child creates (server-side
  apply answered 201) and updates (200), writes to the ModelDeployment itself (status), Events;
- writes during --idle seconds with nothing changing, Lease renewals apart;
- the operator's RSS and CPU seconds per resync period over that idle window;
- alias move -> every Deployment pinned to the new version, twice: delivered by MLflow's
  registry webhook to the operator's receiver (docs/webhooks.md; measured once MLflow has the
  webhook in its cache), then, the webhook deleted and MLflow's cache of it expired, found
  by the resync alone (the baseline).

CPU seconds of every local control-plane process (and of kubelet/kube-proxy when the real node
runs) are printed per half, so the two cores' sharing is visible. Prints a table with the
baseline beside each figure and the ratios; --json FILE writes every figure.

    python bench/bench_reconcile.py [--sizes 100,1000] [--pool 8] [--idle 300] [--json F]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import contextlib
import datetime as dt
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

from tests.support import mlflow_webhooks  # noqa: E402
from tests.support.cluster import LOCAL_KUBECONFIG, ensure_cluster  # noqa: E402
from tests.support.mlflow_server import start_mlflow  # noqa: E402
from tests.support.models import register_iris, set_alias  # noqa: E402
from tests.support.operator_metrics import Samples, free_port, scrape, value  # noqa: E402
from tests.support.operator_process import start_operator  # noqa: E402

RESYNC = 30.0  # the operator's default (MLOPS_RESYNC_SECONDS)
POOL_LABEL, POOL_TAINT = "mlops.dev/bench-pool", "mlops.dev/bench"
PODS_PER_NODE = 250
WATCHED = "bench-md-"  # the operator watches bench-md-*; the baseline lives in bench-kcm-*
IMAGE = "mlops-operator/runtime:test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WRITES = ("POST", "PUT", "PATCH", "DELETE")
WEBHOOK_CACHE_TTL = 60  # MLflow's default (MLFLOW_WEBHOOK_CACHE_TTL)
ACCEPTED = "mlops_operator_webhook_deliveries_total"


class Hook:
    """The MLflow webhook of the operator's receiver: registered before each operator half,
    deleted before its resync-only alias move."""

    def __init__(self, mlflow_uri: str, port: int, metrics_port: int) -> None:
        self.mlflow_uri, self.metrics_port = mlflow_uri, metrics_port
        self.url = f"https://127.0.0.1:{port}/webhooks/mlflow"
        self.secret = uuid.uuid4().hex
        self.id = ""
        self.probe = f"bench-probe-{uuid.uuid4().hex[:6]}"
        self.probe_version = ""

    def accepted(self) -> float:
        return value(scrape(self.metrics_port), ACCEPTED, result="accepted")

    def arm(self, timeout: float = 3 * WEBHOOK_CACHE_TTL) -> float:
        """Register, then move an alias of a probe model until a delivery arrives: MLflow may
        hold a list without the webhook for up to its cache TTL. -> seconds it took."""
        t0 = time.monotonic()
        self.id = mlflow_webhooks.register(self.mlflow_uri, f"bench-{self.probe}", self.url,
                                           self.secret)  # fmt: skip
        if not self.probe_version:
            self.probe_version = register_iris(self.mlflow_uri, self.probe)
        before = self.accepted()
        while time.monotonic() - t0 < timeout:
            set_alias(self.mlflow_uri, self.probe, "probe", self.probe_version)
            if wait_for(lambda: self.accepted() > before, 3, 0.2):
                return time.monotonic() - t0
        raise SystemExit(f"no webhook delivery reached the operator in {timeout:.0f} s")

    def disarm(self) -> None:
        """Delete the webhook and wait out MLflow's cache of it: moves after this reach the
        operator only through its resync."""
        mlflow_webhooks.delete(self.mlflow_uri, self.id)
        time.sleep(WEBHOOK_CACHE_TTL + 2)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def dist(xs: list[float]) -> dict[str, float | int | None]:
    if not xs:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {"n": len(xs), "p50": statistics.median(xs), "p95": pct(xs, 95), "max": max(xs)}


# ---------------------------------------------------------------- watching


@dataclass
class Seen:
    """Arrival times (monotonic) of watch events, per object name."""

    added: dict[str, float] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, now: float) -> None:
        with self.lock:
            self.added.setdefault(name, now)

    def mark_ready(self, name: str, now: float) -> None:
        with self.lock:
            self.ready.setdefault(name, now)


class Watcher(threading.Thread):
    """One watch stream over a namespaced list call, from the resourceVersion of a list
    taken before anything is created; `handle(obj, now)` runs for every event."""

    def __init__(self, list_fn: Callable[..., Any], ns: str, handle: Callable[..., None]):
        super().__init__(daemon=True)
        self.list_fn, self.ns, self.handle = list_fn, ns, handle
        self.stop = threading.Event()
        self.rv = list_fn(ns, _preload_content=False)
        self.rv = json.loads(self.rv.data)["metadata"]["resourceVersion"]
        self.start()

    def run(self) -> None:
        while not self.stop.is_set():
            w = watch.Watch()
            try:
                for ev in w.stream(
                    self.list_fn, self.ns, resource_version=self.rv, timeout_seconds=30,
                    allow_watch_bookmarks=True, _request_timeout=60,
                ):  # fmt: skip
                    now = time.monotonic()
                    obj = ev["raw_object"]
                    self.rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self.handle(obj, now)
                    if self.stop.is_set():
                        break
            except ApiException as e:
                if e.status != 410:
                    raise
                self.rv = json.loads(self.list_fn(self.ns, _preload_content=False).data)[
                    "metadata"
                ]["resourceVersion"]
            finally:
                w.stop()


def deployment_available(d: dict[str, Any]) -> bool:
    st, want = d.get("status") or {}, (d.get("spec") or {}).get("replicas", 1)
    same = st.get("observedGeneration") == d["metadata"].get("generation")
    return bool(same and int(st.get("availableReplicas") or 0) >= int(want))


def md_ready(o: dict[str, Any]) -> bool:
    st = o.get("status") or {}
    if st.get("observedGeneration") != o["metadata"].get("generation"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
    )


def wait_for(pred: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ---------------------------------------------------------------- processes' CPU and memory


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cluster_pids() -> dict[str, int]:
    """The local cluster's processes, from their pid files (hack/localcluster.py) and the real
    node's record (hack/realnode.py); none against another cluster (MLOPS_TEST_CONTEXT)."""
    if os.environ.get("MLOPS_TEST_CONTEXT"):
        return {}
    state = LOCAL_KUBECONFIG.parent
    pids = {f.stem: int(f.read_text()) for f in state.glob("*.pid")}
    owner = Path(os.environ.get("MLOPS_NODE_HOST_DIR", "/run/mlops-operator-node")) / "owner.json"
    if owner.exists():  # the real node's daemons (hack/realnode.py records them there)
        pids.update(json.loads(owner.read_text()).get("pids") or {})
    return {k: v for k, v in pids.items() if cpu_seconds(v) is not None}


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    return {k: c for k, v in pids.items() if (c := cpu_seconds(v)) is not None}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before[k], 1) for k in after if k in before}


# ---------------------------------------------------------------- the benchmark node pool


def node_pool(core: client.CoreV1Api, n: int) -> list[str]:
    """kwok nodes with room for n pods (and some), tainted for the benchmark's pods only."""
    count = max(1, math.ceil((n + 10) / PODS_PER_NODE))
    names = [f"bench-pool-{i}" for i in range(count)]
    cap = {"cpu": "1000", "memory": "4Ti", "pods": str(PODS_PER_NODE), "ephemeral-storage": "1Ti"}
    for name in names:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"kubernetes.io/hostname": name, "type": "kwok", POOL_LABEL: "1"},
            },
            "spec": {"taints": [{"key": POOL_TAINT, "value": "1", "effect": "NoSchedule"}]},
            "status": {"capacity": cap, "allocatable": cap},
        }
        try:
            core.create_node(body)
        except ApiException as e:
            if e.status != 409:
                raise
    return names


PLACEMENT = {
    "nodeSelector": {POOL_LABEL: "1"},
    "tolerations": [{"key": POOL_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
}


def deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {**PLACEMENT, "containers": [{"name": "model", "image": IMAGE}]},
            },
        },
    }


def model_deployment(name: str, model: str) -> dict[str, Any]:
    return {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": model, "alias": "champion"},
            "scheduling": {
                "nodeSelector": PLACEMENT["nodeSelector"],
                "tolerations": PLACEMENT["tolerations"],
            },
        },
    }


def namespace(core: client.CoreV1Api, prefix: str) -> str:
    ns = f"{prefix}{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    return ns


def delete_namespace(core: client.CoreV1Api, ns: str, timeout: float) -> bool:
    core.delete_namespace(ns)

    def gone() -> bool:
        try:
            core.read_namespace(ns)
        except ApiException as e:
            return bool(e.status == 404)
        return False

    return wait_for(gone, timeout, 1)


def create_all(n: int, pool: int, create: Callable[[str], None]) -> float:
    """Create m0000..m<n-1> from `pool` concurrent clients; returns the seconds it took."""
    began = time.monotonic()
    with cf.ThreadPoolExecutor(pool) as ex:
        list(ex.map(create, [f"m{i:04d}" for i in range(n)]))
    return time.monotonic() - began


# ---------------------------------------------------------------- where the time goes


@dataclass
class Profiler:
    """py-spy sampling the operator (all threads, idle frames left out) into collapsed stacks."""

    process: subprocess.Popen[bytes]
    out: Path

    @classmethod
    def start(cls, folder: Path, pid: int, label: str) -> Profiler:
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"{label}.txt"
        spy = os.environ.get("MLOPS_PY_SPY", "py-spy")
        cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
        p = subprocess.Popen([*cmd, "--rate", "50", "--nonblocking"], stdout=subprocess.DEVNULL)
        return cls(p, out)

    def stop(self) -> None:
        self.process.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
        self.process.wait(60)
        for line in top_frames(self.out):
            print(line)


def top_frames(collapsed: Path, count: int = 12) -> list[str]:
    """Where the operator spent its samples, from py-spy's collapsed stacks ("frame;frame;...
    samples" per line): the frames below the event loop's trunk (in under 90% of the samples)
    by inclusive share, and the leaves by their own share."""
    total = 0
    inclusive, own = collections.Counter[str](), collections.Counter[str]()
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        total += int(samples)
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += int(samples)
        own[frames[-1]] += int(samples)
    share = {f: hits / max(total, 1) for f, hits in inclusive.items()}
    below = [f for f, _ in inclusive.most_common() if share[f] < 0.9 and "asyncio/" not in f]
    out = [f"  py-spy, {collapsed.name}: {total} samples (50 a second, busy threads only)"]
    out += [f"    {100 * share[f]:5.1f}%  {f[:140]}" for f in below[:count]]
    out.append("    own time (leaves):")
    out += [f"    {100 * hits / max(total, 1):5.1f}%  {f[:140]}" for f, hits in own.most_common(6)]
    return out


# ---------------------------------------------------------------- the two halves


@dataclass
class Half:
    child: list[float]
    ready: list[float]
    all_ready: float | None  # first ADDED -> last Ready
    created_in: float
    converged: int
    cpu: dict[str, float]


def baseline_half(api: client.ApiClient, n: int, pool: int, timeout: float) -> Half:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns = namespace(core, "bench-kcm-")
    deps, rss = Seen(), Seen()

    def on_dep(d: dict[str, Any], now: float) -> None:
        deps.add(d["metadata"]["name"], now)
        if deployment_available(d):
            deps.mark_ready(d["metadata"]["name"], now)

    def on_rs(r: dict[str, Any], now: float) -> None:
        for ref in r["metadata"].get("ownerReferences") or []:
            rss.add(ref["name"], now)

    watchers = [
        Watcher(apps.list_namespaced_deployment, ns, on_dep),
        Watcher(apps.list_namespaced_replica_set, ns, on_rs),
    ]
    pids = cluster_pids()
    cpu0 = cpu_of(pids)
    created_in = create_all(
        n, pool, lambda name: apps.create_namespaced_deployment(ns, deployment(name))
    )
    wait_for(lambda: len(deps.ready) >= n, timeout)
    cpu1 = cpu_of(pids)
    for w in watchers:
        w.stop.set()
    half = _half(deps, rss, n, created_in, cpu_delta(cpu0, cpu1))
    if not delete_namespace(core, ns, timeout):
        print(f"  namespace {ns} not gone after {timeout:.0f} s", file=sys.stderr)
    return half


def _half(objs: Seen, children: Seen, n: int, created_in: float, cpu: dict[str, float]) -> Half:
    child = [children.added[k] - t for k, t in objs.added.items() if k in children.added]
    ready = [objs.ready[k] - t for k, t in objs.added.items() if k in objs.ready]
    first = min(objs.added.values(), default=None)
    last = max(objs.ready.values(), default=None)
    all_ready = last - first if first is not None and last is not None and len(ready) == n else None
    return Half(child, ready, all_ready, created_in, len(ready), cpu)


@dataclass
class OperatorHalf:
    half: Half
    writes: dict[str, float]  # per converged object
    idle: dict[str, float]
    detail: dict[str, dict[str, float]]  # "converge" and "idle": request_detail
    deployment_available: list[float]  # ModelDeployment ADDED -> its Deployment Available
    rss_start_mb: float | None  # before the half's objects
    rss_mb: float | None
    cpu_per_resync: float | None
    rolled: list[float]  # by the webhook's delivery
    roll_missing: int
    rolled_resync: list[float]  # the baseline: by the resync alone
    resync_missing: int
    deliveries: dict[str, float]  # what the receiver counted during the half, by result


def operator_half(
    api: client.ApiClient,
    n: int,
    pool: int,
    timeout: float,
    op_pid: int,
    metrics_port: int,
    mlflow_uri: str,
    idle: float,
    profile: Path | None,
    hook: Hook,
    memory: Path | None = None,
) -> OperatorHalf:
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    ns = namespace(core, WATCHED)
    model = f"bench-{uuid.uuid4().hex[:6]}"
    register_iris(mlflow_uri, model, alias="champion")
    mds, deps = Seen(), Seen()
    uris: dict[str, tuple[str, float]] = {}

    def list_md(ns: str, **kw: Any) -> Any:
        return custom.list_namespaced_custom_object(
            "mlops.dev", "v1alpha1", ns, "modeldeployments", **kw
        )

    def on_md(o: dict[str, Any], now: float) -> None:
        mds.add(o["metadata"]["name"], now)
        if md_ready(o):
            mds.mark_ready(o["metadata"]["name"], now)

    def on_dep(d: dict[str, Any], now: float) -> None:
        name = d["metadata"]["name"]
        deps.add(name, now)
        if deployment_available(d):
            deps.mark_ready(name, now)
        uri = (d["metadata"].get("annotations") or {}).get("mlops.dev/model-uri", "")
        if uris.get(name, ("",))[0] != uri:
            uris[name] = (uri, now)

    watchers = [Watcher(list_md, ns, on_md), Watcher(apps.list_namespaced_deployment, ns, on_dep)]
    pids = cluster_pids()
    pids["operator"] = op_pid
    before, cpu0, rss0 = scrape(metrics_port), cpu_of(pids), rss_mb(op_pid)
    spy = Profiler.start(profile, op_pid, f"operator-{n}") if profile else None

    def create(name: str) -> None:
        custom.create_namespaced_custom_object(
            "mlops.dev", "v1alpha1", ns, "modeldeployments", model_deployment(name, model)
        )

    created_in = create_all(n, pool, create)
    wait_for(lambda: len(mds.ready) >= n, timeout)
    # a status write or Event still in flight for the last objects: one more second
    time.sleep(1)
    after, cpu1 = scrape(metrics_port), cpu_of(pids)
    if spy:
        spy.stop()
    half = _half(mds, deps, n, created_in, cpu_delta(cpu0, cpu1))
    writes = {k: v / max(half.converged, 1) for k, v in write_counts(before, after).items()}
    detail = {"converge": request_detail(before, after)}

    # idle: nothing changes; what does the operator write, hold and burn?
    cpu_i0, at = cpu_seconds(op_pid), scrape(metrics_port)
    time.sleep(idle)
    cpu_i1, at2 = cpu_seconds(op_pid), scrape(metrics_port)
    idle_writes = write_counts(at, at2)
    detail["idle"] = request_detail(at, at2)
    per_resync = (
        (cpu_i1 - cpu_i0) / (idle / RESYNC) if cpu_i0 is not None and cpu_i1 is not None else None
    )

    def move(max_iter: int) -> list[float]:
        """alias move -> every Deployment pinned to the new version"""
        v = register_iris(mlflow_uri, model, max_iter=max_iter)
        want = f"models:/{model}/{v}"
        moved_at = time.monotonic()
        set_alias(mlflow_uri, model, "champion", v)
        wait_for(lambda: sum(u == want for u, _ in uris.values()) >= n, timeout)
        return [t - moved_at for u, t in uris.values() if u == want]

    rolled = move(300)
    deliveries = {
        r: value(scrape(metrics_port), ACCEPTED, result=r) - value(before, ACCEPTED, result=r)
        for r in ("accepted", "forged", "stale", "replayed", "malformed", "standby")
    }
    hook.disarm()
    rolled_resync = move(301)
    for w in watchers:
        w.stop.set()
    rss = rss_mb(op_pid)
    if memory:
        memory_dump(op_pid, memory, n)
    if not delete_namespace(core, ns, timeout):
        print(f"  namespace {ns} not gone after {timeout:.0f} s", file=sys.stderr)
    available = [deps.ready[k] - t for k, t in mds.added.items() if k in deps.ready]
    return OperatorHalf(
        half,
        writes,
        idle_writes,
        detail,
        available,
        rss0,
        rss,
        per_resync,
        rolled,
        n - len(rolled),
        rolled_resync,
        n - len(rolled_resync),
        deliveries,
    )


MEMORY_DUMP = "operator-memory.txt"


def memory_dump(op_pid: int, memory: Path, n: int) -> None:
    """Ask the operator where its memory is (tests/support/operator_main.py, on SIGUSR2), keep
    the answer as memory-<n>.txt and print its head."""
    dump = memory / MEMORY_DUMP
    dump.unlink(missing_ok=True)
    os.kill(op_pid, signal.SIGUSR2)
    if not wait_for(dump.exists, 600):
        print(f"  no memory report from the operator within 600 s ({dump})", file=sys.stderr)
        return
    kept = memory / f"memory-{n}.txt"
    dump.replace(kept)
    text = kept.read_text().splitlines()
    print(f"  where the operator's memory is at {n} objects ({kept}):")
    print("\n".join(f"    {ln}" for ln in text[:45]))


def write_counts(before: Samples, after: Samples) -> dict[str, float]:
    """Writes between two scrapes, by what they wrote: child creates (server-side apply
    answered 201 Created) and updates (200), writes to the ModelDeployment (status and the
    object), Lease writes, Events."""
    out: dict[str, float] = {
        "child creates": 0.0,
        "child updates": 0.0,
        "other child writes": 0.0,
        "ModelDeployment writes": 0.0,
        "Lease writes": 0.0,
        "Events": 0.0,
    }
    keys = set(before) | set(after)
    for name, labels in keys:
        d = after.get((name, labels), 0.0) - before.get((name, labels), 0.0)
        if not d:
            continue
        ls = dict(labels)
        if name == "mlops_operator_events_total":
            out["Events"] += d
            continue
        if name != "mlops_operator_api_requests_total" or ls.get("verb") not in WRITES:
            continue
        resource = ls.get("resource", "")
        if resource == "leases":
            out["Lease writes"] += d
        elif resource.startswith("modeldeployments"):
            out["ModelDeployment writes"] += d
        elif ls["verb"] == "PATCH" and ls.get("code") == "201":
            out["child creates"] += d
        elif ls["verb"] == "PATCH" and ls.get("code") == "200":
            out["child updates"] += d
        else:
            out["other child writes"] += d
    return out


def request_detail(before: Samples, after: Samples) -> dict[str, float]:
    """Every request between two scrapes by "VERB resource code": the writes write_counts sums,
    and the reads beside them."""
    out: dict[str, float] = {}
    for name, labels in set(before) | set(after):
        ls = dict(labels)
        if name != "mlops_operator_api_requests_total":
            continue
        d = after.get((name, labels), 0.0) - before.get((name, labels), 0.0)
        if d:
            out[f"{ls['verb']} {ls.get('resource', '')} {ls.get('code', '')}"] = d
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- report


def fmt(d: dict[str, Any]) -> str:
    if not d["n"]:
        return f"{'-':>20}"
    return f"{d['p50']:6.2f} {d['p95']:6.2f} {d['max']:6.2f}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:5.2f}x" if a is not None and b else "    -"


def run(a: argparse.Namespace) -> dict[str, Any]:
    kubeconfig, context = ensure_cluster()
    api = config.new_client_from_config(config_file=kubeconfig, context=context)
    api.configuration.connection_pool_maxsize = max(a.pool * 2, 16)
    from tests.support.kube import apply_crds

    apply_crds(api, sorted((ROOT / "crds").glob("*.yaml")))
    core = client.CoreV1Api(api)
    nodes = node_pool(core, max(int(s) for s in a.sizes.split(",")))
    sizes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # MLflow's local settings for deliveries to this machine, its webhook cache as default
        mlflow = start_mlflow(Path(tmp) / "mlflow", env=mlflow_webhooks.local_mlflow_env())
        port, hook_port = free_port(), free_port()
        hook = Hook(mlflow.url, hook_port, port)
        traced = {}
        if a.memory:
            a.memory.mkdir(parents=True, exist_ok=True)
            # tracemalloc slows the operator and adds to its RSS: figures of such a run are
            # for where the memory is, not for comparing
            traced = {
                "PYTHONTRACEMALLOC": "8",
                "MLOPS_TEST_MEMORY_DUMP": str(a.memory.resolve() / MEMORY_DUMP),
            }
        op = start_operator(
            kubeconfig,
            mlflow.url,
            Path(tmp) / "operator.log",
            MLOPS_RESYNC_SECONDS=str(RESYNC),
            MLOPS_NAMESPACES=f"{WATCHED}*",
            MLOPS_METRICS_PORT=str(port),
            MLOPS_LEADER_ELECTION="true",
            MLOPS_LEADER_ELECTION_NAMESPACE="default",
            MLOPS_LEADER_ELECTION_NAME=f"bench-{uuid.uuid4().hex[:6]}",
            **mlflow_webhooks.receiver_settings(hook_port, hook.secret),
            **traced,
        )
        try:
            for s in a.sizes.split(","):
                n = int(s)
                timeout = 300 + 2 * n
                print(f"\n{n} objects: {n} Deployments (baseline) ...", flush=True)
                base = baseline_half(api, n, a.pool, timeout)
                print(f"{n} objects: {n} ModelDeployments ...", flush=True)
                armed = hook.arm()
                print(f"  the webhook's first delivery after {armed:.1f} s", flush=True)
                ours = operator_half(
                    api, n, a.pool, timeout, op.process.pid, port, mlflow.url, a.idle, a.profile,
                    hook, a.memory,
                )  # fmt: skip
                sizes.append(size_record(n, base, ours))
        finally:
            op.stop()
            mlflow.stop()
            if a.json:  # the operator's log beside the figures, for what they do not say
                shutil.copy(Path(tmp) / "operator.log", a.json.with_suffix(".operator.log"))
            for name in nodes:
                with contextlib.suppress(ApiException):
                    core.delete_node(name)
    return {
        "benchmark": "reconcile",
        "commit": _commit(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "pool": a.pool,
        "resync_seconds": RESYNC,
        "idle_seconds": a.idle,
        "real_node": bool({"kubelet", "kube-proxy"} & set(cluster_pids())),
        "sizes": sizes,
    }


def size_record(n: int, base: Half, ours: OperatorHalf) -> dict[str, Any]:
    o = ours.half
    return {
        "n": n,
        "baseline": {
            "what": "Deployment -> ReplicaSet (kube-controller-manager)",
            "child": dist(base.child),
            "ready": dist(base.ready),
            "all_ready_seconds": base.all_ready,
            "created_in_seconds": base.created_in,
            "converged": base.converged,
            "cpu_seconds": base.cpu,
        },
        "operator": {
            "what": "ModelDeployment -> Deployment (mlops-operator)",
            "child": dist(o.child),
            "ready": dist(o.ready),
            "all_ready_seconds": o.all_ready,
            "created_in_seconds": o.created_in,
            "converged": o.converged,
            "cpu_seconds": o.cpu,
            "writes_per_object": ours.writes,
            "idle_writes": ours.idle,
            "requests_in_detail": ours.detail,
            "deployment_available": dist(ours.deployment_available),
            "rss_start_mb": ours.rss_start_mb,
            "rss_mb": ours.rss_mb,
            "cpu_seconds_per_resync": ours.cpu_per_resync,
            "alias_move_to_rolled": dist(ours.rolled),
            "roll_missing": ours.roll_missing,
            "alias_move_to_rolled_resync_only": dist(ours.rolled_resync),
            "resync_roll_missing": ours.resync_missing,
            "webhook_deliveries": ours.deliveries,
        },
    }


def print_table(r: dict[str, Any]) -> None:
    print(f"\nOperator beside kube-controller-manager (seconds; pool of {r['pool']} clients; "
          f"resync {r['resync_seconds']:.0f} s; real node: {r['real_node']}); "
          "p50 p95 max")  # fmt: skip
    head = f"{'objects':>7} {'':<24} | {'ADDED -> child ADDED':>20} | {'ADDED -> Ready':>20}"
    print(head + f" | {'all Ready':>9} | {'converged':>9}")
    for s in r["sizes"]:
        b, o = s["baseline"], s["operator"]
        for label, h in (("Deployment (KCM)", b), ("ModelDeployment (ours)", o)):
            all_r = f"{h['all_ready_seconds']:9.1f}" if h["all_ready_seconds"] else f"{'-':>9}"
            print(f"{s['n']:>7} {label:<24} | {fmt(h['child']):>20} | {fmt(h['ready']):>20} | "
                  f"{all_r} | {h['converged']:>9}")  # fmt: skip
        print(f"{s['n']:>7} {'ratio (ours / KCM)':<24} | "
              f"{'p50 ' + ratio(o['child']['p50'], b['child']['p50']):>20} | "
              f"{'p50 ' + ratio(o['ready']['p50'], b['ready']['p50']):>20} | "
              f"{ratio(o['all_ready_seconds'], b['all_ready_seconds']):>9} |")  # fmt: skip
    for s in r["sizes"]:
        o = s["operator"]
        w = ", ".join(f"{k} {v:.2f}" for k, v in o["writes_per_object"].items())
        idle = ", ".join(f"{k} {v:.0f}" for k, v in o["idle_writes"].items())
        print(f"\n{s['n']} objects, per converged ModelDeployment: {w}")
        print(
            f"  ModelDeployment ADDED -> its Deployment Available: "
            f"{fmt(o['deployment_available'])} (then the operator's status write says Ready)"
        )
        print(f"  idle {r['idle_seconds']:.0f} s: {idle}")
        for phase, d in o["requests_in_detail"].items():
            print(f"  requests while {phase} (verb resource answer): "
                  + ", ".join(f"{k} {v:.0f}" for k, v in d.items()))  # fmt: skip
        rss = f"{o['rss_mb']:.0f} MB" if o["rss_mb"] else "-"
        if o["rss_start_mb"]:
            rss += f" (at the start of the half {o['rss_start_mb']:.0f} MB)"
        cpu = o["cpu_seconds_per_resync"]
        print(f"  operator RSS {rss}, CPU {cpu:.2f} s per resync period while idle"
              if cpu is not None else f"  operator RSS {rss}")  # fmt: skip
        print(f"  alias move -> rolled, by the webhook: {fmt(o['alias_move_to_rolled'])}"
              + (f" ({o['roll_missing']} not rolled)" if o["roll_missing"] else ""))  # fmt: skip
        res = o["alias_move_to_rolled_resync_only"]
        print(f"  alias move -> rolled, by the resync alone (baseline): {fmt(res)}"
              + (f" ({o['resync_roll_missing']} not rolled)" if o["resync_roll_missing"] else "")
              + f"; ratio p50 {ratio(o['alias_move_to_rolled']['p50'], res['p50'])}")  # fmt: skip
        print("  webhook deliveries during the half: "
              + ", ".join(f"{k} {v:.0f}" for k, v in o["webhook_deliveries"].items()))  # fmt: skip
        for label, h in (("baseline", s["baseline"]), ("operator", o)):
            cpu_s = ", ".join(f"{k} {v:.1f}" for k, v in sorted(h["cpu_seconds"].items()))
            print(f"  CPU seconds during the {label} half: {cpu_s}")


def _commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--pool", type=int, default=8, help="concurrent clients creating objects")
    ap.add_argument("--idle", type=float, default=300, help="idle seconds after convergence")
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    ap.add_argument(
        "--profile",
        type=Path,
        help="record the operator with py-spy while each operator half converges (collapsed "
        "stacks in this directory; needs py-spy, as `make bench-profile` installs it) and print "
        "where its time went",
    )
    ap.add_argument(
        "--memory",
        type=Path,
        help="run the operator under tracemalloc and, after each operator half, write and print "
        "where its memory is (this directory; such a run's timings and RSS are not comparable)",
    )
    a = ap.parse_args()
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
    r = run(a)
    print_table(r)
    if a.json:
        a.json.write_text(json.dumps(r, indent=2) + "\n")
        print(f"\nfigures written to {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
