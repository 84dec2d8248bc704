"""Builders shared by the callback tests: a trade payload, signed headers, a fixed clock."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Final

from assetpay_async._signing import SIGNATURE_HEADER, signature_header

SECRET: Final = "current-secret"
OLD_SECRET: Final = "previous-secret"
SIGNED_AT: Final = "2026-07-31T12:00:00.000Z"
NOW: Final = dt.datetime(2026, 7, 31, 12, 0, tzinfo=dt.UTC)
TRADE_ID: Final = "0b6a4f6e-5d0e-4c1c-9f4e-2b8d7c3a1e55"
ITEM_ID: Final = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def trade_payload(**overrides: Any) -> dict[str, Any]:
    """A withdrawal trade as AssetPay's callbacks carry it (camelCase), completed by default."""
    trade: dict[str, Any] = {
        "id": TRADE_ID,
        "type": "withdraw",
        "source": "client",
        "merchantId": "merchant-1",
        "clientUserId": "user-1",
        "clientSteamID": "76561198000000000",
        "clientTradeUrl": "https://steamcommunity.com/tradeoffer/new/?partner=1&token=x",
        "status": "completed",
        "game": "730",
        "items": [{"id": ITEM_ID, "appid": 730, "tradable": True, "status": "completed"}],
        "totalPrice": 12.5,
        "createdAt": "2026-07-31T11:00:00.000Z",
        "updatedAt": "2026-07-31T11:59:00.000Z",
    }
    trade.update(overrides)
    return trade


def callback_body(**overrides: Any) -> bytes:
    """The raw body of a trade callback."""
    return json.dumps({"trade": trade_payload(**overrides)}).encode()


def signed_headers(
    body: bytes,
    *,
    secret: str = SECRET,
    previous_secret: str | None = None,
    delivery_id: str = "delivery-1",
    timestamp: str = SIGNED_AT,
) -> dict[str, str]:
    """Headers as AssetPay (and the sandbox) send them."""
    value = signature_header(secret, delivery_id, timestamp, body, previous_secret=previous_secret)
    return {SIGNATURE_HEADER: value, "Content-Type": "application/json"}


def at(seconds_from_signing: float) -> dt.datetime:
    """The clock reading ``seconds_from_signing`` after :data:`SIGNED_AT`."""
    return NOW + dt.timedelta(seconds=seconds_from_signing)
