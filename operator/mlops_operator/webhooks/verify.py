"""What an MLflow registry webhook delivery says, and whether to believe it. Pure: no I/O.

MLflow 3 signs each delivery as Standard Webhooks do: the header `X-MLflow-Signature` is
`v1,<base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>">` under the webhook's secret,
beside `X-MLflow-Delivery-Id` and `X-MLflow-Timestamp` (Unix seconds). A delivery is believed
only when the signature matches, the timestamp is within the tolerance of now (either side:
an old delivery replayed later is refused, so is one dated ahead), and its delivery id has not
been accepted before within that window (a replay of a fresh one is refused). The body is then
read: only alias events of registered models concern the operator.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"

# MLflow's entity and actions for a model version's alias (mlflow.entities.webhook)
ALIAS_ENTITY = "model_version_alias"
ALIAS_ACTIONS = ("created", "deleted")


class Result(StrEnum):
    """The outcome of one delivery: the `result` label of the deliveries metric."""

    ACCEPTED = "accepted"  # an alias event: the ModelDeployments following it reconcile now
    IGNORED = "ignored"  # genuine, but not an alias event (nothing to do)
    FORGED = "forged"  # no signature, or one that does not match the secret
    STALE = "stale"  # timestamp missing, malformed or outside the tolerance
    REPLAYED = "replayed"  # a delivery id accepted before
    MALFORMED = "malformed"  # genuine signature over a body that is not an MLflow event
    STANDBY = "standby"  # this replica does not lead: retry (MLflow does, on 503)


@dataclass(frozen=True)
class AliasEvent:
    model: str
    alias: str
    action: str  # created | deleted
    version: str | None  # the version it now points to (created only)


@dataclass(frozen=True)
class Verdict:
    result: Result
    why: str
    delivery_id: str = ""
    event: AliasEvent | None = None


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The header value MLflow sends (tests and tools use it to sign their own deliveries)."""
    content = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def _signature_matches(secrets: tuple[str, ...], header: str, content: bytes) -> bool:
    # Standard Webhooks allows several space-separated signatures (a secret being rotated)
    offered: list[bytes] = []
    for part in header.split():
        version, _, value = part.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    for secret in secrets:
        want = hmac.new(secret.encode(), content, hashlib.sha256).digest()
        # compare with every offer, so the time taken says nothing about which one matched
        matches = [hmac.compare_digest(want, o) for o in offered]
        if any(matches):
            return True
    return False


class SeenDeliveries:
    """Delivery ids accepted within the tolerance window, oldest first. An id older than the
    window need not be kept: its timestamp alone now refuses it. `limit` bounds the memory
    a flood of genuine deliveries could take (the oldest go first)."""

    def __init__(self, window_seconds: float, limit: int = 100_000) -> None:
        self._window = window_seconds
        self._limit = limit
        self._ids: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, delivery_id: str) -> bool:
        return delivery_id in self._ids

    def add(self, delivery_id: str, now: float) -> None:
        self._ids[delivery_id] = now
        self._ids.move_to_end(delivery_id)
        self.prune(now)

    def prune(self, now: float) -> None:
        while self._ids:
            oldest, at = next(iter(self._ids.items()))
            if now - at <= 2 * self._window and len(self._ids) <= self._limit:
                break
            del self._ids[oldest]


def _header(headers: Mapping[str, str], name: str) -> str:
    # aiohttp's headers are case-insensitive already; a plain dict (tests) may not be
    value = headers.get(name)
    if value is None:
        lowered = {k.lower(): v for k, v in headers.items()}
        value = lowered.get(name.lower())
    return (value or "").strip()


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secrets: tuple[str, ...],
    now: float,
    tolerance_seconds: float,
    seen: SeenDeliveries,
) -> Verdict:
    """The verdict on one delivery; an accepted or ignored one's id is added to `seen`."""
    delivery_id = _header(headers, DELIVERY_ID_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not signature:
        return Verdict(Result.FORGED, f"no {SIGNATURE_HEADER} header", delivery_id)
    if not delivery_id:
        return Verdict(Result.FORGED, f"no {DELIVERY_ID_HEADER} header")
    content = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    if not _signature_matches(secrets, signature, content):
        return Verdict(Result.FORGED, "the signature does not match the secret", delivery_id)
    try:
        sent = int(timestamp)
    except ValueError:
        return Verdict(Result.STALE, f"{TIMESTAMP_HEADER} {timestamp!r} is not Unix seconds")
    if abs(now - sent) > tolerance_seconds:
        return Verdict(
            Result.STALE,
            f"sent {now - sent:+.0f}s from now, outside the {tolerance_seconds:.0f}s tolerance",
            delivery_id,
        )
    seen.prune(now)
    if delivery_id in seen:
        return Verdict(Result.REPLAYED, f"delivery {delivery_id} was accepted before", delivery_id)
    verdict = _read(body, delivery_id)
    if verdict.result in (Result.ACCEPTED, Result.IGNORED):
        seen.add(delivery_id, now)
    return verdict


def _read(body: bytes, delivery_id: str) -> Verdict:
    try:
        doc = json.loads(body)
    except ValueError:
        return Verdict(Result.MALFORMED, "the body is not JSON", delivery_id)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        return Verdict(Result.MALFORMED, "no `data` object in the body", delivery_id)
    entity, action, data = doc.get("entity"), doc.get("action"), doc["data"]
    if entity != ALIAS_ENTITY or action not in ALIAS_ACTIONS:
        return Verdict(Result.IGNORED, f"event {entity}.{action}", delivery_id)
    model, alias = data.get("name"), data.get("alias")
    if not isinstance(model, str) or not model or not isinstance(alias, str) or not alias:
        return Verdict(Result.MALFORMED, "an alias event without name and alias", delivery_id)
    version = data.get("version")
    event = AliasEvent(model, alias, str(action), str(version) if version is not None else None)
    return Verdict(Result.ACCEPTED, f"alias {alias} of {model} {action}", delivery_id, event)
