#!/usr/bin/env python3
"""A local Kubernetes control plane of real upstream binaries, with kwok for the nodes.

    python hack/localcluster.py up|down|status|env

`up` is idempotent: it starts what is not running and leaves the rest. Everything lives in
`.cluster/` (git-ignored): certificates, etcd data, logs, pids and `kubeconfig`. The binaries
come from hack/build-binaries.sh (cached outside the repository).

Why a small harness of our own rather than kwokctl's `binary` runtime: kwokctl wants to
download release binaries (or be pointed at each one), manages its own cluster directory
under ~/.kwok and pulls in more moving parts than this needs; five processes with explicit
flags are easier to read and to debug. The flag sets follow controller-runtime's envtest
and kwokctl's components.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realnode

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("MLOPS_CLUSTER_DIR", ROOT / ".cluster"))
PKI = STATE / "pki"
LOGS = STATE / "logs"
NODES_FILE = ROOT / "hack" / "cluster" / "nodes.yaml"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


def bin_dir() -> Path:
    out = (
        subprocess.run(
            ["bash", str(ROOT / "hack" / "build-binaries.sh")],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        .stdout.strip()
        .splitlines()
    )
    return Path(out[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ports() -> dict[str, int]:
    f = STATE / "ports.json"
    if f.exists():
        return dict(json.loads(f.read_text()))
    p = {
        name: free_port() for name in ("etcd", "etcd_peer", "apiserver", "kcm", "scheduler", "kwok")
    }
    f.write_text(json.dumps(p))
    return p


# ---------------------------------------------------------------- certificates


def _pki() -> None:
    """CA, serving and client certificates and the service-account key pair.

    Each file is made when it is missing, so an existing .cluster/ gets the certificates that
    a newer harness needs (the real node's) without a reset; the API server's serving
    certificate is made again when it lacks an address it must now be reached on.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    PKI.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def write_key(name: str, key: Any) -> None:
        (PKI / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def name_of(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    ca_name = name_of("mlops-local-ca")
    if not (PKI / "ca.crt").exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        (PKI / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        write_key("ca", ca_key)
    loaded = serialization.load_pem_private_key((PKI / "ca.key").read_bytes(), None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey), "the harness CA key is EC P-256"
    ca_key = loaded
    ca_name = x509.load_pem_x509_certificate((PKI / "ca.crt").read_bytes()).subject

    def issue(
        name: str, cn: str, org: str | None = None, sans: list[x509.GeneralName] | None = None
    ) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(name_of(cn, org))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=3650))
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        else:
            usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
        b = b.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        write_key(name, key)
        (PKI / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def ip(a: str) -> x509.GeneralName:
        return x509.IPAddress(ipaddress.ip_address(a))

    api_sans = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("kubernetes.default.svc.cluster.local"),
        ip("127.0.0.1"),
        ip("10.96.0.1"),
        ip(realnode.BRIDGE_IP),  # in-cluster clients reach it on the bridge
    ]
    want: dict[str, tuple[str, str | None, list[x509.GeneralName] | None]] = {
        "apiserver": ("kube-apiserver", None, api_sans),
        "admin": ("mlops-admin", "system:masters", None),
        "controller-manager": ("system:kube-controller-manager", None, None),
        "scheduler": ("system:kube-scheduler", None, None),
        # kwok writes node and pod status for every simulated node: it plays the node fleet,
        # which only a cluster administrator may do on all nodes at once.
        "kwok": ("kwok-controller", "system:masters", None),
        # the real node: its kubelet (a node identity, so NodeRestriction applies), the
        # kubelet's serving certificate, kube-proxy, and the API server's client identity
        # towards kubelets (authorized by the kubelet's webhook through RBAC)
        "kubelet": (f"system:node:{realnode.NODE_NAME}", "system:nodes", None),
        "kubelet-serving": (
            realnode.NODE_NAME,
            None,
            [x509.DNSName(realnode.NODE_NAME), ip(realnode.BRIDGE_IP)],
        ),
        "kube-proxy": ("system:kube-proxy", None, None),
        "apiserver-kubelet-client": (KUBELET_CLIENT_USER, None, None),
        # the operator's MLflow webhook receiver, as the tests, the benchmark and the demo run
        # it on this machine (MLflow delivers to https://127.0.0.1:<port>)
        "webhook": (
            "mlops-operator-webhook",
            None,
            [x509.DNSName("localhost"), ip("127.0.0.1"), ip(realnode.BRIDGE_IP)],
        ),
    }
    for name, (cn, org, sans) in want.items():
        crt = PKI / f"{name}.crt"
        if crt.exists() and sans:
            have = x509.load_pem_x509_certificate(crt.read_bytes())
            ext = have.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            if all(s in list(ext) for s in sans):
                continue
        elif crt.exists():
            continue
        issue(name, cn, org, sans)
    if not (PKI / "sa.key").exists():
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_key("sa", sa)
        (PKI / "sa.pub").write_bytes(
            sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def kubeconfig(user: str, port: int) -> Path:
    path = STATE / ("kubeconfig" if user == "admin" else f"{user}.kubeconfig")
    return realnode.write_kubeconfig(path, f"https://127.0.0.1:{port}", PKI, user)


# ---------------------------------------------------------------- processes


def pid_file(name: str) -> Path:
    return STATE / f"{name}.pid"


def running(name: str) -> int | None:
    f = pid_file(name)
    if not f.exists():
        return None
    pid = int(f.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    try:  # a recycled pid is not ours
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return None
    return pid if os.path.basename(cmd.decode()) == name else None


# processes started by this invocation: right after fork, /proc/<pid>/cmdline still shows
# this Python until the exec, so `running()` would call a healthy child dead
STARTED: dict[str, subprocess.Popen[bytes]] = {}


def alive(name: str) -> bool:
    p = STARTED.get(name)
    return p.poll() is None if p is not None else running(name) is not None


def start(name: str, binary: Path, args: list[str]) -> None:
    """Start a component unless it runs with these very arguments (else restart it)."""
    argv_file = STATE / f"{name}.args"
    argv = json.dumps([str(binary), *args])
    pid = running(name)
    if pid and argv_file.exists() and argv_file.read_text() == argv:
        return
    if pid:  # e.g. the API server gains the bridge address when the real node comes
        log(f"restarting {name}: its flags changed")
        stop(name)
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{name}.log", "ab") as out:
        p = subprocess.Popen(
            [str(binary), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file(name).write_text(str(p.pid))
    argv_file.write_text(argv)
    STARTED[name] = p
    log(f"started {name} (pid {p.pid}, log {LOGS / f'{name}.log'})")


def wait_http(
    url: str,
    what: str,
    timeout: float = 90,
    ctx: ssl.SSLContext | None = None,
    name: str | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if name and not alive(name):
            tail = (LOGS / f"{name}.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"{name} exited while starting; its log ends:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=3, context=ctx) as r:
                if r.status == 200:
                    return
        except Exception as e:
            last = str(e)
        time.sleep(0.3)
    raise SystemExit(f"{what} did not become healthy at {url} in {timeout}s: {last}")


def client_ctx() -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    ctx.load_cert_chain(str(PKI / "admin.crt"), str(PKI / "admin.key"))
    return ctx


def up() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    bins = bin_dir()
    _pki()
    p = ports()
    t0 = time.monotonic()
    node = _claim_node(bins)

    start(
        "etcd",
        bins / "etcd",
        [
            "--name=default",
            f"--data-dir={STATE / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{p['etcd']}",
            f"--advertise-client-urls=http://127.0.0.1:{p['etcd']}",
            f"--listen-peer-urls=http://127.0.0.1:{p['etcd_peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p['etcd_peer']}",
            f"--initial-cluster=default=http://127.0.0.1:{p['etcd_peer']}",
            # a throwaway test cluster: durability is not worth an fsync per write
            "--unsafe-no-fsync",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ],
    )
    wait_http(f"http://127.0.0.1:{p['etcd']}/health", "etcd", name="etcd")

    api = f"https://127.0.0.1:{p['apiserver']}"
    start(
        "kube-apiserver",
        bins / "kube-apiserver",
        [
            f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
            *_api_addresses(node),
            f"--secure-port={p['apiserver']}",
            f"--tls-cert-file={PKI / 'apiserver.crt'}",
            f"--tls-private-key-file={PKI / 'apiserver.key'}",
            f"--client-ca-file={PKI / 'ca.crt'}",
            f"--cert-dir={PKI}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # TokenRequest needs an issuer and a signing key; the keys are ours.
            f"--service-account-issuer={api}",
            f"--service-account-key-file={PKI / 'sa.pub'}",
            f"--service-account-signing-key-file={PKI / 'sa.key'}",
            "--enable-admission-plugins=NodeRestriction,PodSecurity",
            "--profiling=false",
            "--v=1",
        ],
    )
    wait_http(
        f"{api}/readyz", "kube-apiserver", timeout=120, ctx=client_ctx(), name="kube-apiserver"
    )
    admin = kubeconfig("admin", p["apiserver"])

    kcm = kubeconfig("controller-manager", p["apiserver"])
    start(
        "kube-controller-manager",
        bins / "kube-controller-manager",
        [
            f"--kubeconfig={kcm}",
            f"--authentication-kubeconfig={kcm}",
            f"--authorization-kubeconfig={kcm}",
            "--bind-address=127.0.0.1",
            f"--secure-port={p['kcm']}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={PKI / 'sa.key'}",
            f"--root-ca-file={PKI / 'ca.crt'}",
            f"--cluster-signing-cert-file={PKI / 'ca.crt'}",
            f"--cluster-signing-key-file={PKI / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cluster-cidr={POD_CIDR}",
            "--allocate-node-cidrs=false",
            # controllers that need a cloud or real kubelets stay off
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,"
            "-persistentvolume-attach-detach-controller,-node-route-controller",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--concurrent-gc-syncs=20",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        ],
    )
    sch = kubeconfig("scheduler", p["apiserver"])
    start(
        "kube-scheduler",
        bins / "kube-scheduler",
        [
            f"--kubeconfig={sch}",
            f"--authentication-kubeconfig={sch}",
            f"--authorization-kubeconfig={sch}",
            "--bind-address=127.0.0.1",
            f"--secure-port={p['scheduler']}",
            "--leader-elect=false",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        ],
    )
    kw = kubeconfig("kwok", p["apiserver"])
    start(
        "kwok",
        bins / "kwok",
        [
            f"--kubeconfig={kw}",
            f"--config={bins / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{p['kwok']}",
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.244.0.1",
        ],
    )
    wait_http(
        f"https://127.0.0.1:{p['kcm']}/healthz",
        "kube-controller-manager",
        ctx=_insecure(),
        name="kube-controller-manager",
    )
    wait_http(
        f"https://127.0.0.1:{p['scheduler']}/healthz",
        "kube-scheduler",
        ctx=_insecure(),
        name="kube-scheduler",
    )
    wait_http(f"http://127.0.0.1:{p['kwok']}/healthz", "kwok", name="kwok")

    kubectl = bins / "kubectl"
    subprocess.run(
        [
            str(kubectl),
            f"--kubeconfig={admin}",
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=mlops-localcluster",
            "-f",
            str(NODES_FILE),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    if isinstance(node, realnode.Claim):
        _start_node(bins, kubectl, admin, p["apiserver"])
    else:
        _forget_real_node(kubectl, admin)
    wait_nodes_ready(kubectl, admin)
    log(f"ready in {time.monotonic() - t0:.1f}s")
    nodes = (
        f"kwok nodes and the real node {realnode.NODE_NAME}"
        if isinstance(node, realnode.Claim)
        else "nodes simulated by kwok"
    )
    print(
        f"""
The local cluster is up (Kubernetes {version(api)}, {nodes}).
  export KUBECONFIG={admin}
  export PATH={bins}:$PATH      # kubectl, helm of the pinned versions
  kubectl get nodes -L nvidia.com/gpu.product
Stop it with: make cluster-down
""".rstrip()
    )


def _claim_node(bins: Path) -> realnode.Claim | str:
    """The real node for this cluster, or the one-line reason it runs kwok nodes only."""
    why = realnode.why_not(bins)
    got: realnode.Claim | str = why if why else realnode.claim(STATE)
    if isinstance(got, str):
        log(f"no real node: {got}; this cluster runs kwok nodes only")
    # read by the tests (tests/support/realnode.py) and the demo: is there one, and if not, why
    (STATE / "node.json").write_text(
        json.dumps(
            {"real": not isinstance(got, str), "reason": got if isinstance(got, str) else ""}
        )
    )
    return got


def _api_addresses(node: realnode.Claim | str) -> list[str]:
    if isinstance(node, realnode.Claim):
        # Pods reach the API server on the bridge (the `kubernetes` Service's endpoint), the
        # host on loopback. The bridge comes and goes with the node, so listen on any address
        # rather than on the bridge's alone; nothing outside the machine is routed to it.
        return [
            "--bind-address=0.0.0.0",
            f"--advertise-address={realnode.BRIDGE_IP}",
            # logs, exec, port-forward: reach kubelets by their IP (the machine's DNS knows no
            # node names) with an identity the kubelet's webhook authorizes, and check theirs
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={PKI / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={PKI / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={PKI / 'ca.crt'}",
        ]
    # v1.34 takes the bind address as advertise address, and the endpoint reconciler would
    # write loopback into the `kubernetes` Endpoints, which validation refuses; without a real
    # node nothing in-cluster needs that object.
    return ["--bind-address=127.0.0.1", "--endpoint-reconciler-type=none"]


NODE_RBAC = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: mlops-local:kube-apiserver-kubelet-client
subjects:
- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: {KUBELET_CLIENT_USER}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}}
"""


def _start_node(bins: Path, kubectl: Path, admin: Path, api_port: int) -> None:
    # logs, exec and port-forward: the kubelet's webhook authorizes the API server's identity
    subprocess.run(
        [
            str(kubectl),
            f"--kubeconfig={admin}",
            "apply",
            "--server-side",
            "--field-manager=mlops-localcluster",
            "-f",
            "-",
        ],
        input=NODE_RBAC.encode(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    realnode.remember_bins(bins)
    realnode.start(bins, PKI, f"https://127.0.0.1:{api_port}", LOGS)
    realnode.wait_healthz(LOGS)


def _forget_real_node(kubectl: Path, admin: Path) -> None:
    # a Node object left from when this cluster had the node would never turn Ready
    subprocess.run(
        [
            str(kubectl),
            f"--kubeconfig={admin}",
            "delete",
            "node",
            realnode.NODE_NAME,
            "--ignore-not-found",
            "--wait=false",
        ],
        check=False,
        capture_output=True,
    )


def _insecure() -> ssl.SSLContext:
    # kcm and the scheduler serve /healthz with a self-signed cert; liveness only.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def version(api: str) -> str:
    with urllib.request.urlopen(f"{api}/version", context=client_ctx(), timeout=5) as r:
        return str(json.load(r)["gitVersion"])


def wait_nodes_ready(kubectl: Path, kubeconfig_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            [str(kubectl), f"--kubeconfig={kubeconfig_path}", "get", "nodes", "-o", "json"],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        items = json.loads(out)["items"]
        ready = [
            n
            for n in items
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        if items and len(ready) == len(items):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"nodes not Ready after {timeout}s: {len(ready)}/{len(items)} ready")
        time.sleep(0.5)


def stop(name: str) -> None:
    pid = running(name)
    if pid:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            if not running(name):
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
        log(f"stopped {name} (pid {pid})")
    pid_file(name).unlink(missing_ok=True)


def node_down() -> None:
    """Stop this cluster's real node (if it has it) and restore the host."""
    admin = STATE / "kubeconfig"
    kubectl = bin_dir() / "kubectl"

    def drain() -> None:
        if not running("kube-apiserver"):
            return
        k = [str(kubectl), f"--kubeconfig={admin}", "--request-timeout=10s"]
        node = realnode.NODE_NAME
        subprocess.run([*k, "cordon", node], check=False, capture_output=True)
        # the kubelet stops the pods' containers and releases their network (CNI DEL)
        subprocess.run(
            [
                *k,
                "delete",
                "pods",
                "-A",
                f"--field-selector=spec.nodeName={node}",
                "--grace-period=1",
                "--wait=false",
            ],
            check=False,
            capture_output=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = subprocess.run(
                [*k, "get", "pods", "-A", f"--field-selector=spec.nodeName={node}", "-o", "name"],
                check=False,
                capture_output=True,
                text=True,
            ).stdout
            if not out.strip():
                break
            time.sleep(0.5)

    def forget_node() -> None:
        k = [str(kubectl), f"--kubeconfig={admin}", "--request-timeout=10s"]
        subprocess.run(
            [*k, "delete", "node", realnode.NODE_NAME, "--ignore-not-found"],
            check=False,
            capture_output=True,
        )

    if realnode.release(STATE, drain) and running("kube-apiserver"):
        forget_node()


def down() -> None:
    node_down()
    for name in reversed(COMPONENTS):
        stop(name)


def status() -> int:
    ok = True
    for name in COMPONENTS:
        pid = running(name)
        ok &= pid is not None
        print(f"{name:<24} {'running, pid ' + str(pid) if pid else 'stopped'}")
    owner = realnode.owner_of_node()
    mine = owner == str(STATE)
    print(f"{'real node':<24} {'ours' if mine else 'held by ' + owner if owner else 'none'}")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("command", choices=["up", "down", "node-down", "reset", "status"])
    a = ap.parse_args()
    STATE.mkdir(parents=True, exist_ok=True)
    # one `up`/`down` at a time: test sessions and the demo may call it concurrently
    lock = open(STATE / ".lock", "w")  # noqa: SIM115 - held until the process exits
    fcntl.flock(lock, fcntl.LOCK_EX)
    if a.command == "up":
        up()
    elif a.command == "down":
        down()
    elif a.command == "node-down":
        node_down()
    elif a.command == "reset":  # down and forget all state (etcd data, certs, ports)
        down()
        import shutil

        shutil.rmtree(STATE, ignore_errors=True)
    else:
        return status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
