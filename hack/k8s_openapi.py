"""Writes operator/mlops_operator/api/k8s_openapi.json: the Kubernetes types the CRDs embed
(mlops_operator/api/k8s_types.py), as the local cluster's kube-apiserver (the pinned version)
publishes them in its OpenAPI v3. `make crds` runs it when the local cluster answers; the file
is committed, so the CRDs regenerate without a cluster too.

    python hack/k8s_openapi.py [KUBECONFIG]   (default .cluster/kubeconfig)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlops_operator.api import k8s_types

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = Path.home() / ".cache" / "mlops-operator" / "bin" / "kubectl"


def _get(kubeconfig: str, path: str) -> Any:
    kubectl = str(KUBECTL) if KUBECTL.exists() else "kubectl"
    done = subprocess.run(
        [kubectl, f"--kubeconfig={kubeconfig}", "get", "--raw", path],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def fetch(kubeconfig: str) -> dict[str, Any]:
    """The document k8s_openapi.json holds, read from the API server behind `kubeconfig`."""
    components: dict[str, Any] = {}
    for path in k8s_types.SOURCES:
        components.update(_get(kubeconfig, f"/openapi/v3/{path}")["components"]["schemas"])
    version = _get(kubeconfig, "/version")["gitVersion"]
    return {
        "source": f"kube-apiserver {version}, /openapi/v3/{{{','.join(k8s_types.SOURCES)}}}",
        "schemas": k8s_types.closure(components),
    }


def main() -> int:
    kubeconfig = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".cluster" / "kubeconfig")
    doc = fetch(kubeconfig)
    k8s_types.OPENAPI.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {k8s_types.OPENAPI.relative_to(ROOT)} ({doc['source']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
