"""Decoding success payloads: camelCase, extra keys ignored, unknown enum values kept, bad shapes refused."""

from __future__ import annotations

import datetime as dt
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
    assert result.trade_id == str(TRADE_ID)
    assert result.item_id == str(ITEM_ID)
    assert isinstance(result.trade_id, str)
    assert result.status is CancelStatus.CANCELLED
    assert result.status.known
    assert result.external_id == "order-17"
    assert result.request_id == "req-3"


def test_ids_are_kept_as_sent_including_listing_ids_that_are_not_uuids() -> None:
    data = _cancel_data(tradeId=str(TRADE_ID).upper(), itemId="0010f8d48278ccb8")
    result = decode_cancel(
        Envelope(data, None), status=200, trade_ref=str(TRADE_ID), item_ref="0010f8d48278ccb8"
    )
    assert result.trade_id == str(TRADE_ID).upper()
    assert result.item_id == "0010f8d48278ccb8"
    assert result.external_id is None


OTHER = "00000000-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("changes", "trade_ref", "item_ref"),
    [
        ({}, str(TRADE_ID).upper(), str(ITEM_ID)),  # UUIDs compare in any case
        ({}, str(TRADE_ID).replace("-", ""), str(ITEM_ID)),  # ... and form
        ({"externalId": "ext-1"}, str(TRADE_ID), "ext-1"),  # item named by its externalId
        ({"externalId": OTHER}, str(TRADE_ID), OTHER),  # a UUID-shaped externalId
        ({}, "order-1042", str(ITEM_ID)),  # the trade's externalId: the answer cannot say
        ({}, str(TRADE_ID), "ext-1"),  # no externalId echoed: the ref may be one
        ({"itemId": "0010f8d48278ccb8"}, str(TRADE_ID), "0010f8d48278ccb8"),
        # A merchant whose own trade externalIds are UUIDs, naming the item by its externalId too.
        ({"externalId": "ext-1"}, OTHER, "ext-1"),
    ],
)
def test_an_answer_naming_what_was_asked_for_decodes(
    changes: dict[str, Any], trade_ref: str, item_ref: str
) -> None:
    result = decode_cancel(
        Envelope(_cancel_data(**changes), "r"), status=200, trade_ref=trade_ref, item_ref=item_ref
    )
    assert result.status is CancelStatus.CANCELLED


@pytest.mark.parametrize(
    ("changes", "trade_ref", "item_ref"),
    [
        ({}, OTHER, str(ITEM_ID)),  # another trade than the AssetPay id asked for
        ({}, str(TRADE_ID), OTHER),  # another item
        ({"externalId": "ext-2"}, str(TRADE_ID), OTHER),  # neither its id nor its externalId
        ({"externalId": "ext-2"}, str(TRADE_ID), "ext-1"),  # another externalId
        ({"externalId": "EXT-1"}, str(TRADE_ID), "ext-1"),  # externalIds are case-sensitive
        ({"itemId": "0010f8d48278ccb9", "externalId": "e"}, str(TRADE_ID), "0010f8d48278ccb8"),
    ],
)
def test_an_answer_naming_something_else_is_an_ambiguous_invalid_response(
    changes: dict[str, Any], trade_ref: str, item_ref: str
) -> None:
    with pytest.raises(InvalidResponseError) as info:
        decode_cancel(
            Envelope(_cancel_data(**changes), "req-9"),
            status=200,
            trade_ref=trade_ref,
            item_ref=item_ref,
        )
    assert info.value.ambiguous  # AssetPay acted, on what cannot be told
    assert info.value.request_id == "req-9"


@pytest.mark.parametrize("status", [5, 0, 1.5, True, None, ["cancelled"], {"s": 1}])
def test_a_status_that_is_not_a_string_is_an_invalid_response(status: object) -> None:
    with pytest.raises(InvalidResponseError):
        decode_cancel(Envelope(_cancel_data(status=status), "r"), status=200)


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
    # "failed" is known too since whole-trade rows added it (hypothesis found it: the oracle predated it).
    assert result.status.known is (value in ("cancelled", "failed"))


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
    assert trade.item("item-1") is None  # ids that are not UUIDs compare exactly
    item = trade.item("ITEM-1")
    assert item is not None
    assert item.status is not None
    assert item.status.terminal


def test_trade_item_finds_by_id_then_external_id() -> None:
    raw = {
        "id": "t-1",
        "type": "withdraw",
        "status": "active",
        "createdAt": "2026-01-01T00:00:00Z",
        "items": [
            {"id": "0010f8d48278ccb8", "externalId": "ext-b"},
            {"id": str(ITEM_ID), "externalId": "0010f8d48278ccb8"},
            {"id": "ext-b", "externalId": "ext-c"},
        ],
    }
    trade = converter().structure(raw, Trade)
    assert trade.item("0010f8d48278ccb8") is trade.items[0]  # an id wins over an externalId
    assert trade.item(str(ITEM_ID).upper()) is trade.items[1]
    assert trade.item(ITEM_ID) is trade.items[1]
    assert trade.item("ext-b") is trade.items[2]
    assert trade.item("ext-c") is trade.items[2]
    assert trade.item("EXT-C") is None
    assert trade.item("missing") is None


@pytest.mark.parametrize("status", [5, 5.0, True, None, {"s": "active"}])
def test_a_trade_status_that_is_not_a_string_does_not_decode(status: object) -> None:
    raw = {"id": "t-1", "type": "withdraw", "status": status}
    with pytest.raises((cattrs.BaseValidationError, TypeError, ValueError)):
        converter().structure(raw, Trade)


def test_a_numeric_game_is_still_read_as_the_app_id() -> None:
    trade = converter().structure(
        {
            "id": "t",
            "type": "deposit",
            "status": "x",
            "game": 730,
            "createdAt": "2026-01-01T00:00:00Z",
        },
        Trade,
    )
    assert trade.game is Game.CS2


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
