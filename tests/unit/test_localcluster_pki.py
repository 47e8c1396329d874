"""An existing .cluster/ gets the certificates a newer harness needs, without a reset.

A cluster made before the real node existed has a CA, an API server certificate without the
bridge address and no node certificates; `_pki()` (hack/localcluster.py) must add what is
missing, re-issue only the API server's serving certificate, and keep the CA (every kubeconfig
and token the cluster handed out depends on it).
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest
from cryptography import x509

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))
import localcluster  # noqa: E402
from realnode import BRIDGE_IP  # noqa: E402


def sans(path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(v) for v in ext.get_values_for_type(x509.IPAddress)]


def test_an_old_pki_gains_the_node_certificates_and_keeps_its_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = tmp_path / "pki"
    monkeypatch.setattr(localcluster, "PKI", pki)
    localcluster._pki()
    ca = (pki / "ca.crt").read_bytes()
    admin = (pki / "admin.crt").read_bytes()

    # make it look like a cluster from before the node: no node certificates, and an API
    # server certificate that lacks the bridge address (issued again here by the same CA)
    for name in ("kubelet", "kubelet-serving", "kube-proxy", "apiserver-kubelet-client"):
        (pki / f"{name}.crt").unlink()
        (pki / f"{name}.key").unlink()
    old = x509.load_pem_x509_certificate((pki / "apiserver.crt").read_bytes())
    assert BRIDGE_IP in sans(pki / "apiserver.crt")
    from cryptography.hazmat.primitives import hashes, serialization

    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    key = serialization.load_pem_private_key((pki / "apiserver.key").read_bytes(), None)
    narrow = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.issuer)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(old.not_valid_before_utc)
        .not_valid_after(old.not_valid_after_utc)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    (pki / "apiserver.crt").write_bytes(narrow.public_bytes(serialization.Encoding.PEM))

    localcluster._pki()
    assert (pki / "ca.crt").read_bytes() == ca
    assert (pki / "admin.crt").read_bytes() == admin  # what was fine stays as it was
    assert {BRIDGE_IP, "10.96.0.1", "127.0.0.1"} <= set(sans(pki / "apiserver.crt"))
    for name in ("kubelet", "kubelet-serving", "kube-proxy", "apiserver-kubelet-client"):
        assert (pki / f"{name}.crt").exists() and (pki / f"{name}.key").exists()
    kubelet = x509.load_pem_x509_certificate((pki / "kubelet.crt").read_bytes())
    assert kubelet.subject.rfc4514_string() == "O=system:nodes,CN=system:node:real-cpu-1"
    assert BRIDGE_IP in sans(pki / "kubelet-serving.crt")
