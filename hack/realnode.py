#!/usr/bin/env python3
"""One real kubelet node beside the kwok nodes: containerd, runc, the CNI bridge, kube-proxy.

Used by hack/localcluster.py (`up` claims and starts it, `down` stops it and restores the host);
`python hack/realnode.py host-state` prints what this module changes on the host, as JSON, so a
test can check that `down` left the machine as it was. See ../shared/REAL-NODE.md for the facts
this rests on (measured on these machines).

The node is host-global: kubelet, kube-proxy, containerd, the bridge, iptables chains and
sysctls belong to the machine, not to one cluster directory. So there is one node per machine,
held under a host-wide lock:

- `HOST_DIR/owner.lock` is flock'ed by a keeper process (`sleep infinity` holding the open file)
  for as long as the node lives; `HOST_DIR/owner.json` names the cluster directory that owns it
  and the pids of its daemons. A second cluster finds the lock held and runs kwok-only.
- A node whose keeper is gone (its processes were killed, as when CI starts right after a
  session's processes were ended) is stale: the next claim stops what is left of it, restores
  the host from the snapshot that its claim recorded, and takes over.
- Every change to the host is recorded before it is made (`HOST_DIR/before.json`: the sysctls
  kubelet, kube-proxy and the CNI plugin rewrite, the whole nftables ruleset, links, netns and
  the directories they create) and undone by `release`.

Network rule: nothing here sends traffic off the machine. Pods get addresses on a bridge of our
own; a FORWARD rule drops pod traffic to anything outside the bridge's range (kube-proxy's chains
sit above it and accept only service/established traffic); the Service range and kwok's pod range
are routed to the bridge, so a packet for an address no process answers dies here instead of
following the default route out.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NODE_NAME = "real-cpu-1"
BRIDGE = "mlops0"
BRIDGE_IP = "10.88.0.1"
BRIDGE_CIDR = "10.88.0.0/16"
# ranges that must never leave the machine from the host (see the module docstring)
LOCAL_ROUTES = ["10.96.0.0/16", "10.244.0.0/16"]
NODE_LABEL = "mlops.dev/node-kind=real"
NODE_TAINT = {"key": "mlops.dev/real-node", "value": "true", "effect": "NoSchedule"}
# what a pod spec adds to run here: the node's label, and a toleration of its taint
POD_SCHEDULING = {
    "nodeSelector": dict([NODE_LABEL.split("=", 1)]),
    "tolerations": [{"key": NODE_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}],
}
PAUSE_IMAGE = "localhost/mlops/pause:1"
CNI_BIN = Path("/usr/lib/cni")
HOST_DIR = Path(os.environ.get("MLOPS_NODE_HOST_DIR", "/run/mlops-operator-node"))
CACHE = Path(os.environ.get("MLOPS_CACHE_DIR", Path.home() / ".cache" / "mlops-operator"))
# images persist across node restarts (an import costs tens of seconds): a cache, not host state
CONTAINERD_ROOT = CACHE / "node" / "containerd"
SOCKET = HOST_DIR / "containerd" / "containerd.sock"
DAEMONS = ["containerd", "kubelet", "kube-proxy"]
# what kubelet, kube-proxy and the CNI bridge plugin write (REAL-NODE.md, pitfall 5)
SYSCTLS = [
    "kernel/panic",
    "kernel/panic_on_oops",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "net/ipv6/conf/all/forwarding",
]
# directories the daemons create outside HOST_DIR even when told where to work
CREATED_DIRS = [Path("/var/log/containers"), Path("/var/lib/cni"), Path("/run/netns")]
PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "nft": "nftables",
    "conntrack": "conntrack",
}


def log(msg: str) -> None:
    print(f"[node] {msg}", file=sys.stderr, flush=True)


def sh(*args: str, check: bool = True, quiet: bool = False) -> str:
    r = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    if not quiet and r.returncode != 0:
        log(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


# ---------------------------------------------------------------- can this machine run it?


def why_not(bins: Path) -> str | None:
    """None when this machine can run the node, else the reason in a few words."""
    if os.geteuid() != 0:
        return "not root (kubelet, containerd and the bridge need root)"
    if os.environ.get("MLOPS_REAL_NODE", "1") in ("0", "false", "no"):
        return "MLOPS_REAL_NODE=0"
    missing = [pkg for cmd, pkg in PACKAGES.items() if not shutil.which(cmd)]
    if not (CNI_BIN / "bridge").exists():
        missing.append("containernetworking-plugins")
    if missing:
        return f"missing Debian packages: {' '.join(missing)} (make setup installs them as root)"
    for b in ("kubelet", "kube-proxy"):
        if not (bins / b).exists():
            return f"no {b} in {bins} (hack/build-binaries.sh builds it)"
    if not Path("/proc/sys/net/bridge").exists():
        return "the kernel has no bridge netfilter (br_netfilter)"
    if (
        not Path("/sys/fs/cgroup/memory").exists()
        and not Path("/sys/fs/cgroup/cgroup.controllers").exists()
    ):
        return "no cgroup hierarchy for the kubelet"
    return None


# ---------------------------------------------------------------- host state


def _sysctl(key: str) -> str | None:
    try:
        return (Path("/proc/sys") / key).read_text().strip()
    except OSError:
        return None


def _mounts() -> list[str]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        out.append(line.split()[4])
    return out


def _links() -> list[str]:
    return sorted(
        line.split(":")[1].strip().split("@")[0] for line in sh("ip", "-o", "link").splitlines()
    )


# the netfilter tables that iptables-nft (kube-proxy, kubelet, our FORWARD rules) writes, and
# kube-proxy's nftables-mode tables (it probes and cleans them up); others are not ours
NFT_TABLES = [
    f"{family} {name}"
    for family in ("ip", "ip6")
    for name in ("filter", "nat", "mangle", "raw", "security", "kube-proxy")
]


def _nft_table(table: str) -> str:
    """The table's rules as `nft -f` reads them, or "" when it does not exist."""
    r = subprocess.run(["nft", "list", "table", *table.split()], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def _nft_load(text: str) -> None:
    if not text.strip():
        return
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(text)
    try:
        sh("nft", "-f", f.name)
    finally:
        os.unlink(f.name)


def host_state() -> dict[str, Any]:
    """Everything about the host that starting the node changes (compared by tests)."""
    cgroups = sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods*") if p.is_dir())
    has_nft = shutil.which("nft") is not None
    return {
        "sysctls": {k: _sysctl(k) for k in SYSCTLS},
        "nft": sh("nft", "list", "ruleset") if has_nft else "",
        "nft_tables": {t: _nft_table(t) for t in NFT_TABLES} if has_nft else {},
        "links": _links(),
        "routes": sorted(sh("ip", "route").splitlines()),
        "mounts": sorted(_mounts()),
        "dirs": {str(d): d.exists() for d in CREATED_DIRS},
        "netns": sorted(os.listdir("/run/netns")) if Path("/run/netns").is_dir() else [],
        "cgroups": cgroups,
    }


def _restore(before: dict[str, Any]) -> None:
    """Undo what the node changed, given the snapshot taken before it started."""
    # mounts first: the pods' (secrets, shm, overlay rootfs), kubelet's root-dir bind, netns
    ours = (str(HOST_DIR), str(CONTAINERD_ROOT), "/run/netns/")
    keep = set(before["mounts"])
    for mp in sorted(set(_mounts()) - keep, key=len, reverse=True):
        if mp.startswith(ours) or any(mp.startswith(o.rstrip("/") + "/") for o in ours):
            sh("umount", mp, check=False, quiet=True)
            if mp in _mounts():
                sh("umount", "-l", mp, check=False)
    # only what the node makes: containerd's cni-* network namespaces, our bridge, the pods'
    # veths (gone with their namespace, but a killed node may leave one)
    for ns in set(os.listdir("/run/netns") if Path("/run/netns").is_dir() else []) - set(
        before["netns"]
    ):
        if ns.startswith("cni-"):
            with contextlib.suppress(OSError):
                (Path("/run/netns") / ns).unlink()
    for link in sorted(set(_links()) - set(before["links"])):
        if link == BRIDGE or link.startswith("veth"):
            sh("ip", "link", "del", link, check=False, quiet=True)
    # the iptables tables kube-proxy, kubelet and our rules live in, each as it was
    if shutil.which("nft") and "nft_tables" not in before:  # a record older than the tables
        if sh("nft", "list", "ruleset") != before["nft"]:
            sh("nft", "flush", "ruleset")
            _nft_load(before["nft"])
    elif shutil.which("nft"):
        for table, text in before["nft_tables"].items():
            if _nft_table(table) == text:
                continue
            sh("nft", "delete", "table", *table.split(), check=False, quiet=True)
            _nft_load(text)
    for key, value in before["sysctls"].items():
        if value is not None and _sysctl(key) != value:
            with contextlib.suppress(OSError):
                (Path("/proc/sys") / key).write_text(value)
    for cg in sorted(set(host_state()["cgroups"]) - set(before["cgroups"])):
        for d in sorted(Path(cg).rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if d.is_dir():
                with contextlib.suppress(OSError):
                    d.rmdir()
        with contextlib.suppress(OSError):
            Path(cg).rmdir()
    for d, existed in before["dirs"].items():
        if not existed and Path(d).exists():
            shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- the lock and its owner


@dataclass
class Claim:
    fresh: bool  # this call set the host up (False: the node was already ours)


@contextlib.contextmanager
def _transition() -> Iterator[None]:
    HOST_DIR.mkdir(parents=True, exist_ok=True)
    with open(HOST_DIR / "transition.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _owner() -> dict[str, Any] | None:
    try:
        return dict(json.loads((HOST_DIR / "owner.json").read_text()))
    except (OSError, ValueError):
        return None


def _write_owner(doc: dict[str, Any]) -> None:
    tmp = HOST_DIR / "owner.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(HOST_DIR / "owner.json")


def _lock_is_held() -> bool:
    with open(HOST_DIR / "owner.lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def owner_of_node() -> str | None:
    """The cluster directory whose node this machine runs, or None."""
    if not HOST_DIR.exists() or not _lock_is_held():
        return None
    o = _owner()
    return str(o["state_dir"]) if o else None


def node_of_cluster(state_dir: Path) -> tuple[bool, str]:
    """Whether the cluster in state_dir runs the real node now, else the reason its last
    `localcluster.py up` gave (written to state_dir/node.json)."""
    try:
        doc = json.loads((state_dir / "node.json").read_text())
    except (OSError, ValueError):
        return False, "the local cluster has not said whether it has a real node"
    real = bool(doc.get("real")) and owner_of_node() == str(state_dir)
    return real, "" if real else str(doc.get("reason") or "the node is not running")


def claim(state_dir: Path) -> Claim | str:
    """Take the machine's node for the cluster in state_dir, or say in one line why not."""
    with _transition():
        owner = _owner()
        if _lock_is_held():
            if owner and Path(owner["state_dir"]) == state_dir:
                return Claim(fresh=False)
            who = owner["state_dir"] if owner else "another process"
            return f"the real node on this machine belongs to the cluster in {who}"
        if owner:  # left behind by processes that were killed
            log(f"taking over a node left behind by {owner['state_dir']} (its keeper is gone)")
            _stop_leftovers(owner)
        before = host_state()
        (HOST_DIR / "before.json").write_text(json.dumps(before, indent=2))
        keeper = _start_keeper()
        _write_owner(
            {
                "state_dir": str(state_dir),
                "keeper": keeper,
                "pids": {},
                "started": {str(keeper): _start_time(keeper)},
                "since": time.time(),
            }
        )
        _network_up()
        return Claim(fresh=True)


def _start_keeper() -> int:
    # the keeper holds the same open file description as our flock: the lock lives as long
    # as it does, whoever started it and whether or not that process is still there
    f = open(HOST_DIR / "owner.lock", "a")  # noqa: SIM115 - handed to the keeper
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    p = subprocess.Popen(
        ["sleep", "infinity"],
        pass_fds=(f.fileno(),),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    f.close()  # the keeper's copy holds the lock now
    return p.pid


def _start_time(pid: int) -> str | None:
    """When the process started (clock ticks since boot): with the pid, who it is."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, name: str) -> bool:
    """Whether pid is the process named `name` that we recorded (a recycled pid is not)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False
    if os.path.basename(cmd.decode(errors="replace")) != name:
        return False
    recorded = ((_owner() or {}).get("started") or {}).get(str(pid))
    return recorded is None or recorded == _start_time(pid)


def _kill(pid: int, name: str, grace: float = 10) -> None:
    if not _alive(pid, name):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid, name) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid, name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    while _alive(pid, name):  # a zombie of ours vanishes once reaped by init
        time.sleep(0.05)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _shims() -> list[int]:
    """containerd-shim processes of OUR containerd (they name its socket on their command line)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and str(SOCKET).encode() in argv:
            out.append(int(d.name))
    return out


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _stop_leftovers(owner: dict[str, Any]) -> None:
    """Stop what a node left running (by the pids it recorded) and restore the host."""
    for name in reversed(DAEMONS):
        pid = owner.get("pids", {}).get(name)
        if pid:
            _kill(int(pid), name)
    _kill_containers()
    keeper = owner.get("keeper")
    if keeper:
        _kill(int(keeper), "sleep")
    before = HOST_DIR / "before.json"
    if before.exists():
        _restore(json.loads(before.read_text()))
    _clean_host_dir()


def _kill_containers() -> None:
    # without containerd, the containers' processes are the shims' children (shims reap them)
    for shim in _shims():
        for kid in _children(shim):
            with contextlib.suppress(ProcessLookupError):
                os.kill(kid, signal.SIGKILL)
    for shim in _shims():
        deadline = time.monotonic() + 5
        while _children(shim) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(shim, signal.SIGKILL)


def _clean_host_dir() -> None:
    for p in HOST_DIR.iterdir() if HOST_DIR.exists() else []:
        if p.name in ("transition.lock", "owner.lock"):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


# ---------------------------------------------------------------- network


def _network_up() -> None:
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{BRIDGE_IP}/16", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for r in LOCAL_ROUTES:
        sh("ip", "route", "add", r, "dev", BRIDGE)
    # Service traffic between pods on one bridge must pass through iptables (kube-proxy)
    Path("/proc/sys/net/bridge/bridge-nf-call-iptables").write_text("1")
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
    # pods may reach the host, Service IPs and each other: nothing else (appended, so
    # kube-proxy's own FORWARD chains, inserted above it, still accept service traffic)
    sh("iptables", "-w", "-A", "FORWARD", "-s", BRIDGE_CIDR, "!", "-d", BRIDGE_CIDR, "-j", "DROP")
    sh(
        "iptables",
        "-w",
        "-A",
        "FORWARD",
        "-d",
        BRIDGE_CIDR,
        "!",
        "-s",
        BRIDGE_CIDR,
        "!",
        "-i",
        BRIDGE,
        "-j",
        "DROP",
    )
    for r in LOCAL_ROUTES:
        dev = sh("ip", "route", "get", r.split("/")[0])
        if f"dev {BRIDGE}" not in dev:
            raise RuntimeError(f"{r} would leave the machine: {dev.strip()}")


# ---------------------------------------------------------------- the pause image


PAUSE_C = r"""
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
/* the pod sandbox's process: holds the namespaces, reaps zombies, exits on TERM/INT */
static void quit(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    struct sigaction q = {0}, r = {0};
    q.sa_handler = quit; r.sa_handler = reap; r.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGINT, &q, 0); sigaction(SIGTERM, &q, 0); sigaction(SIGCHLD, &r, 0);
    for (;;) pause();
}
"""


def _blob(root: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    d = root / "blobs" / "sha256"
    d.mkdir(parents=True, exist_ok=True)
    (d / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def pause_archive() -> Path:
    """An OCI archive of a FROM-scratch pause image, made here (no registry is reachable)."""
    key = hashlib.sha256(PAUSE_C.encode()).hexdigest()[:12]
    out = CACHE / "images" / f"pause-{key}.oci.tar"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "pause.c").write_text(PAUSE_C)
        sh("gcc", "-static", "-Os", "-s", "-o", str(t / "pause"), str(t / "pause.c"))
        layer = io.BytesIO()
        with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tf:
            info = tf.gettarinfo(str(t / "pause"), "pause")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with open(t / "pause", "rb") as fh:
                tf.addfile(info, fh)
        raw = layer.getvalue()
        gz = gzip.compress(raw, mtime=0)
        root = t / "oci"
        layer_desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(root, gz)}
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(raw).hexdigest()}"]},
        }
        cfg = {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **_blob(root, json.dumps(config).encode()),
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cfg,
            "layers": [layer_desc],
        }
        man = {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            **_blob(root, json.dumps(manifest).encode()),
            "annotations": {
                "io.containerd.image.name": PAUSE_IMAGE,
                "org.opencontainers.image.ref.name": PAUSE_IMAGE.rsplit(":", 1)[1],
            },
        }
        (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [man]}))
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        with tarfile.open(out.with_suffix(".tmp"), "w") as tf:
            for p in sorted(root.rglob("*")):
                tf.add(str(p), str(p.relative_to(root)), recursive=False)
        out.with_suffix(".tmp").replace(out)
    return out


def ctr(*args: str, check: bool = True) -> str:
    return sh("ctr", "--address", str(SOCKET), "--namespace", "k8s.io", *args, check=check)


def image_present(name: str) -> str | None:
    """The digest of image `name` in the node's containerd, or None."""
    for line in ctr("images", "ls").splitlines()[1:]:
        cols = line.split()
        if cols and cols[0] == name:
            return cols[2]
    return None


def import_image(archive: Path, name: str) -> None:
    ctr("images", "import", str(archive))
    if not image_present(name):
        raise RuntimeError(f"{archive} imported but {name} is not in containerd")


# ---------------------------------------------------------------- daemons


def _containerd_config() -> Path:
    d = HOST_DIR / "containerd"
    d.mkdir(parents=True, exist_ok=True)
    CONTAINERD_ROOT.mkdir(parents=True, exist_ok=True)
    cni_conf = HOST_DIR / "cni" / "net.d"
    cni_conf.mkdir(parents=True, exist_ok=True)
    (cni_conf / "10-mlops.conflist").write_text(
        json.dumps(
            {
                "cniVersion": "1.0.0",
                "name": "mlops",
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": BRIDGE,
                        "isGateway": True,
                        # no masquerade: pods never talk to anything beyond this machine
                        "ipMasq": False,
                        "hairpinMode": True,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": BRIDGE_CIDR, "gateway": BRIDGE_IP}]],
                            # no default route: pods reach the bridge, and Services through
                            # the gateway (kube-proxy), and nothing else is even routable
                            "routes": [{"dst": LOCAL_ROUTES[0]}],
                            "dataDir": str(HOST_DIR / "cni" / "ipam"),
                        },
                    }
                ],
            },
            indent=2,
        )
    )
    cfg = d / "config.toml"
    cfg.write_text(
        f"""version = 2
root = "{CONTAINERD_ROOT}"
state = "{d / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{SOCKET}"

[ttrpc]
  address = "{d / "ttrpc.sock"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # kubelet asks for oom_score_adj -998; without CAP_SYS_RESOURCE a negative value is refused
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni_conf}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
"""
    )
    return cfg


