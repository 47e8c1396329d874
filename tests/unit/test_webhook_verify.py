"""Whether an MLflow webhook delivery is believed (webhooks/verify.py), table by table."""

from __future__ import annotations

import json

import pytest

from mlops_operator.webhooks.verify import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AliasEvent,
    Result,
    SeenDeliveries,
    sign,
    verify,
)

pytestmark = pytest.mark.unit

SECRET = "s3cret-of-the-webhook"
NOW = 1_800_000_000.0
TOLERANCE = 300.0


def alias_body(action: str = "created", **data: object) -> bytes:
    payload = {"name": "fraud", "alias": "champion", "version": "7", **data}
    if action == "deleted":
        payload.pop("version")
    doc = {
        "entity": "model_version_alias",
        "action": action,
        "timestamp": "2027-01-15T08:00:00+00:00",
        "data": payload,
    }
    return json.dumps(doc).encode()


def headers(
    body: bytes, delivery: str = "d-1", ts: float = NOW, secret: str = SECRET
) -> dict[str, str]:
    t = str(int(ts))
    return {
        DELIVERY_ID_HEADER: delivery,
        TIMESTAMP_HEADER: t,
        SIGNATURE_HEADER: sign(secret, delivery, t, body),
    }


def check(h: dict[str, str], body: bytes, seen: SeenDeliveries | None = None, now: float = NOW):  # type: ignore[no-untyped-def]
    fresh = SeenDeliveries(TOLERANCE)
    return verify(h, body, (SECRET,), now, TOLERANCE, fresh if seen is None else seen)


def test_mlflows_own_signature_is_what_sign_makes() -> None:
    """The signature scheme against MLflow's own implementation (the installed MLflow; the
    operator itself never imports it)."""
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = alias_body()
    assert sign(SECRET, "d-1", "1800000000", body) == _generate_hmac_signature(
        SECRET, "d-1", "1800000000", body.decode()
    )


def test_a_genuine_alias_move_is_accepted_with_what_it_says() -> None:
    body = alias_body()
    v = check(headers(body), body)
    assert v.result is Result.ACCEPTED, v
    assert v.event == AliasEvent("fraud", "champion", "created", "7")
    assert v.delivery_id == "d-1"


def test_a_removed_alias_is_accepted_without_a_version() -> None:
    body = alias_body("deleted")
    v = check(headers(body), body)
    assert v.result is Result.ACCEPTED, v
    assert v.event == AliasEvent("fraud", "champion", "deleted", None)


