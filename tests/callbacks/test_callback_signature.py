"""verify_signature / verify_callback: the signature, the header, the clock, rotation."""

from __future__ import annotations

import datetime as dt
import hmac
import json

import pytest

from assetpay_async._errors import AssetPayError
from assetpay_async.callbacks import (
    CallbackAuthenticationError,
    CallbackError,
    CallbackEvent,
    InvalidCallbackBodyError,
    MalformedSignatureError,
    MissingSignatureError,
    SignatureMismatchError,
    TimestampToleranceError,
    UnknownCallbackEvent,
    verify_callback,
    verify_signature,
)
from tests.support.callbacks import (
    NOW,
    OLD_SECRET,
    SECRET,
    SIGNED_AT,
    at,
    callback_body,
    signed_headers,
)

VECTOR_BODY = b'{"event":"trade.completed","tradeId":"trade-1"}'
VECTOR_SIGNATURE = "264a1a0c4deb4462658b9cc21cce4bf2baaf8da9dd7dd1a51bbd71e0f4d81135"


def _header(
    signatures: str, *, t: str = SIGNED_AT, delivery_id: str = "delivery-1"
) -> dict[str, str]:
    return {"X-AssetPay-Signature": f"t={t},id={delivery_id},{signatures}"}


def test_published_test_vector_verifies() -> None:
    delivery = verify_signature(VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE}"), SECRET, now=NOW)

    assert delivery.delivery_id == "delivery-1"
    assert delivery.timestamp == dt.datetime(2026, 7, 31, 12, 0, tzinfo=dt.UTC)


def test_published_test_vector_fails_with_one_bit_changed() -> None:
    flipped = VECTOR_SIGNATURE[:-1] + "4"

    with pytest.raises(SignatureMismatchError):
        verify_signature(VECTOR_BODY, _header(f"s={flipped}"), SECRET, now=NOW)


def test_vector_body_is_authentic_but_not_a_trade_callback() -> None:
    # The signature passes (else SignatureMismatchError); a shape the SDK does not know is kept, not refused.
    event = verify_callback(VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE}"), SECRET, now=NOW)
    assert isinstance(event, UnknownCallbackEvent)
    assert event.payload == {"event": "trade.completed", "tradeId": "trade-1"}
    assert event.delivery_id == "delivery-1"


def test_a_signed_trade_callback_decodes() -> None:
    body = callback_body()

    event = verify_callback(body, signed_headers(body), SECRET, now=NOW)

    assert isinstance(event, CallbackEvent)
    assert event.delivery_id == "delivery-1"
    assert event.timestamp == NOW
    assert event.trade.status == "completed"


def test_header_lookup_ignores_case() -> None:
    body = callback_body()
    value = signed_headers(body)["X-AssetPay-Signature"]

    event = verify_callback(body, {"x-assetpay-signature": value}, SECRET, now=NOW)

    assert event.delivery_id == "delivery-1"


def test_uppercase_hex_signature_is_accepted() -> None:
    assert verify_signature(
        VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE.upper()}"), SECRET, now=NOW
    ).delivery_id == ("delivery-1")


# --- each failure reason --------------------------------------------------------------------------------


def test_missing_header() -> None:
    with pytest.raises(MissingSignatureError):
        verify_callback(callback_body(), {"Content-Type": "application/json"}, SECRET, now=NOW)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        f"id=delivery-1,s={VECTOR_SIGNATURE}",  # no t
        f"t={SIGNED_AT},s={VECTOR_SIGNATURE}",  # no id
        f"t={SIGNED_AT},id=delivery-1",  # no s
        f"t={SIGNED_AT},id=delivery-1,s={VECTOR_SIGNATURE},s={VECTOR_SIGNATURE}",  # repeated s
        f"t={SIGNED_AT},id=delivery-1,s=nothex",
        f"t={SIGNED_AT},id=delivery-1,s={VECTOR_SIGNATURE[:-2]}",  # too short
        f"t=yesterday,id=delivery-1,s={VECTOR_SIGNATURE}",
        f"t={SIGNED_AT},id=delivery-1,s={VECTOR_SIGNATURE},s1=é",
    ],
)
def test_malformed_header(value: str) -> None:
    with pytest.raises(MalformedSignatureError):
        verify_signature(VECTOR_BODY, {"X-AssetPay-Signature": value}, SECRET, now=NOW)


