"""Decoded events: the trade, the approval gate, dedupe keys, the test ping, approval answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from assetpay_async import Game, Trade, TradeStatus, TradeType
from assetpay_async._converter import converter
from assetpay_async._signing import signature_header
from assetpay_async.callbacks import (
    AnyCallbackEvent,
    ApprovalDecision,
    CallbackError,
    CallbackEvent,
    CryptoDepositEvent,
    CryptoWithdrawalEvent,
    InvalidCallbackBodyError,
    MissingSignatureError,
    UnknownCallbackEvent,
    UnsignedTestPing,
    is_test_ping,
    verify_callback,
)
from tests.support.callbacks import (
    ITEM_ID,
    NOW,
    SECRET,
    TRADE_ID,
    callback_body,
    signed_headers,
    trade_payload,
)


def _verify_any(body: bytes, **header_options: Any) -> AnyCallbackEvent:
    return verify_callback(body, signed_headers(body, **header_options), SECRET, now=NOW)


def _verify(body: bytes, **header_options: Any) -> CallbackEvent:
    event = _verify_any(body, **header_options)
    assert isinstance(event, CallbackEvent), event
    return event


def test_event_carries_the_decoded_trade() -> None:
    event = _verify(callback_body(status="reverted", revertedBy="user"))

    assert isinstance(event.trade, Trade)
    assert event.trade.id == TRADE_ID
    assert event.trade.type is TradeType.WITHDRAW
    assert event.status is TradeStatus.REVERTED
    assert event.trade.game is Game.CS2
    assert event.trade.client_steam_id == "76561198000000000"
    item = event.trade.item(ITEM_ID)
    assert item is not None
    assert item.appid == 730
    assert event.payload["trade"]["merchantId"] == "merchant-1"


def test_unknown_status_and_extra_fields_are_kept_not_fatal() -> None:
    body = json.dumps(
        {"trade": trade_payload(status="escrowed", brandNewField={"x": 1}), "extra": 1}
    ).encode()

    event = _verify(body)

    assert event.status == "escrowed"
    assert not event.status.known
    assert event.payload["extra"] == 1


def test_body_as_the_sandbox_builds_it_verifies() -> None:
    # The sandbox unstructures a Trade with the SDK's converter and signs with signature_header.
    trade = converter().structure(trade_payload(), Trade)
    body = json.dumps({"trade": converter().unstructure(trade)}).encode()
    header = signature_header(SECRET, "dlv-42", "2026-07-31T12:00:00.123Z", body)

    event = verify_callback(body, {"X-AssetPay-Signature": header}, SECRET, now=NOW)

    assert isinstance(event, CallbackEvent)
    assert event.trade == trade
    assert event.delivery_id == "dlv-42"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "trade",
        {"trades": {}},
        {"trade": None},
        {"trade": []},
        {"trade": {"id": TRADE_ID}},  # no type/status
        {"trade": trade_payload(status="initiated", totalPrice=10**400)},
    ],
)
def test_unreadable_authentic_bodies_that_may_be_gates_are_unknown_approval_requests(
    payload: object,
) -> None:
    event = _verify_any(json.dumps(payload).encode(), delivery_id="d-9")

    assert isinstance(event, UnknownCallbackEvent)
    assert event.payload == json.loads(json.dumps(payload))
    assert event.reason
    # Not certainly a non-gate event: answered with the rejection, never with a plain 200.
    assert event.is_approval_request
    assert event.dedupe_key in ("approval:delivery:d-9", f"approval:{TRADE_ID}")


@pytest.mark.parametrize(
    "payload",
    [
        {"trade": trade_payload(createdAt="last tuesday")},
        {"trade": trade_payload(items=[{"appid": 730}])},  # item without id
        {"trade": trade_payload(items="many")},
        {"trade": trade_payload(totalPrice=10**400)},
        {"trade": trade_payload(type="deposit", status="initiated", createdAt="soon")},
    ],
)
def test_unreadable_trades_that_are_certainly_not_gates_are_plain_unknown_events(
    payload: object,
) -> None:
    event = _verify_any(json.dumps(payload).encode(), delivery_id="d-9")

    assert isinstance(event, UnknownCallbackEvent)
    assert event.payload == json.loads(json.dumps(payload))
    assert event.reason
    assert not event.is_approval_request  # another status or another type, spelled out
    assert event.dedupe_key == "delivery:d-9"


def test_unknown_event_reason_names_fields_not_values() -> None:
    event = _verify_any(callback_body(createdAt="SENSITIVE-VALUE"))

    assert isinstance(event, UnknownCallbackEvent)
    assert "created_at" in event.reason
    assert "SENSITIVE-VALUE" not in event.reason


def test_deeply_nested_body_is_an_unknown_event_not_a_recursion_error() -> None:
    body = b"[" * 100_000 + b"]" * 100_000

    event = _verify_any(body)

    assert isinstance(event, UnknownCallbackEvent)
    assert event.payload is None
    assert event.body == body


def test_invalid_callback_body_error_is_kept_for_old_except_clauses() -> None:
    assert issubclass(InvalidCallbackBodyError, CallbackError)


# --- crypto callbacks -----------------------------------------------------------------------------------


def test_a_crypto_withdrawal_is_its_own_event() -> None:
    withdrawal = {"id": "cw-1", "status": "completed", "externalId": "pay-9", "amount": "12.5"}
    body = json.dumps({"withdrawal": withdrawal}).encode()

    event = _verify_any(body, delivery_id="d-1")

    assert isinstance(event, CryptoWithdrawalEvent)
    assert (event.withdrawal.id, event.status, event.withdrawal.external_id) == (
        "cw-1",
        "completed",
        "pay-9",
    )
    assert event.withdrawal.data["amount"] == "12.5"
    assert not event.is_approval_request
    assert event.dedupe_key == "delivery:d-1"


def test_a_crypto_withdrawal_awaiting_approval_is_an_approval_gate_keyed_on_its_id() -> None:
    body = json.dumps({"withdrawal": {"id": "cw-2", "status": "awaiting_approval"}}).encode()

    keys = {_verify_any(body, delivery_id=f"attempt-{n}").dedupe_key for n in range(3)}
    event = _verify_any(body)

    assert isinstance(event, CryptoWithdrawalEvent)
    assert event.is_approval_request
    assert keys == {"approval:withdrawal:cw-2"}


def test_a_crypto_deposit_is_its_own_event() -> None:
    body = json.dumps({"deposit": {"id": "cd-1", "status": "confirmed", "txid": "0xabc"}}).encode()

    event = _verify_any(body)

    assert isinstance(event, CryptoDepositEvent)
    assert (event.deposit.id, event.status) == ("cd-1", "confirmed")
    assert event.deposit.data["txid"] == "0xabc"
    assert not event.is_approval_request


@pytest.mark.parametrize(
    "withdrawal",
    [{}, {"id": 5, "status": ["x"]}, {"id": "cw", "status": None}],
)
def test_a_crypto_withdrawal_with_odd_fields_still_decodes(withdrawal: dict[str, Any]) -> None:
    event = _verify_any(json.dumps({"withdrawal": withdrawal}).encode())

    assert isinstance(event, CryptoWithdrawalEvent)
    assert event.withdrawal.status is None
    assert not event.is_approval_request


def test_an_unreadable_trade_awaiting_approval_is_flagged_as_an_approval_gate() -> None:
    event = _verify_any(callback_body(status="initiated", createdAt="soon"))

    assert isinstance(event, UnknownCallbackEvent)
    assert event.is_approval_request
    assert event.dedupe_key == f"approval:{TRADE_ID}"


# --- the approval gate ----------------------------------------------------------------------------------


def test_initiated_withdrawal_is_an_approval_request() -> None:
    event = _verify(callback_body(status="initiated"))

    assert event.is_approval_request
    assert event.dedupe_key == f"approval:{TRADE_ID}"


@pytest.mark.parametrize(
    ("trade_type", "status"),
    [("withdraw", "pending"), ("withdraw", "completed"), ("deposit", "initiated")],
)
def test_other_events_are_not_approval_requests(trade_type: str, status: str) -> None:
    event = _verify(callback_body(type=trade_type, status=status), delivery_id="d-7")

    assert not event.is_approval_request
    assert event.dedupe_key == "delivery:d-7"


def test_approval_attempts_share_a_dedupe_key_across_delivery_ids() -> None:
    body = callback_body(status="initiated")

    keys = {_verify(body, delivery_id=f"attempt-{n}").dedupe_key for n in range(3)}

    assert keys == {f"approval:{TRADE_ID}"}


def test_approve_answer_is_a_plain_2xx() -> None:
    answer = ApprovalDecision.approve().answer()

    assert 200 <= answer.status < 300
    assert json.loads(answer.body) == {"action": "approve"}


def test_reject_answer_is_the_one_rejection_answer() -> None:
    answer = ApprovalDecision.reject("user is banned").answer()

    # What the official clients answer: a 2xx whose body is {"action": "reject", ...} rejects the gate, and
    # acknowledges a delivery that was not a gate after all.
    assert answer.status == 200
    assert json.loads(answer.body) == {"action": "reject", "reason": "user is banned"}
    assert answer.content_type == "application/json"
    assert answer.headers == {"Content-Type": "application/json"}


@pytest.mark.parametrize("reason", ["", "   "])
def test_reject_needs_a_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="reason"):
        ApprovalDecision.reject(reason)


# --- the unsigned test ping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b'{"test": true}', b'{"test": true, "url": "https://merchant.example/cb"}']
)
def test_unsigned_ping_is_recognised_and_answered_2xx(body: bytes) -> None:
    with pytest.raises(UnsignedTestPing) as caught:
        verify_callback(body, {}, SECRET, now=NOW)

    assert caught.value.http_status == 200


def test_a_signed_ping_shaped_body_is_a_delivery_not_a_ping() -> None:
    body = b'{"test": true}'

    event = verify_callback(body, signed_headers(body), SECRET, now=NOW)

    # Only an unsigned body is the ping; a signed one of no known shape may be a gate: rejected.
    assert isinstance(event, UnknownCallbackEvent)
    assert event.is_approval_request


@pytest.mark.parametrize(
    "body",
    [
        b'{"test": "true"}',
        b'{"test": 1}',
        b'{"test": false}',
        b"[true]",
        b'{"test": true, "trade": {}}',  # carries a trade: must be signed like any other
        b"test",
    ],
)
def test_only_an_exact_ping_is_a_ping(body: bytes) -> None:
    with pytest.raises(MissingSignatureError):
        verify_callback(body, {}, SECRET, now=NOW)


def test_a_ping_shaped_body_smuggling_a_trade_is_not_trusted() -> None:
    body = json.dumps({"test": True, "trade": trade_payload(status="initiated")}).encode()

    assert not is_test_ping(json.loads(body))
    with pytest.raises(MissingSignatureError):
        verify_callback(body, {}, SECRET, now=NOW)


# --- the item-level view --------------------------------------------------------------------------------

OTHER_ITEM = "9b2f4c1e-0a55-4e7b-8a8e-3c2d1b0a9f88"


def test_item_statuses_show_each_item_while_the_trade_is_still_active() -> None:
    items = [
        {"id": ITEM_ID, "appid": 730, "status": "reverted"},
        {"id": OTHER_ITEM, "appid": 730, "status": "active"},
    ]
    event = _verify(callback_body(status="active", items=items))

    # The trade's status says nothing of the reverted item: a refund keyed on it would miss it.
    assert event.status is TradeStatus.ACTIVE
    assert event.item_statuses == {ITEM_ID: TradeStatus.REVERTED, OTHER_ITEM: TradeStatus.ACTIVE}
    assert [item.id for item in event.items_with_status(TradeStatus.REVERTED)] == [ITEM_ID]
    assert [item.id for item in event.items_with_status("REVERTED", "active")] == [
        ITEM_ID,
        OTHER_ITEM,
    ]


def test_an_item_without_its_own_status_shares_the_trades() -> None:
    event = _verify(
        callback_body(type="deposit", status="completed", items=[{"id": ITEM_ID, "appid": 730}])
    )

    assert event.item_statuses == {ITEM_ID: TradeStatus.COMPLETED}
    assert [item.id for item in event.items_with_status(TradeStatus.COMPLETED)] == [ITEM_ID]


def test_to_dict_is_json_ready_for_every_event_kind() -> None:
    trade = _verify(callback_body(status="reverted"), delivery_id="d-1")
    crypto = _verify_any(
        json.dumps({"withdrawal": {"id": "cw-1", "status": "completed", "amount": "1"}}).encode()
    )
    unknown = _verify_any(b"not json")

    documents = [json.loads(json.dumps(e.to_dict())) for e in (trade, crypto, unknown)]

    assert documents[0]["kind"] == "trade"
    assert documents[0]["delivery_id"] == "d-1"
    assert documents[0]["timestamp"] == "2026-07-31T12:00:00.000Z"
    assert documents[0]["item_statuses"] == {ITEM_ID: "completed"}  # the item's own status
    assert documents[0]["trade"]["id"] == TRADE_ID
    assert documents[1] == {
        "kind": "withdrawal",
        "delivery_id": "delivery-1",
        "timestamp": "2026-07-31T12:00:00.000Z",
        "status": "completed",
        "is_approval_request": False,
        "withdrawal": {"id": "cw-1", "status": "completed", "amount": "1"},
    }
    assert documents[2]["kind"] == "unknown"
    assert documents[2]["payload"] is None
    assert documents[2]["is_approval_request"] is True


def test_to_dict_of_an_event_built_by_hand_holds_its_trade() -> None:
    sent = _verify(callback_body(status="reverted"))
    by_hand = CallbackEvent(sent.delivery_id, sent.timestamp, sent.trade)

    document = json.loads(json.dumps(by_hand.to_dict()))

    assert document["trade"]["id"] == TRADE_ID
    assert document["trade"]["status"] == "reverted"
