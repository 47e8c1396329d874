"""The webhook receiver over real HTTPS on loopback (a certificate made here): what each
delivery is answered, what reaches the sink, and what the deliveries metric counts."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mlops_operator import metrics
from mlops_operator.webhooks.receiver import MAX_BODY_BYTES, PATH, Receiver, serve, tls_context
from mlops_operator.webhooks.verify import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AliasEvent,
    sign,
)
from tests.support.operator_metrics import free_port

pytestmark = pytest.mark.unit

SECRET = "the-webhook-secret"


def self_signed(tmp: Path) -> tuple[str, str]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receiver-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    crt, k = tmp / "tls.crt", tmp / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(crt), str(k)


def delivery(
    body: dict[str, Any], delivery_id: str, secret: str = SECRET
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    ts = str(int(time.time()))
    return raw, {
        "Content-Type": "application/json",
        DELIVERY_ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(secret, delivery_id, ts, raw),
    }


ALIAS = {
    "entity": "model_version_alias",
    "action": "created",
    "timestamp": "2026-12-04T05:00:00+00:00",
    "data": {"name": "fraud", "alias": "champion", "version": "3"},
}


def counts() -> dict[str, float]:
    m = metrics.METRICS.webhook_deliveries
    return {r: m.labels(r)._value.get() for r in metrics.WEBHOOK_RESULTS}


def test_deliveries_are_answered_and_counted(tmp_path: Path) -> None:
    crt, key = self_signed(tmp_path)
    got: list[AliasEvent] = []

    def sink(event: AliasEvent) -> int:
        got.append(event)
        return 2

    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        receiver = Receiver((SECRET,), tolerance_seconds=300)
        port = free_port()
        runner = await serve(receiver, port, tls_context(crt, key), host="127.0.0.1")
        url = f"https://127.0.0.1:{port}{PATH}"
        client_tls = ssl.create_default_context(cafile=crt)
        out = []
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_tls)) as s:

                async def post(raw: bytes, h: dict[str, str]) -> None:
                    async with s.post(url, data=raw, headers=h) as r:
                        out.append((r.status, await r.json()))

                raw, h = delivery(ALIAS, "d-1")
                await post(raw, h)  # a standby: no sink yet
                receiver.sink = sink
                await post(raw, h)  # MLflow's retry reaches the leader: accepted
                await post(raw, h)  # the same again: a replay
                await post(*delivery(ALIAS, "d-2", secret="guessed"))  # forged
                other = {**ALIAS, "entity": "model_version", "data": {"name": "fraud"}}
                await post(*delivery(other, "d-3"))  # genuine, not an alias event
                big = {**ALIAS, "pad": "x" * MAX_BODY_BYTES}
                await post(*delivery(big, "d-4"))  # too big to read
        finally:
            await runner.cleanup()
        return out

    before = counts()
    answers = asyncio.run(scenario())
    after = counts()
    assert [status for status, _ in answers] == [503, 200, 409, 401, 200, 400], answers
    assert [a["result"] for _, a in answers] == [
        "standby",
        "accepted",
        "replayed",
        "forged",
        "ignored",
        "malformed",
    ]
    assert answers[1][1]["woken"] == 2
    assert got == [AliasEvent("fraud", "champion", "created", "3")], got
    delta = {r: after[r] - before[r] for r in after}
    assert delta == {
        "accepted": 1,
        "ignored": 1,
        "forged": 1,
        "stale": 0,
        "replayed": 1,
        "malformed": 1,
        "standby": 1,
    }, delta


def test_a_sink_that_fails_does_not_make_mlflow_retry(tmp_path: Path) -> None:
    """MLflow retries 5xx answers: a bug in waking the ModelDeployments must not turn one
    delivery into several."""
    crt, key = self_signed(tmp_path)

    def sink(event: AliasEvent) -> int:
        raise RuntimeError("a bug")

    async def scenario() -> int:
        receiver = Receiver((SECRET,), tolerance_seconds=300, sink=sink)
        port = free_port()
        runner = await serve(receiver, port, tls_context(crt, key), host="127.0.0.1")
        try:
            tls = ssl.create_default_context(cafile=crt)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as s:
                raw, h = delivery(ALIAS, "d-9")
                async with s.post(f"https://127.0.0.1:{port}{PATH}", data=raw, headers=h) as r:
                    return r.status
        finally:
            await runner.cleanup()

    assert asyncio.run(scenario()) == 200


def test_the_receiver_speaks_only_tls(tmp_path: Path) -> None:
    crt, key = self_signed(tmp_path)

    async def scenario() -> None:
        receiver = Receiver((SECRET,), tolerance_seconds=300)
        port = free_port()
        runner = await serve(receiver, port, tls_context(crt, key), host="127.0.0.1")
        try:
            async with aiohttp.ClientSession() as s:
                with pytest.raises(aiohttp.ClientError):
                    async with s.post(f"http://127.0.0.1:{port}{PATH}", data=b"{}") as r:
                        await r.read()
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
