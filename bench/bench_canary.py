#!/usr/bin/env python3
"""Canary rollouts on real pods: how long a version change takes, and what the operator adds.

On the local cluster's real node, with a real Prometheus scraping the model pods and traffic
through the Service, one ModelDeployment per measurement:

  baseline   strategy RollingUpdate: alias move -> every pod at the new version
  canary     strategy Canary with the default steps (20%, pause 1m, 50%, pause 1m, 100%) and
             the default analysis (every 30 s): alias move -> Succeeded, and -> the canary
             Deployment gone (the stable one serving the new version on every pod)
  rollback   the same for a version that answers 500 to half of the requests: alias move ->
             RolledBack, the first failing interval -> RolledBack, and -> canary pods gone

Each figure is printed beside what the steps alone take by configuration (pauses, intervals):
the difference is the operator's overhead plus pod start-up, which the baseline also pays.

    python bench/bench_canary.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes import client, config  # noqa: E402

from tests.support.cluster import ensure_cluster  # noqa: E402
from tests.support.kube import apply_crds, server_side_apply  # noqa: E402
from tests.support.mlflow_server import start_mlflow  # noqa: E402
from tests.support.models import (  # noqa: E402
    body_with_age,
    register_diabetes,
    register_misbehaving,
    rows,
    set_alias,
)
from tests.support.objects import make_model_deployment  # noqa: E402
from tests.support.operator_process import start_operator  # noqa: E402
from tests.support.prometheus import start_prometheus  # noqa: E402
from tests.support.realnode import (  # noqa: E402
    BRIDGE_IP,
    RUNTIME_IMAGE,
    SCHEDULING,
    ensure_images,
    node_state,
    pod_discovery,
)
from tests.support.traffic import Traffic  # noqa: E402

NS_PREFIX = "bench-canary"
SLO = {"latency": {"p99": "500ms"}, "errorRate": 0.05, "window": "1m"}
# what the default steps and analysis take by configuration alone
DEFAULT_PAUSES = 60 + 60
DEFAULT_INTERVAL = 30
DEFAULT_FAILURE_LIMIT = 2


class Bench:
    def __init__(self, api: client.ApiClient, mlflow_uri: str) -> None:
        self.api, self.mlflow_uri = api, mlflow_uri
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.ns = f"{NS_PREFIX}-{uuid.uuid4().hex[:5]}"
        self.core.create_namespace({"metadata": {"name": self.ns}})

    def md(self, name: str) -> dict[str, Any]:
        return dict(
            self.custom.get_namespaced_custom_object(
                "mlops.dev", "v1alpha1", self.ns, "modeldeployments", name
            )
        )

    def apply(self, name: str, model: str, **spec: Any) -> None:
        body = make_model_deployment(
            name,
            self.ns,
            model={"name": model, "alias": "champion"},
            replicas=2,
            runtime={"image": RUNTIME_IMAGE},
            scheduling=SCHEDULING,
            resources={"requests": {"cpu": "50m", "memory": "256Mi"}},
            **spec,
        )
        server_side_apply(self.api, body)

    def ready_at(self, name: str, version: str) -> bool:
        st = self.md(name).get("status") or {}
        conds = st.get("conditions") or []
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
        return ready and (st.get("model") or {}).get("version") == version

    def pods_at(self, name: str, version: str) -> bool:
        pods = self.core.list_namespaced_pod(
            self.ns, label_selector=f"mlops.dev/model-deployment={name}"
        ).items
        live = [p for p in pods if not p.metadata.deletion_timestamp]
        return bool(live) and all(
            p.metadata.labels["mlops.dev/model-version"] == version for p in pods
        )

    def no_canary(self, name: str) -> bool:
        pods = self.core.list_namespaced_pod(
            self.ns, label_selector=f"mlops.dev/model-deployment={name},mlops.dev/track=canary"
        ).items
        return not pods

    def rollout(self, name: str) -> dict[str, Any]:
        return dict((self.md(name).get("status") or {}).get("rollout") or {})

    def traffic(self, name: str, *bodies: dict[str, Any]) -> Traffic:
        svc = self.core.read_namespaced_service(name, self.ns)
        url = f"http://{svc.spec.cluster_ip}:{svc.spec.ports[0].port}/v2/models/{name}/infer"
        return Traffic(url, list(bodies), fresh=True).start()

    def close(self) -> None:
        self.core.delete_namespace(self.ns)


def until(fn: Callable[[], Any], what: str, timeout: float) -> float:
    """Poll fn until truthy; the monotonic time it first was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fn():
                return time.monotonic()
        except client.ApiException:
            pass
        time.sleep(0.25)
    raise SystemExit(f"timed out: {what}")