def _kubelet_config(pki: Path, api: str) -> tuple[Path, Path]:
    d = HOST_DIR / "kubelet-config"
    d.mkdir(parents=True, exist_ok=True)
    (d / "resolv.conf").write_text(
        f"# no cluster DNS: pods use ClusterIPs\nnameserver {BRIDGE_IP}\n"
    )
    kubeconfig = write_kubeconfig(d / "kubelet.kubeconfig", api, pki, "kubelet")
    cfg = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": BRIDGE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{SOCKET}",
        "failSwapOn": False,
        "registerWithTaints": [NODE_TAINT],
        "resolvConf": str(d / "resolv.conf"),
        "podLogsDir": str(HOST_DIR / "pod-logs"),
        # our images exist nowhere else: never collect them
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "maxPods": 40,
        "serializeImagePulls": False,
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
    }
    path = d / "kubelet.yaml"
    path.write_text(json.dumps(cfg, indent=2))
    return path, kubeconfig


def _proxy_config(pki: Path, api: str) -> Path:
    d = HOST_DIR / "kube-proxy"
    d.mkdir(parents=True, exist_ok=True)
    kubeconfig = write_kubeconfig(d / "kube-proxy.kubeconfig", api, pki, "kube-proxy")
    cfg = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": BRIDGE_CIDR,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # NodePorts only on the bridge, never on the machine's outward interface
        "nodePortAddresses": [f"{BRIDGE_IP}/32"],
        # leave the host's conntrack settings and route_localnet alone
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "iptables": {"localhostNodePorts": False, "syncPeriod": "10s", "minSyncPeriod": "0s"},
    }
    path = d / "kube-proxy.yaml"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def write_kubeconfig(
    path: Path, server: str, pki: Path, user: str, name: str = "mlops-local"
) -> Path:
    """A kubeconfig for `user` with its client certificate pki/<user>.crt (one for each
    component of the local cluster and of the node)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    }
    path.write_text(json.dumps(doc, indent=2))
    return path


# containerd on the host network would pull a missing image from the internet: every pull goes
# to a proxy on loopback that nothing serves instead, so it fails here (ErrImagePull) at once
NO_PULL = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


def _spawn(name: str, argv: list[str], logs: Path, env: dict[str, str] | None = None) -> int:
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as out:
        p = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={
                **os.environ,
                **(env or {}),
                "PATH": f"/usr/sbin:/usr/bin:/sbin:/bin:{os.environ.get('PATH', '')}",
            },
        )
    STARTED[p.pid] = p
    log(f"started {name} (pid {p.pid}, log {logs / f'{name}.log'})")
    return p.pid


def _record_pid(name: str, pid: int) -> None:
    o = _owner() or {}
    o.setdefault("pids", {})[name] = pid
    o.setdefault("started", {})[str(pid)] = _start_time(pid)
    _write_owner(o)


# daemons started by this process: right after fork, /proc/<pid>/cmdline still shows this
# Python until the exec, so `_alive` would call a healthy child dead
STARTED: dict[int, subprocess.Popen[bytes]] = {}


def _running(name: str) -> int | None:
    o = _owner() or {}
    pid = o.get("pids", {}).get(name)
    if not pid:
        return None
    p = STARTED.get(int(pid))
    if p is not None:
        return int(pid) if p.poll() is None else None
    return int(pid) if _alive(int(pid), name) else None


def _wait(what: str, ok: Any, timeout: float, name: str, logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(name):
            tail = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited while starting; its log ends:\n{tail}")
        with contextlib.suppress(Exception):
            if ok():
                return
        time.sleep(0.3)
    raise RuntimeError(f"{what} not ready after {timeout}s (log: {logs / f'{name}.log'})")


def start(bins: Path, pki: Path, api: str, logs: Path) -> None:
    """Start containerd, kubelet and kube-proxy (those not running) for the claimed node."""
    if not _running("containerd"):
        cfg = _containerd_config()
        _record_pid(
            "containerd", _spawn("containerd", ["containerd", "--config", str(cfg)], logs, NO_PULL)
        )
        _wait("containerd", lambda: ctr("version") != "", 60, "containerd", logs)
    if not image_present(PAUSE_IMAGE):
        import_image(pause_archive(), PAUSE_IMAGE)
    if not _running("kubelet"):
        cfg, kubeconfig = _kubelet_config(pki, api)
        _record_pid(
            "kubelet",
            _spawn(
                "kubelet",
                [
                    str(bins / "kubelet"),
                    f"--config={cfg}",
                    f"--kubeconfig={kubeconfig}",
                    f"--root-dir={HOST_DIR / 'kubelet'}",
                    f"--cert-dir={HOST_DIR / 'kubelet-pki'}",
                    f"--hostname-override={NODE_NAME}",
                    f"--node-ip={BRIDGE_IP}",
                    f"--node-labels={NODE_LABEL}",
                    "--v=1",
                ],
                logs,
            ),
        )
    if not _running("kube-proxy"):
        cfg = _proxy_config(pki, api)
        _record_pid(
            "kube-proxy",
            _spawn("kube-proxy", [str(bins / "kube-proxy"), f"--config={cfg}", "--v=1"], logs),
        )


def healthy() -> bool:
    return all(_running(n) for n in DAEMONS)


def wait_healthz(logs: Path, timeout: float = 90) -> None:
    import urllib.request

    def ok(url: str) -> bool:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)

    _wait("kubelet", lambda: ok("http://127.0.0.1:10248/healthz"), timeout, "kubelet", logs)
    _wait("kube-proxy", lambda: ok("http://127.0.0.1:10256/healthz"), timeout, "kube-proxy", logs)


def release(state_dir: Path, drain: Any = None) -> bool:
    """Stop the node if the cluster in state_dir owns it and restore the host. True if it did."""
    with _transition():
        owner = _owner()
        if not owner or Path(owner["state_dir"]) != state_dir or not _lock_is_held():
            return False
        if drain is not None:
            with contextlib.suppress(Exception):
                drain()
        for name in ("kubelet", "kube-proxy"):
            pid = owner.get("pids", {}).get(name)
            if pid:
                _kill(int(pid), name)
        if _running("containerd"):
            _stop_tasks()
        pid = owner.get("pids", {}).get("containerd")
        if pid:
            _kill(int(pid), "containerd")
        _kill_containers()
        # kube-proxy's own clean-up, then the rest from the snapshot
        bins = Path(owner.get("bins", ""))
        if (bins / "kube-proxy").exists():
            sh(str(bins / "kube-proxy"), "--cleanup", check=False, quiet=True)
        _restore(json.loads((HOST_DIR / "before.json").read_text()))
        _kill(int(owner["keeper"]), "sleep")
        _clean_host_dir()
        log("stopped the real node and restored the host")
        return True


def _stop_tasks() -> None:
    """Stop every container and sandbox through containerd (it unmounts their rootfs)."""
    for line in ctr("tasks", "ls", check=False).splitlines()[1:]:
        cols = line.split()
        if cols:
            ctr("tasks", "kill", "--signal", "SIGKILL", cols[0], check=False)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = [line.split() for line in ctr("tasks", "ls", check=False).splitlines()[1:]]
        if all(r[2] == "STOPPED" for r in rows if len(r) > 2):
            break
        time.sleep(0.2)
    for line in ctr("tasks", "ls", check=False).splitlines()[1:]:
        cols = line.split()
        if cols:
            ctr("tasks", "delete", "--force", cols[0], check=False)
    for line in ctr("containers", "ls", "-q", check=False).splitlines():
        if line.strip():
            ctr("containers", "delete", line.strip(), check=False)


def remember_bins(bins: Path) -> None:
    o = _owner() or {}
    o["bins"] = str(bins)
    _write_owner(o)


def main() -> int:
    if sys.argv[1:] == ["usage"]:
        import node_usage  # beside this file; it reads what this module records

        print(json.dumps(node_usage.usage(), indent=2))
        return 0
    if sys.argv[1:] == ["host-state"]:
        print(json.dumps(host_state(), indent=2, sort_keys=True))
        return 0
    if sys.argv[1:] == ["owner"]:
        print(owner_of_node() or "")
        return 0
    print("usage: realnode.py host-state|owner|usage", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
