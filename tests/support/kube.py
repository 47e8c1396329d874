"""Helpers the tests use on the real API server."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.support.helm import find_binary


def apply_crds(api: client.ApiClient, files: list[Path], timeout: float = 30) -> None:
    ext = client.ApiextensionsV1Api(api)
    names = []
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            name = doc["metadata"]["name"]
            names.append(name)
            server_side_apply(api, doc)
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            crd = ext.read_custom_resource_definition(name)
            conds = {c.type: c.status for c in (crd.status.conditions or [])}
            if conds.get("Established") == "True":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not established: {conds}")
            time.sleep(0.2)


def server_side_apply(
    api: client.ApiClient, obj: dict[str, Any], manager: str = "mlops-tests"
) -> dict[str, Any]:
    """kubectl apply --server-side for any object, through the dynamic client."""
    from kubernetes import dynamic

    dyn = dynamic.DynamicClient(api)
    res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    return dict(
        res.server_side_apply(
            body=obj,
            name=obj["metadata"]["name"],
            namespace=obj["metadata"].get("namespace"),
            field_manager=manager,
            force_conflicts=True,
        ).to_dict()
    )


@contextlib.contextmanager
def fresh_namespace(api: client.ApiClient, prefix: str) -> Iterator[str]:
    """A new namespace `<prefix><8 hex>` labelled as a test's, deleted on exit (without
    waiting for it to go)."""
    core = client.CoreV1Api(api)
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"mlops.dev/test": "true"})
        )
    )
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


KUBECTL = find_binary("kubectl") or "kubectl"  # the project's build, of the cluster's version


def kubectl(kubeconfig: str, *args: str) -> str:
    r = subprocess.run(
        [KUBECTL, f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, f"kubectl {' '.join(args)}: {r.stderr}"
    return r.stdout
