"""Decoding success payloads: camelCase, extra keys ignored, unknown enum values kept, bad shapes refused."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assetpay_async import CancelStatus, Game, InvalidResponseError, Trade, TradeStatus
from assetpay_async._converter import ShapeError, converter, decode
from assetpay_async._protocol import Envelope, decode_cancel, structure
from tests.support.core import ITEM_ID, TRADE_ID


def _cancel_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"tradeId": str(TRADE_ID), "itemId": str(ITEM_ID), "status": "cancelled"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def test_cancel_result_from_camel_case_with_extra_keys() -> None:
    data = _cancel_data(externalId="order-17", refundedAt="later", nested={"x": [1]})
    result = decode_cancel(Envelope(data, "req-3"), status=200)
    assert result.trade_id == TRADE_ID
    assert result.item_id == ITEM_ID
    assert isinstance(result.trade_id, uuid.UUID)
    assert result.status is CancelStatus.CANCELLED
    assert result.status.known
    assert result.external_id == "order-17"
    assert result.request_id == "req-3"


def test_cancel_result_accepts_uppercase_ids_and_no_external_id() -> None:
    data = _cancel_data(tradeId=str(TRADE_ID).upper())
    result = decode_cancel(Envelope(data, None), status=200)
    assert result.trade_id == TRADE_ID
    assert result.external_id is None


def test_an_unknown_status_is_kept_not_an_error() -> None:
    result = decode_cancel(Envelope(_cancel_data(status="cancel_requested"), "r"), status=200)
    kept: str = result.status.value  # typed as the known literal, holds the server's string
    assert kept == str(result.status) == "cancel_requested"
    assert result.status.known is False
    assert isinstance(result.status, CancelStatus)


@given(st.text(max_size=40))
def test_any_status_string_survives_decoding(value: str) -> None:
    result = decode_cancel(Envelope(_cancel_data(status=value), "r"), status=200)
    assert result.status.value == value
    assert result.status.known is (value == "cancelled")


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "cancelled",
        {},
        _cancel_data(itemId=...),
        _cancel_data(tradeId=...),
        _cancel_data(status=...),
        _cancel_data(tradeId=5),
        _cancel_data(tradeId="trade-uuid"),  # the contract's own placeholder
        _cancel_data(itemId=None),
        _cancel_data(status=None),
        _cancel_data(status=True),
        _cancel_data(status=["cancelled"]),
        _cancel_data(externalId=17),
        _cancel_data(externalId={"id": 1}),
    ],
    ids=[
        "null",
        "list",
        "string",
        "empty",
        "no-item",
        "no-trade",
        "no-status",
        "int-trade",
        "placeholder-trade",
        "null-item",
        "null-status",
        "bool-status",
        "list-status",
        "int-external",
        "object-external",
    ],
)
def test_a_bad_shape_is_an_invalid_response_never_a_cattrs_error(data: Any) -> None:
    with pytest.raises(InvalidResponseError) as info:
        decode_cancel(Envelope(data, "req-5"), status=200)
    exc = info.value
    assert not isinstance(exc, cattrs.BaseValidationError)
    assert (exc.http_status, exc.request_id) == (200, "req-5")
    assert "cancel result" in str(exc)
    assert len(exc.snippet) <= 200


def test_trade_decoding_renames_keeps_unknown_values_and_ignores_extras() -> None:
    raw = {
        "id": "a1b2",
        "type": "withdraw",
        "status": "awaiting_supplier",
        "game": "730",
        "clientSteamID": "7656",
        "offerID": "offer-1",
        "createdAt": "2026-07-31T12:00:00.000Z",
        "totalPrice": 12,
        "somethingNew": {"x": 1},
        "items": [
            {"id": "ITEM-1", "appid": 730, "status": "reverted", "marketHashName": "AK-47"},
            {"id": "item-2", "appid": 730, "status": "hold", "brandNewField": True},
        ],
    }
    trade = converter().structure(raw, Trade)
    assert trade.status == "awaiting_supplier"
    assert trade.status.known is False
    assert trade.status.terminal is False  # an unknown status keeps the caller watching
    assert trade.game is Game.CS2
    assert trade.client_steam_id == "7656"
    assert trade.offer_id == "offer-1"
    assert trade.created_at == dt.datetime(2026, 7, 31, 12, tzinfo=dt.UTC)
    assert trade.total_price == 12.0
    assert [item.status for item in trade.items] == [TradeStatus.REVERTED, TradeStatus.HOLD]
    assert trade.items[0].market_hash_name == "AK-47"
    item = trade.item("item-1")
    assert item is not None
    assert item.status is not None
    assert item.status.terminal


@pytest.mark.parametrize(
    ("field", "value"),
    [("tradable", "false"), ("tradable", 1), ("name", 5), ("appid", "730"), ("appid", True)],
)
def test_no_silent_coercion_of_wrong_types(field: str, value: Any) -> None:
    # cattrs' default hooks would turn "false" into True and 5 into "5".
    raw = {
        "id": "t-1",
        "type": "withdraw",
        "status": "active",
        "items": [{"id": "i", field: value}],
    }
    with pytest.raises((cattrs.BaseValidationError, TypeError, ValueError)):
        converter().structure(raw, Trade)


@pytest.mark.parametrize(
    "data",
    [
        {
            "id": "t",
            "type": "withdraw",
            "status": "active",
            "totalPrice": 10**400,
        },  # float overflow
        {"id": "t", "type": "withdraw", "status": "active", "createdAt": "not a date"},
        {"id": "t", "type": "withdraw", "status": "active", "items": 5},
        {"id": "t", "type": "withdraw"},
        [],
    ],
    ids=["overflow", "bad-date", "items-not-a-list", "missing-status", "not-an-object"],
)
def test_every_converter_failure_takes_the_one_decode_or_raise_path(data: Any) -> None:
    with pytest.raises(ShapeError) as shape:
        decode(data, Trade)
    assert isinstance(shape.value.__cause__, Exception)
    with pytest.raises(InvalidResponseError) as info:
        structure(data, Trade, what="trade", status=200, request_id="r")
    assert info.value.ambiguous is True  # a 2xx: only the answer is unreadable
    assert info.value.request_id == "r"
