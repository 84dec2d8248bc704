"""Property tests: whatever arrives at the callback URL, only an event or a CallbackError comes out, and an
authentic delivery is never refused for its shape."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetpay_async.callbacks import (
    AnyCallbackEvent,
    CallbackError,
    CallbackEvent,
    CryptoDepositEvent,
    CryptoWithdrawalEvent,
    UnknownCallbackEvent,
    UnsignedTestPing,
    verify_callback,
)
from tests.support.callbacks import NOW, SECRET, signed_headers, trade_payload

KNOWN_EVENTS = CallbackEvent | CryptoWithdrawalEvent | CryptoDepositEvent
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

# Trade-like objects: the real keys with arbitrary values, so decoding goes deep.
_TRADE_KEYS = [*trade_payload().keys(), "revertedBy", "activeAt", "autoCancelAt", "offerID"]
_ITEM_KEYS = ["id", "appid", "status", "tradable", "externalId", "name", "offer", "error"]
items = st.lists(st.dictionaries(st.sampled_from(_ITEM_KEYS), json_values, max_size=6), max_size=3)
trades = st.dictionaries(
    st.sampled_from(_TRADE_KEYS), json_values | items, min_size=0, max_size=len(_TRADE_KEYS)
)


def _outcome(body: bytes, headers: dict[str, str]) -> AnyCallbackEvent | CallbackError:
    try:
        return verify_callback(body, headers, SECRET, now=NOW)
    except CallbackError as exc:
        return exc


@SETTINGS
@given(body=st.binary(max_size=300))
def test_random_bytes_unsigned(body: bytes) -> None:
    assert isinstance(_outcome(body, {}), CallbackError)


@SETTINGS
@given(body=st.binary(max_size=300))
def test_random_bytes_signed(body: bytes) -> None:
    # Authentic garbage: the signature passes, so it is kept as an event (or, by chance, is a ping).
    outcome = _outcome(body, signed_headers(body))
    assert isinstance(outcome, KNOWN_EVENTS | UnknownCallbackEvent | UnsignedTestPing)


@SETTINGS
@given(
    header=st.text(max_size=200),
    name=st.sampled_from(["X-AssetPay-Signature", "x-assetpay-signature", "X-ASSETPAY-SIGNATURE"]),
)
def test_random_header_strings(header: str, name: str) -> None:
    body = json.dumps({"trade": trade_payload()}).encode()

    assert isinstance(_outcome(body, {name: header}), CallbackError)


@SETTINGS
@given(
    t=st.text(min_size=1, max_size=40).filter(lambda s: "," not in s),
    delivery_id=st.text(min_size=1, max_size=40).filter(lambda s: "," not in s),
)
def test_random_but_correctly_signed_header_fields(t: str, delivery_id: str) -> None:
    body = json.dumps({"trade": trade_payload()}).encode()
    headers = signed_headers(
        body, delivery_id=delivery_id.strip() or "x", timestamp=t.strip() or "x"
    )

    outcome = _outcome(body, headers)

    assert isinstance(outcome, CallbackError | CallbackEvent | UnknownCallbackEvent)


@SETTINGS
@given(payload=json_values)
def test_random_json_values_signed(payload: Any) -> None:
    body = json.dumps(payload).encode()

    outcome = _outcome(body, signed_headers(body))

    # Authentic: an event of some kind (the unsigned test ping aside), never a refusal.
    assert isinstance(outcome, KNOWN_EVENTS | UnknownCallbackEvent | UnsignedTestPing)
    if isinstance(outcome, UnknownCallbackEvent):
        assert outcome.payload == payload


@SETTINGS
@given(trade=trades)
def test_random_trades_signed_decode_or_are_kept_as_unknown_events(trade: dict[str, Any]) -> None:
    body = json.dumps({"trade": trade}).encode()

    outcome = _outcome(body, signed_headers(body))

    assert isinstance(outcome, CallbackEvent | UnknownCallbackEvent)
    if isinstance(outcome, CallbackEvent):
        assert outcome.trade.id is not None
    else:
        # Unreadable, so never approvable: flagged as a possible gate unless a type or status spelled out
        # says it is not one.
        kind, status = trade.get("type"), trade.get("status")
        certainly_not = (isinstance(kind, str) and kind.casefold() != "withdraw") or (
            isinstance(status, str) and status.casefold() != "initiated"
        )
        assert outcome.is_approval_request is not certainly_not