def test_header_given_twice_in_different_case_is_malformed() -> None:
    headers = {**_header(f"s={VECTOR_SIGNATURE}"), "x-assetpay-signature": f"s={VECTOR_SIGNATURE}"}

    with pytest.raises(MalformedSignatureError):
        verify_signature(VECTOR_BODY, headers, SECRET, now=NOW)


def test_wrong_secret() -> None:
    with pytest.raises(SignatureMismatchError):
        verify_signature(VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE}"), "another-secret", now=NOW)


def test_signature_over_reserialised_json_fails() -> None:
    body = callback_body()
    headers = signed_headers(body)
    reserialised = json.dumps(json.loads(body), indent=2, sort_keys=True).encode()

    assert json.loads(reserialised) == json.loads(body)
    with pytest.raises(SignatureMismatchError):
        verify_callback(reserialised, headers, SECRET, now=NOW)


def test_signature_is_bound_to_delivery_id_and_timestamp() -> None:
    with pytest.raises(SignatureMismatchError):
        verify_signature(
            VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE}", delivery_id="delivery-2"), SECRET, now=NOW
        )
    with pytest.raises(SignatureMismatchError):
        verify_signature(
            VECTOR_BODY,
            _header(f"s={VECTOR_SIGNATURE}", t="2026-07-31T12:00:01.000Z"),
            SECRET,
            now=NOW,
        )


def test_bad_json_body_with_valid_signature_is_an_unknown_event() -> None:
    body = b'{"trade": '
    event = verify_callback(body, signed_headers(body), SECRET, now=NOW)
    assert isinstance(event, UnknownCallbackEvent)
    assert (event.payload, event.body) == (None, body)
    assert "not JSON" in event.reason


def test_bad_json_body_with_bad_signature_is_an_authentication_failure() -> None:
    # Authentication comes first: an unauthenticated sender learns nothing about body parsing.
    with pytest.raises(SignatureMismatchError):
        verify_callback(b"not json", signed_headers(b"other"), SECRET, now=NOW)


def test_every_failure_is_a_callback_error_under_the_sdk_base() -> None:
    with pytest.raises(CallbackError) as caught:
        verify_callback(callback_body(), {}, SECRET, now=NOW)

    assert isinstance(caught.value, AssetPayError)
    assert isinstance(caught.value, CallbackAuthenticationError)
    assert caught.value.http_status == 401
    assert InvalidCallbackBodyError.http_status == 400


# --- the clock ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-300.0, 300.0, 0.0])
def test_timestamp_at_the_tolerance_edge_passes(offset: float) -> None:
    delivery = verify_signature(
        VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE}"), SECRET, now=at(-offset)
    )

    assert delivery.delivery_id == "delivery-1"


@pytest.mark.parametrize(
    ("clock_offset", "where"), [(300.001, "past"), (-300.001, "future"), (86_400, "past")]
)
def test_timestamp_just_past_the_tolerance_fails(clock_offset: float, where: str) -> None:
    with pytest.raises(TimestampToleranceError, match=where) as caught:
        verify_signature(
            VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE}"), SECRET, now=at(clock_offset)
        )

    assert caught.value.skew == pytest.approx(-clock_offset)
    assert caught.value.tolerance == 300
    assert caught.value.timestamp == NOW


def test_custom_tolerance_and_callable_clock() -> None:
    readings = iter([at(10)])

    with pytest.raises(TimestampToleranceError):
        verify_signature(
            VECTOR_BODY,
            _header(f"s={VECTOR_SIGNATURE}"),
            SECRET,
            tolerance=5,
            now=lambda: next(readings),
        )


def test_signature_is_checked_before_the_clock() -> None:
    # A forged, stale delivery is reported as forged: TimestampToleranceError means "authentic but old".
    with pytest.raises(SignatureMismatchError):
        verify_signature(VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE}"), "wrong", now=at(10_000))


def test_naive_header_timestamp_and_naive_clock_are_utc() -> None:
    signature = hmac.new(
        SECRET.encode(), b"delivery-1.2026-07-31T12:00:00." + VECTOR_BODY, "sha256"
    ).hexdigest()

    delivery = verify_signature(
        VECTOR_BODY,
        _header(f"s={signature}", t="2026-07-31T12:00:00"),
        SECRET,
        now=dt.datetime(2026, 7, 31, 12, 0),  # naive on purpose
    )

    assert delivery.timestamp == NOW


