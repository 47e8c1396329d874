"""What the real node costs: RSS of its daemons, shims and containers, and its images' disk.

`python hack/realnode.py usage` prints it as JSON (as root, on a machine where the node runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import realnode


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:  # the field after the parenthesised command name (which may hold spaces)
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d.name))
    return kids


def _tree_rss_mb(pid: int, kids: dict[int, list[int]]) -> float:
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += _rss_mb(p)
        except OSError:  # gone meanwhile
            continue
        todo.extend(kids.get(p, []))
    return total


def containers_rss() -> dict[str, float]:
    """RSS (MB) of each running container, as "<namespace>/<pod>/<container>": its process
    and all it started; the pods' pause containers are left out."""
    kids = _children()
    out: dict[str, float] = {}
    for line in realnode.ctr("tasks", "ls", check=False).splitlines()[1:]:
        cols = line.split()
        if len(cols) < 3 or cols[2] != "RUNNING":
            continue
        try:
            info = json.loads(realnode.ctr("containers", "info", cols[0]))
        except (RuntimeError, ValueError):
            continue
        labels = info.get("Labels") or {}
        container = labels.get("io.kubernetes.container.name")
        if not container:  # a sandbox (pause)
            continue
        key = "/".join(
            (
                labels.get("io.kubernetes.pod.namespace", "?"),
                labels.get("io.kubernetes.pod.name", "?"),
                container,
            )
        )
        out[key] = round(_tree_rss_mb(int(cols[1]), kids), 1)
    return dict(sorted(out.items()))


def usage() -> dict[str, Any]:
    """RSS of the node's daemons, shims and containers, and the disk its images take (MB)."""
    o = realnode._owner() or {}
    daemons = {
        n: round(_rss_mb(int(p)), 1)
        for n, p in o.get("pids", {}).items()
        if realnode._alive(int(p), n)
    }
    shims = [_rss_mb(p) for p in realnode._shims()]
    du = realnode.sh("du", "-sm", str(realnode.CONTAINERD_ROOT), check=False).split()
    return {
        "daemons_rss_mb": daemons,
        "shims": len(shims),
        "shims_rss_mb": round(sum(shims), 1),
        "containers_rss_mb": containers_rss() if realnode._running("containerd") else {},
        "containerd_root_disk_mb": int(du[0]) if du else None,
        "images": realnode.ctr("images", "ls", check=False).splitlines()[1:]
        if realnode._running("containerd")
        else [],
    }