def one(b: Bench, name: str, strategy: str, bad: bool) -> dict[str, float]:
    model = f"{name}-{uuid.uuid4().hex[:5]}"
    v1 = register_diabetes(b.mlflow_uri, model, alpha=0.5)
    if bad:
        v2 = register_misbehaving(b.mlflow_uri, model, rows(50), fail_column="age")
    else:
        v2 = register_diabetes(b.mlflow_uri, model, alpha=2.0)
    set_alias(b.mlflow_uri, model, "champion", v1)
    rollout = {"strategy": strategy}
    b.apply(name, model, slo=SLO, rollout=rollout)
    until(lambda: b.ready_at(name, v1), f"{name} ready", 300)
    t = b.traffic(name, body_with_age(False), body_with_age(True))
    until(lambda: t.ok >= 20, "traffic", 60)
    moved = time.monotonic()
    set_alias(b.mlflow_uri, model, "champion", v2)
    out: dict[str, float] = {}
    try:
        if strategy == "RollingUpdate":
            out["all pods new"] = until(lambda: b.pods_at(name, v2), "rolled", 300) - moved
        elif not bad:
            done = until(lambda: b.rollout(name).get("phase") == "Succeeded", "promoted", 600)
            out["Succeeded"] = done - moved
            out["all pods new"] = until(lambda: b.pods_at(name, v2), "handed over", 300) - moved
        else:
            first_fail = until(lambda: b.rollout(name).get("failures", 0) >= 1, "a Fail", 600)
            back = until(lambda: b.rollout(name).get("phase") == "RolledBack", "rollback", 600)
            gone = until(lambda: b.no_canary(name), "canary pods gone", 300)
            out["RolledBack"] = back - moved
            out["first Fail -> RolledBack"] = back - first_fail
            out["RolledBack -> pods gone"] = gone - back
    finally:
        t.finish()
    out["failed requests"] = float(len(t.failed))
    out["requests"] = float(t.ok + len(t.failed))
    return out


def main() -> int:
    kubeconfig, context = ensure_cluster()
    if not node_state().real:
        print(f"bench-canary needs the real node: {node_state().reason}", file=sys.stderr)
        return 1
    ensure_images()
    api = config.new_client_from_config(config_file=kubeconfig, context=context)
    apply_crds(api, sorted((ROOT / "crds").glob("*.yaml")))
    with tempfile.TemporaryDirectory() as tmp:
        mlflow = start_mlflow(Path(tmp) / "mlflow", host="0.0.0.0")
        prom = start_prometheus(Path(tmp) / "prometheus", pod_discovery(f"{NS_PREFIX}-.*"))
        op = start_operator(
            kubeconfig,
            mlflow.url,
            Path(tmp) / "operator.log",
            MLOPS_RESYNC_SECONDS="5",
            MLOPS_NAMESPACES=f"{NS_PREFIX}-*",
            MLOPS_PROMETHEUS_URL=prom.url,
            MLOPS_RUNTIME_MLFLOW_URI=f"http://{BRIDGE_IP}:{mlflow.port}",
        )
        b = Bench(api, mlflow.url)
        try:
            base = one(b, "rolling", "RollingUpdate", bad=False)
            good = one(b, "canary", "Canary", bad=False)
            bad = one(b, "rollback", "Canary", bad=True)
        finally:
            b.close()
            op.stop()
            prom.stop()
            mlflow.stop()
    print(json.dumps({"baseline": base, "canary": good, "rollback": bad}, indent=1))
    configured = DEFAULT_PAUSES
    print("\nVersion change on real pods, 2 replicas, traffic through the Service (seconds)")
    print(f"{'':40} {'measured':>8} {'configured':>10} {'overhead':>8}")
    rows_ = [
        ("RollingUpdate: all pods new (baseline)", base["all pods new"], 0.0),
        ("Canary: alias move -> Succeeded", good["Succeeded"], float(configured)),
        ("Canary: alias move -> all pods new", good["all pods new"], float(configured)),
        (
            "Rollback: alias move -> RolledBack",
            bad["RolledBack"],
            float(DEFAULT_INTERVAL * DEFAULT_FAILURE_LIMIT),
        ),
        (
            "Rollback: first Fail -> RolledBack",
            bad["first Fail -> RolledBack"],
            float(DEFAULT_INTERVAL * (DEFAULT_FAILURE_LIMIT - 1)),
        ),
        # the pods' preStop drain (MLOPS_DRAIN_DELAY_SECONDS) is the configured part
        ("Rollback: RolledBack -> canary pods gone", bad["RolledBack -> pods gone"], 5.0),
    ]
    for what, measured, conf in rows_:
        print(f"{what:<40} {measured:8.1f} {conf:10.1f} {measured - conf:8.1f}")
    ratio = (good["all pods new"] - configured) / base["all pods new"]
    print(
        f"\nCanary overhead beyond its configured pauses vs the plain rolling update: "
        f"x{ratio:.2f} (both include pod start-up)."
    )
    print(
        f"Failed requests: baseline {base['failed requests']:.0f}/{base['requests']:.0f}, "
        f"canary {good['failed requests']:.0f}/{good['requests']:.0f}, rollback "
        f"{bad['failed requests']:.0f}/{bad['requests']:.0f} (the bad version's own answers)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
