"""The helm CLI the project builds (hack/setup.sh) and the chart it ships."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mlops-operator"
BIN = Path(os.environ.get("MLOPS_CACHE_DIR") or Path.home() / ".cache" / "mlops-operator") / "bin"


def find_binary(name: str) -> str | None:
    """The project's cached build first, then PATH."""
    cached = BIN / name
    return str(cached) if cached.is_file() else shutil.which(name)


def helm(
    *args: str, kubeconfig: str | None = None, check: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    binary = find_binary("helm")
    if binary is None:
        raise FileNotFoundError("helm is not installed: run `make setup-binaries`")
    env = dict(os.environ)
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    # helm keeps caches and repository config under $HOME; tests must not depend on them
    return subprocess.run(
        [binary, *args], env=env, capture_output=True, text=True, check=check, timeout=timeout
    )


def template(*set_args: str, namespace: str = "mlops-system", release: str = "mlops") -> list[Any]:
    """`helm template` of the chart, as parsed documents (None documents dropped)."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for s in set_args:
        args += ["--set", s]
    out = helm(*args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[Any], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]
