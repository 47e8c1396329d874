#!/usr/bin/env python3
"""Operator latency on the local cluster: apply -> Deployment exists, and alias move ->
roll-forward (the Deployment pinned to the new version), for 1, 100 and 500 ModelDeployments.

Both are the operator's latency, not kwok's: the clock stops when the Deployment (or its new
pod template) is written, not when pods are Ready. Alias moves are not events MLflow can push,
so their latency is bounded by the resync period (MLOPS_RESYNC_SECONDS, set here to 5 s).

    python bench/bench_reconcile.py [--sizes 1,100,500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client, config  # noqa: E402

from tests.support.cluster import ensure_cluster  # noqa: E402
from tests.support.mlflow_server import start_mlflow  # noqa: E402
from tests.support.models import register_iris, set_alias  # noqa: E402
from tests.support.operator_process import start_operator  # noqa: E402

RESYNC = "5"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def watch_until(
    fn: Any, names: set[str], start: dict[str, float], timeout: float
) -> dict[str, float]:
    """Poll fn() -> {name: ok?}; record the first time each name is ok."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(names) and time.monotonic() < deadline:
        now = time.monotonic()
        for name, ok in fn().items():
            if ok and name in names and name not in seen:
                seen[name] = now - start[name]
        time.sleep(0.1)
    return seen


def run_size(n: int, api: client.ApiClient, mlflow_uri: str) -> dict[str, Any]:
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    ns = f"bench-{n}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": ns}})
    model = f"bench-{uuid.uuid4().hex[:6]}"
    v1 = register_iris(mlflow_uri, model, alias="champion")
    names = {f"m{i:03d}" for i in range(n)}
    start: dict[str, float] = {}
    for name in sorted(names):
        start[name] = time.monotonic()
        custom.create_namespaced_custom_object(
            "mlops.dev",
            "v1alpha1",
            ns,
            "modeldeployments",
            {
                "apiVersion": "mlops.dev/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": name},
                "spec": {"model": {"name": model, "alias": "champion"}},
            },
        )

    def deployments() -> dict[str, bool]:
        return {d.metadata.name: True for d in apps.list_namespaced_deployment(ns).items}

    created = watch_until(deployments, names, start, timeout=300 + n)
    # wait for every object to settle before moving the alias
    time.sleep(3)
    v2 = register_iris(mlflow_uri, model, max_iter=300)
    moved_at = time.monotonic()
    set_alias(mlflow_uri, model, "champion", v2)
    uri = f"models:/{model}/{v2}"

    def rolled() -> dict[str, bool]:
        return {
            d.metadata.name: (d.metadata.annotations or {}).get("mlops.dev/model-uri") == uri
            for d in apps.list_namespaced_deployment(ns).items
        }

    rolled_t = watch_until(rolled, names, dict.fromkeys(names, moved_at), timeout=300 + n)
    core.delete_namespace(ns)
    del v1
    return {
        "n": n,
        "created": list(created.values()),
        "missing_create": n - len(created),
        "rolled": list(rolled_t.values()),
        "missing_roll": n - len(rolled_t),
    }


def fmt(xs: list[float]) -> str:
    if not xs:
        return "-"
    return f"{statistics.median(xs):6.2f} {pct(xs, 95):6.2f} {max(xs):6.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1,100,500")
    a = ap.parse_args()
    kubeconfig, context = ensure_cluster()
    api = config.new_client_from_config(config_file=kubeconfig, context=context)
    from tests.support.kube import apply_crds

    apply_crds(api, sorted((ROOT / "crds").glob("*.yaml")))
    with tempfile.TemporaryDirectory() as tmp:
        mlflow = start_mlflow(Path(tmp) / "mlflow")
        op = start_operator(
            kubeconfig,
            mlflow.url,
            Path(tmp) / "operator.log",
            MLOPS_RESYNC_SECONDS=RESYNC,
            MLOPS_NAMESPACES="bench-*",
        )
        try:
            rows = [run_size(int(n), api, mlflow.url) for n in a.sizes.split(",")]
        finally:
            op.stop()
            mlflow.stop()
    print(f"\nOperator latency (seconds; MLOPS_RESYNC_SECONDS={RESYNC}); p50 p95 max")
    print(f"{'objects':>8} | {'apply -> Deployment':>22} | {'alias move -> rolled':>22}")
    for r in rows:
        print(
            f"{r['n']:>8} | {fmt(r['created']):>22} | {fmt(r['rolled']):>22}"
            + (
                f"  (missing: {r['missing_create']} created, {r['missing_roll']} rolled)"
                if r["missing_create"] or r["missing_roll"]
                else ""
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
