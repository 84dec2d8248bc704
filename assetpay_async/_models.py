"""Values decoded from AssetPay's answers: frozen attrs classes and open enums.

AssetPay adds enum values over time; an unknown value decodes to a pseudo-member whose ``known`` is False
and whose ``value`` is the server's string, instead of failing.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any, Self

import attrs

__all__ = [
    "CancelResult",
    "CancelStatus",
    "Game",
    "OpenEnum",
    "RevertedBy",
    "Trade",
    "TradeItem",
    "TradePage",
    "TradeSource",
    "TradeStatus",
    "TradeType",
]


class OpenEnum(enum.StrEnum):
    """A string enum that keeps values it does not know instead of raising."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = "UNKNOWN"
        member._value_ = value
        return member

    @property
    def known(self) -> bool:
        """False for a value this version of the SDK does not know."""
        return self._name_ != "UNKNOWN"


class CancelStatus(OpenEnum):
    """``status`` of a cancel result (spelled ``cancelled``, unlike trade statuses)."""

    CANCELLED = "cancelled"


class TradeStatus(OpenEnum):
    """Status of a trade or of one of its items."""

    INITIATED = "initiated"
    PENDING = "pending"
    ACTIVE = "active"
    HOLD = "hold"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    DECLINED = "declined"
    REVERTED = "reverted"

    @property
    def terminal(self) -> bool:
        """True for a final status. An unknown status counts as not terminal (keep watching)."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        TradeStatus.COMPLETED,
        TradeStatus.FAILED,
        TradeStatus.CANCELED,
        TradeStatus.DECLINED,
        TradeStatus.REVERTED,
    }
)


class TradeType(OpenEnum):
    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"


class TradeSource(OpenEnum):
    CLIENT = "client"
    SELF = "self"


class Game(OpenEnum):
    """The game of a trade; AssetPay sends the Steam app id as a string."""

    CS2 = "730"
    RUST = "252490"


class RevertedBy(OpenEnum):
    SUPPLIER = "supplier"
    USER = "user"


@attrs.frozen
class CancelResult:
    """A cancel the marketplace accepted. The item becomes ``reverted`` later (poll or use callbacks).

    Attributes:
        trade_id: the withdrawal trade.
        item_id: the item within it.
        status: ``CancelStatus.CANCELLED``; an unknown server value is kept.
        external_id: the merchant's own id of the item, when AssetPay returns one.
        request_id: AssetPay's request id of the successful attempt.
    """

    trade_id: uuid.UUID
    item_id: uuid.UUID
    status: CancelStatus
    external_id: str | None = None
    request_id: str | None = None


@attrs.frozen
class TradeItem:
    """One item of a trade; ``status`` exists for withdrawal items only."""

    id: str
    appid: int | None = None
    status: TradeStatus | None = None
    tradable: bool | None = None
    external_id: str | None = None
    name: str | None = None
    market_hash_name: str | None = None
    error: str | None = None
    offer: dict[str, Any] | None = None


@attrs.frozen
class Trade:
    """A deposit or withdrawal trade as ``GET /client/trades`` and callbacks carry it."""

    id: str
    type: TradeType
    status: TradeStatus
    items: tuple[TradeItem, ...] = ()
    game: Game | None = None
    source: TradeSource | None = None
    external_id: str | None = None
    merchant_id: str | None = None
    client_user_id: str | None = None
    client_steam_id: str | None = None
    client_trade_url: str | None = None
    offer_id: str | None = None
    total_price: float | None = None
    reverted_by: RevertedBy | None = None
    error: str | None = None
    active_at: dt.datetime | None = None
    auto_cancel_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    def item(self, item_id: str | uuid.UUID) -> TradeItem | None:
        """The item with that id, or None."""
        wanted = str(item_id).lower()
        return next((it for it in self.items if it.id.lower() == wanted), None)


@attrs.frozen
class TradePage:
    """One page of ``GET /client/trades``: newest first; ``next_cursor`` is None on the last page."""

    items: tuple[Trade, ...] = ()
    next_cursor: str | None = None
