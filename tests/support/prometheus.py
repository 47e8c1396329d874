"""A real Prometheus (built from its Go module) on 127.0.0.1 that scrapes targets the tests
name, and with a real node also the model pods it finds through the API server.

Targets go into a file_sd file, re-read every second, so a test can point Prometheus at a
runtime process it started on a free port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.helm import find_binary
from tests.support.mlflow_server import free_port


@dataclass
class PrometheusServer:
    url: str
    root: Path
    process: subprocess.Popen[bytes]
    args: list[str]

    def set_targets(self, targets: list[str], labels: dict[str, str] | None = None) -> None:
        tmp = self.root / "targets.json.tmp"
        tmp.write_text(json.dumps([{"targets": targets, "labels": labels or {}}]))
        tmp.replace(self.root / "targets.json")

    def query(self, expr: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=5) as r:
            return list(json.load(r)["data"]["result"])

    def alerts(self) -> dict[str, str]:
        """alertname -> state (pending | firing) of the alerts active now."""
        with urllib.request.urlopen(f"{self.url}/api/v1/alerts", timeout=5) as r:
            found = json.load(r)["data"]["alerts"]
        return {a["labels"]["alertname"]: a["state"] for a in found}

    def rule_health(self) -> list[tuple[str, str]]:
        """(rule name, health) of every loaded rule: a rule Prometheus cannot evaluate says so."""
        with urllib.request.urlopen(f"{self.url}/api/v1/rules", timeout=5) as r:
            groups = json.load(r)["data"]["groups"]
        return [(rule["name"], rule["health"]) for g in groups for rule in g["rules"]]

    def restart(self) -> None:
        """Start it again after stop(): same address, same data (an outage that ends)."""
        self.stop()
        self.process = _spawn(self.args, self.root)
        _wait_ready(self)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@dataclass(frozen=True)
class PodDiscovery:
    """Discover model pods on the real node from the API server (kubernetes_sd, role pod)."""

    api_server: str
    ca_file: str
    cert_file: str
    key_file: str
    namespaces: str  # a regex of the namespaces whose pods to scrape
    node: str
    pod_range: str  # a regex of the pod addresses (the real node's bridge only)

    def job(self) -> dict[str, object]:
        def keep(label: str, regex: str) -> dict[str, object]:
            return {"source_labels": [label], "regex": regex, "action": "keep"}

        meta = "__meta_kubernetes_pod_"
        return {
            "job_name": "pods",
            # the runtime labels its series with namespace and model_deployment itself
            "honor_labels": True,
            "kubernetes_sd_configs": [
                {
                    "role": "pod",
                    "api_server": self.api_server,
                    "tls_config": {
                        "ca_file": self.ca_file,
                        "cert_file": self.cert_file,
                        "key_file": self.key_file,
                    },
                }
            ],
            # only real pods, only on the bridge: a simulated pod's address belongs to no one
            "relabel_configs": [
                keep(f"{meta}node_name", self.node),
                keep(f"{meta}ip", self.pod_range),
                keep("__meta_kubernetes_namespace", self.namespaces),
                keep(f"{meta}annotation_prometheus_io_scrape", "true"),
                {
                    "source_labels": [f"{meta}ip", f"{meta}annotation_prometheus_io_port"],
                    "separator": ":",
                    "target_label": "__address__",
                },
                {"source_labels": [f"{meta}name"], "target_label": "pod"},
            ],
        }


def start_prometheus(
    root: Path, pods: PodDiscovery | None = None, rule_groups: list[dict[str, Any]] | None = None
) -> PrometheusServer:
    """A real Prometheus scraping targets.json (set_targets) and, with `pods`, the real node's
    pods; `rule_groups` (a rule file's groups, e.g. a PrometheusRule's spec) are evaluated."""
    # the project's build (hack/build-binaries.sh), which has the Kubernetes discovery
    binary = find_binary("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not built: run `make setup` (hack/build-binaries.sh)")
    root.mkdir(parents=True, exist_ok=True)
    (root / "targets.json").write_text("[]")
    rule_files = []
    if rule_groups is not None:
        (root / "rules.json").write_text(json.dumps({"groups": rule_groups}))
        rule_files = [str(root / "rules.json")]
    (root / "prometheus.yml").write_text(
        json.dumps(
            {
                # one-second scrapes: tests should not wait for the usual 15-60 s
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": rule_files,
                "scrape_configs": [
                    {
                        "job_name": "runtime",
                        "file_sd_configs": [
                            {"files": [str(root / "targets.json")], "refresh_interval": "1s"}
                        ],
                    },
                    *([pods.job()] if pods else []),
                ],
            }
        )
    )
    port = free_port()
    args = [
        binary,
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    server = PrometheusServer(f"http://127.0.0.1:{port}", root, _spawn(args, root), args)
    _wait_ready(server)
    return server


def _spawn(args: list[str], root: Path) -> subprocess.Popen[bytes]:
    log = open(root / "prometheus.log", "ab")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_ready(server: PrometheusServer) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError((server.root / "prometheus.log").read_text()[-2000:])
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError("prometheus did not become ready")