def test_offset_timestamp_is_normalised_to_utc() -> None:
    t = "2026-07-31T14:00:00.000+02:00"
    signature = hmac.new(
        SECRET.encode(), f"delivery-1.{t}.".encode() + VECTOR_BODY, "sha256"
    ).hexdigest()

    delivery = verify_signature(VECTOR_BODY, _header(f"s={signature}", t=t), SECRET, now=NOW)

    assert delivery.timestamp == NOW
    assert delivery.timestamp.tzinfo == dt.UTC


# --- rotation -------------------------------------------------------------------------------------------


def test_rotation_old_secret_matches_s1_only() -> None:
    body = callback_body()
    headers = signed_headers(body, secret=SECRET, previous_secret=OLD_SECRET)

    # A merchant still configured with the old secret verifies through s1.
    assert verify_callback(body, headers, OLD_SECRET, now=NOW).delivery_id == "delivery-1"
    # Without s1, the old secret alone does not verify.
    s_only = signed_headers(body, secret=SECRET)
    with pytest.raises(SignatureMismatchError):
        verify_callback(body, s_only, OLD_SECRET, now=NOW)


def test_rotation_new_secret_matches_s() -> None:
    body = callback_body()

    for headers in (
        signed_headers(body, secret=SECRET, previous_secret=OLD_SECRET),
        signed_headers(body, secret=SECRET),
    ):
        assert verify_callback(body, headers, SECRET, now=NOW).delivery_id == "delivery-1"


def test_rotation_any_configured_secret_matches() -> None:
    body = callback_body()

    for signer in (SECRET, OLD_SECRET):
        headers = signed_headers(body, secret=signer)
        event = verify_callback(body, headers, [SECRET, OLD_SECRET], now=NOW)
        assert event.delivery_id == "delivery-1"


def test_rotation_s1_with_unconfigured_secrets_fails() -> None:
    body = callback_body()
    headers = signed_headers(body, secret=SECRET, previous_secret=OLD_SECRET)

    with pytest.raises(SignatureMismatchError):
        verify_callback(body, headers, ["third-secret"], now=NOW)


# --- constant-time compare ------------------------------------------------------------------------------


def test_signatures_are_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    body = callback_body()
    headers = signed_headers(body, secret=SECRET, previous_secret=OLD_SECRET)

    verify_callback(body, headers, [SECRET, "third-secret"], now=NOW)

    # Every (secret, signature) pair goes through compare_digest: 2 secrets x (s, s1).
    assert len(calls) == 4
    assert sum(a == b for a, b in calls) == 1


def test_compare_digest_decides_the_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    # If compare_digest says no, nothing else lets the delivery through.
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: False)

    with pytest.raises(SignatureMismatchError):
        verify_signature(VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE}"), SECRET, now=NOW)


# --- secrets stay secret; programmer errors are not callback errors -----------------------------------


def test_no_error_text_contains_a_secret() -> None:
    body = callback_body()
    cases = [
        (body, {}),
        (body, {"X-AssetPay-Signature": "t=x"}),
        (body, signed_headers(body, secret="other")),
        (body, signed_headers(body)),  # stale below
        (b"{}", signed_headers(b"{}")),
    ]
    for raw, headers in cases:
        with pytest.raises(CallbackError) as caught:
            verify_callback(raw, headers, [SECRET, OLD_SECRET], now=at(10_000))
        for text in (str(caught.value), repr(caught.value)):
            assert SECRET not in text
            assert OLD_SECRET not in text


@pytest.mark.parametrize("secrets", [[], "", [""], [SECRET, ""]])
def test_empty_secrets_are_refused(secrets: str | list[str]) -> None:
    with pytest.raises(ValueError, match="secret"):
        verify_signature(VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE}"), secrets, now=NOW)


def test_text_body_is_verified_as_its_utf8_bytes() -> None:
    delivery = verify_signature(
        VECTOR_BODY.decode(), _header(f"s={VECTOR_SIGNATURE}"), SECRET, now=NOW
    )

    assert delivery.delivery_id == "delivery-1"


@pytest.mark.parametrize("tolerance", [-1, float("nan"), float("inf")])
def test_bad_tolerance_is_refused(tolerance: float) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        verify_signature(
            VECTOR_BODY, _header(f"s={VECTOR_SIGNATURE}"), SECRET, tolerance=tolerance, now=NOW
        )
