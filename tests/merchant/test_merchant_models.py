"""Complete models: every published field, ``.raw`` kept outside eq/repr, ``to_dict()``, createdAt required;
and the api-key credential on the wire."""

from __future__ import annotations

import json
from typing import Any

import pytest

from assetpay_async import CancelResult, CancelStatus, Trade, TradeCancelResult
from assetpay_async._converter import ShapeError, decode
from assetpay_async._http import _with_credentials
from assetpay_async._minting import ApiKey
from assetpay_async._tokens import SecretToken

FULL: dict[str, Any] = {
    "id": "9a2dcbea-51dc-4f21-825d-e50fd3464513",
    "type": "withdraw",
    "source": "client",
    "externalId": "order-1",
    "merchantId": "m-1",
    "clientUserId": "u-1",
    "externalClientUserId": "my-user-1",
    "clientSteamID": "76561198000000042",
    "clientTradeUrl": "https://steamcommunity.com/tradeoffer/new/?partner=1&token=Ab3_xY-9",
    "offerID": "6400000000",
    "status": "hold",
    "game": "730",
    "totalPrice": 12.5,
    "preCredit": 1.25,
    "pendingCredit": 11.25,
    "holdEndDate": "2026-01-08T00:00:00.000Z",
    "isInstant": False,
    "revertedBy": "user",
    "error": None,
    "activeAt": "2026-01-01T00:01:00.000Z",
    "autoCancelAt": "2026-01-01T01:00:00.000Z",
    "createdAt": "2026-01-01T00:00:00.000Z",
    "updatedAt": "2026-01-01T00:02:00.000Z",
    "aFieldNewerThanTheSdk": {"x": 1},
    "items": [
        {
            "id": "0010f8d48278ccb8",
            "appid": 730,
            "tradable": True,
            "assetId": "38211412345",
            "amount": 1,
            "marketPrice": 12.75,
            "status": "hold",
            "offer": {"price": 12.5},
            "iconUrl": "https://example.invalid/icon.png",
        }
    ],
}


def test_every_published_field_is_decoded_and_the_raw_payload_is_kept() -> None:
    trade = decode(FULL, Trade)
    assert (trade.external_client_user_id, trade.offer_id) == ("my-user-1", "6400000000")
    assert (trade.pre_credit, trade.pending_credit, trade.is_instant) == (1.25, 11.25, False)
    assert trade.hold_end_date is not None
    assert trade.hold_end_date.day == 8
    assert trade.active_at is not None
    assert trade.auto_cancel_at is not None
    assert trade.reverted_by is not None
    assert trade.reverted_by.value == "user"
    item = trade.items[0]
    assert (item.asset_id, item.amount, item.market_price) == ("38211412345", 1, 12.75)
    assert trade.raw is not None
    assert trade.raw["aFieldNewerThanTheSdk"] == {"x": 1}
    assert item.raw is not None
    assert item.raw["iconUrl"].endswith("icon.png")


def test_raw_takes_no_part_in_equality_or_repr() -> None:
    one = decode(FULL, Trade)
    two = decode({**FULL, "aFieldNewerThanTheSdk": "different"}, Trade)
    assert one == two
    assert "aFieldNewerThanTheSdk" not in repr(one)
    assert "iconUrl" not in repr(one.items[0])


def test_only_the_schemas_required_fields_are_required() -> None:
    minimal = {
        "id": "t",
        "type": "deposit",
        "status": "completed",
        "createdAt": "2026-01-01T00:00:00Z",
    }
    trade = decode(minimal, Trade)
    assert trade.items == ()
    assert trade.hold_end_date is None
    assert trade.is_instant is None


@pytest.mark.parametrize("created_at", [None, "not a date", 17])
def test_a_trade_without_a_usable_created_at_is_a_decoding_error(created_at: object) -> None:
    broken = {k: v for k, v in FULL.items() if k != "createdAt"}
    with pytest.raises(ShapeError):
        decode(broken, Trade)
    with pytest.raises(ShapeError):
        decode({**broken, "createdAt": created_at}, Trade)


def test_to_dict_is_json_ready_with_assetpays_keys_and_round_trips() -> None:
    trade = decode(FULL, Trade)
    doc = trade.to_dict()
    json.dumps(doc)  # JSON-ready
    assert doc["offerID"] == "6400000000"
    assert doc["clientSteamID"] == FULL["clientSteamID"]
    assert doc["createdAt"] == "2026-01-01T00:00:00Z"
    assert doc["items"][0]["assetId"] == "38211412345"
    assert "raw" not in doc
    assert "aFieldNewerThanTheSdk" not in doc
    assert decode(doc, Trade) == trade


def test_to_dict_of_cancel_results() -> None:
    result = CancelResult("t", "i", CancelStatus.CANCELLED, request_id="r-1")
    assert result.to_dict() == {
        "tradeId": "t",
        "itemId": "i",
        "status": "cancelled",
        "requestId": "r-1",
    }
    whole = decode(
        {
            "tradeId": "t",
            "requested": 2,
            "cancelled": 1,
            "failed": 1,
            "items": [
                {"itemId": "a", "status": "cancelled"},
                {"itemId": "b", "status": "failed", "reason": "TRADE_CANCEL_TOO_SOON"},
            ],
        },
        TradeCancelResult,
    )
    doc = whole.to_dict()
    json.dumps(doc)
    assert doc["items"][1] == {"itemId": "b", "status": "failed", "reason": "TRADE_CANCEL_TOO_SOON"}
    assert whole.items[0].to_dict() == {"itemId": "a", "status": "cancelled"}


def test_the_api_key_goes_in_the_api_key_header_and_is_redacted() -> None:
    headers = _with_credentials({"accept": "application/json"}, ApiKey("ap_live_secret_value"))
    assert headers["api-key"] == "ap_live_secret_value"
    assert "authorization" not in headers
    assert "ap_live_secret_value" not in repr(headers)
    bearer = _with_credentials({}, SecretToken("a.b.c"))
    assert bearer["authorization"] == "Bearer a.b.c"
    assert "api-key" not in bearer
    body = _with_credentials({}, ApiKey("ap_x"), json_body=True)
    assert body["content-type"] == "application/json"