def _tamper_body(h: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return h, body.replace(b"fraud", b"other")


def _other_secret(h: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return headers(body, secret="guess"), body


def _no_signature(h: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return {k: v for k, v in h.items() if k != SIGNATURE_HEADER}, body


def _no_delivery_id(h: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return {k: v for k, v in h.items() if k != DELIVERY_ID_HEADER}, body


def _other_delivery_id(h: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return {**h, DELIVERY_ID_HEADER: "d-2"}, body  # the id is signed too


def _retimed(h: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return {**h, TIMESTAMP_HEADER: str(int(NOW) + 1)}, body  # so is the timestamp


def _other_version(h: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return {**h, SIGNATURE_HEADER: "v2," + h[SIGNATURE_HEADER].split(",", 1)[1]}, body


def _not_base64(h: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return {**h, SIGNATURE_HEADER: "v1,@@not-base64@@"}, body


@pytest.mark.parametrize(
    "forge",
    [
        _tamper_body,
        _other_secret,
        _no_signature,
        _no_delivery_id,
        _other_delivery_id,
        _retimed,
        _other_version,
        _not_base64,
    ],
)
def test_forgeries_are_refused(forge) -> None:  # type: ignore[no-untyped-def]
    body = alias_body()
    h, b = forge(headers(body), body)
    seen = SeenDeliveries(TOLERANCE)
    v = check(h, b, seen)
    assert v.result is Result.FORGED, v
    assert v.event is None
    assert len(seen) == 0, "a forgery must not fill the replay cache"


def test_one_of_several_signatures_may_match_while_a_secret_is_rotated() -> None:
    body = alias_body()
    h = headers(body)
    old = headers(body, secret="old-secret")[SIGNATURE_HEADER]
    h[SIGNATURE_HEADER] = f"{old} {h[SIGNATURE_HEADER]}"
    assert check(h, body).result is Result.ACCEPTED
    # and a receiver holding both secrets accepts a delivery signed with either
    only_old = headers(body, secret="old-secret")
    v = verify(only_old, body, ("new", "old-secret"), NOW, TOLERANCE, SeenDeliveries(TOLERANCE))
    assert v.result is Result.ACCEPTED


@pytest.mark.parametrize(
    "sent, result",
    [
        (NOW - TOLERANCE, Result.ACCEPTED),
        (NOW + TOLERANCE, Result.ACCEPTED),
        (NOW - TOLERANCE - 1, Result.STALE),
        (NOW + TOLERANCE + 1, Result.STALE),
        (NOW - 86400, Result.STALE),
    ],
)
def test_the_timestamp_must_be_within_the_tolerance(sent: float, result: Result) -> None:
    body = alias_body()
    assert check(headers(body, ts=sent), body).result is result


def test_a_signed_timestamp_that_is_not_a_number_is_stale() -> None:
    body = alias_body()
    h = {DELIVERY_ID_HEADER: "d-1", TIMESTAMP_HEADER: "soon"}
    h[SIGNATURE_HEADER] = sign(SECRET, "d-1", "soon", body)
    assert check(h, body).result is Result.STALE


def test_a_replayed_delivery_is_refused_and_a_new_id_is_not() -> None:
    body = alias_body()
    seen = SeenDeliveries(TOLERANCE)
    assert check(headers(body), body, seen).result is Result.ACCEPTED
    again = check(headers(body), body, seen, now=NOW + 5)
    assert again.result is Result.REPLAYED, again
    assert check(headers(body, "d-2"), body, seen, now=NOW + 5).result is Result.ACCEPTED


def test_a_delivery_id_is_remembered_as_long_as_its_timestamp_could_pass() -> None:
    """Sent at the edge of the future tolerance, a delivery's timestamp passes until
    2 x tolerance after it was accepted: the id must be remembered that long, then may go."""
    body = alias_body()
    seen = SeenDeliveries(TOLERANCE)
    early = NOW - TOLERANCE  # the clock of the receiver, behind the sender's
    assert check(headers(body), body, seen, now=early).result is Result.ACCEPTED
    assert check(headers(body), body, seen, now=NOW + TOLERANCE).result is Result.REPLAYED
    seen.prune(early + 2 * TOLERANCE + 1)
    assert len(seen) == 0


def test_the_replay_cache_is_bounded() -> None:
    seen = SeenDeliveries(TOLERANCE, limit=3)
    for i in range(10):
        seen.add(f"d-{i}", NOW)
    assert len(seen) == 3
    assert "d-9" in seen and "d-0" not in seen


@pytest.mark.parametrize(
    "body, result",
    [
        (b"not json", Result.MALFORMED),
        (b"[1, 2]", Result.MALFORMED),
        (
            json.dumps({"entity": "model_version_alias", "action": "created"}).encode(),
            Result.MALFORMED,
        ),
        (alias_body(name=""), Result.MALFORMED),
        (alias_body(alias=None), Result.MALFORMED),
        (
            json.dumps(
                {"entity": "model_version", "action": "created", "data": {"name": "fraud"}}
            ).encode(),
            Result.IGNORED,
        ),
        (
            json.dumps(
                {"entity": "model_version_alias", "action": "updated", "data": {"name": "x"}}
            ).encode(),
            Result.IGNORED,
        ),
    ],
)
def test_genuine_deliveries_that_are_not_alias_events(body: bytes, result: Result) -> None:
    v = check(headers(body), body)
    assert v.result is result, v
    assert v.event is None
