"""JSON schemas of the AssetPay operations the sandbox serves, written from the published OpenAPI document
(v0.8.3) as ``/work/shared/api/facts.md`` records it.

Where the published document and reality part ways, the schema follows reality and says so: item ids are
marketplace listing ids on CS2 withdrawals, not UUIDs, although the cancel's 200 schema calls ``itemId``
uuid-formatted. ``GET /client/trades/{id}`` is not in the document at all; its ``data`` is checked against the
document's Trade schema, the shape the contract page describes.
"""

from __future__ import annotations

from typing import Any, Final

_TIMESTAMP: Final = {"type": "string", "format": "date-time"}
_STATUS: Final = {
    "type": "string",
    "enum": [
        "initiated",
        "pending",
        "active",
        "hold",
        "completed",
        "failed",
        "canceled",
        "declined",
        "reverted",
    ],
}

ITEM: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["id", "appid", "tradable"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "appid": {"type": "integer", "enum": [730, 252490]},
        "tradable": {"type": "boolean"},
        "externalId": {"type": "string"},
        "name": {"type": "string"},
        "marketHashName": {"type": "string"},
        "status": _STATUS,
        "error": {"type": "string"},
        "offer": {
            "type": "object",
            "required": ["price"],
            "properties": {"price": {"type": "number"}},
        },
    },
}

TRADE: Final[dict[str, Any]] = {
    "type": "object",
    "required": [
        "id",
        "type",
        "source",
        "merchantId",
        "clientUserId",
        "clientSteamID",
        "clientTradeUrl",
        "status",
        "game",
        "items",
        "totalPrice",
        "createdAt",
        "updatedAt",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "type": {"type": "string", "enum": ["deposit", "withdraw"]},
        "source": {"type": "string", "enum": ["client", "self"]},
        "externalId": {"type": "string"},
        "merchantId": {"type": "string"},
        "clientUserId": {"type": "string"},
        "clientSteamID": {"type": "string"},
        "clientTradeUrl": {"type": "string"},
        "offerID": {"type": "string"},
        "status": _STATUS,
        "game": {"type": "string", "enum": ["730", "252490"]},
        "items": {"type": "array", "items": ITEM},
        "totalPrice": {"type": "number"},
        "revertedBy": {"type": "string", "enum": ["supplier", "user"]},
        "error": {"type": "string"},
        "activeAt": _TIMESTAMP,
        "autoCancelAt": _TIMESTAMP,
        "createdAt": _TIMESTAMP,
        "updatedAt": _TIMESTAMP,
    },
}

CANCEL_ITEM: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["tradeId", "itemId", "status"],
    "additionalProperties": False,
    "properties": {
        "tradeId": {"type": "string", "format": "uuid"},
        # The document says uuid; a CS2 item's id is its listing id (facts.md): any non-empty string.
        "itemId": {"type": "string", "minLength": 1, "maxLength": 128},
        "externalId": {"type": "string"},
        "status": {"type": "string", "enum": ["cancelled"]},
    },
}

CANCEL_TRADE: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["tradeId", "requested", "cancelled", "failed", "items"],
    "additionalProperties": False,
    "properties": {
        "tradeId": {"type": "string", "format": "uuid"},
        "requested": {"type": "integer", "minimum": 0},
        "cancelled": {"type": "integer", "minimum": 0},
        "failed": {"type": "integer", "minimum": 0},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["itemId", "status"],
                "additionalProperties": False,
                "properties": {
                    "itemId": {"type": "string", "minLength": 1},
                    "externalId": {"type": "string"},
                    "status": {"type": "string", "enum": ["cancelled", "failed"]},
                    "reason": {"type": "string"},
                },
            },
        },
    },
}

TRADE_PAGE: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["items", "nextCursor"],
    "properties": {
        "items": {"type": "array", "items": TRADE},
        "nextCursor": {"type": ["string", "null"]},
    },
}


def success(data: dict[str, Any]) -> dict[str, Any]:
    """The success envelope around ``data``."""
    return {
        "type": "object",
        "required": ["requestId", "success", "data"],
        "properties": {
            "requestId": {"type": "string"},
            "success": {"const": True},
            "data": data,
        },
    }


ERROR: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["requestId", "success", "error"],
    "properties": {
        "requestId": {"type": "string"},
        "success": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "key", "message"],
            "properties": {
                "code": {"type": "integer"},
                "key": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
                "message": {
                    "oneOf": [
                        {"type": "string"},
                        {"type": "array", "items": {"type": "string"}},
                    ]
                },
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "details": {"type": "object"},
            },
        },
    },
}
"""The error envelope; ``fields`` only on VALIDATION_FAILED."""

DECLARED_STATUSES: Final = {
    "cancel-item": {200, 400, 401, 403, 404, 429},
    "cancel-trade": {200, 400, 401, 403, 404, 429},
    "list-trades": {200, 400, 401, 429},
    "get-trade": {200, 400, 401, 403, 404, 429},
}
"""HTTP statuses each operation declares (the single-trade route's are the contract page's)."""

OPERATIONS: Final = {
    "cancel-item": success(CANCEL_ITEM),
    "cancel-trade": success(CANCEL_TRADE),
    "list-trades": success(TRADE_PAGE),
    "get-trade": success(TRADE),
}
"""The success envelope of each operation the sandbox serves."""
