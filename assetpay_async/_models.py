"""Values decoded from AssetPay's answers: frozen attrs classes and open enums.

AssetPay adds enum values over time; an unknown value decodes to a pseudo-member whose ``known`` is False
and whose ``value`` is the server's string, instead of failing.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable
from typing import Any, Self, TypeVar

import attrs

from ._refs import ref_uuid

R = TypeVar("R")

__all__ = [
    "CancelResult",
    "CancelStatus",
    "Game",
    "OpenEnum",
    "RevertedBy",
    "Trade",
    "TradeCancelItem",
    "TradeCancelResult",
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
    """``status`` of a cancel result or of one row of a whole-trade cancel (spelled ``cancelled``, unlike
    trade statuses)."""

    CANCELLED = "cancelled"
    FAILED = "failed"
    """Only in a whole-trade cancel's rows: this item was not cancelled (``reason`` says why)."""


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
        trade_id: AssetPay's id of the withdrawal trade, as AssetPay sent it.
        item_id: AssetPay's id of the item, as sent (a CS2 item's id is its marketplace listing id, which
            need not be a UUID).
        status: ``CancelStatus.CANCELLED``; an unknown server value is kept.
        external_id: the merchant's own id of the item, when AssetPay returns one.
        request_id: AssetPay's request id of the successful attempt.
    """

    trade_id: str
    item_id: str
    status: CancelStatus
    external_id: str | None = None
    request_id: str | None = None


@attrs.frozen
class TradeCancelItem:
    """One item of a whole-trade cancel.

    Attributes:
        item_id: AssetPay's id of the item, as sent.
        status: ``CANCELLED`` or ``FAILED``; an unknown server value is kept.
        external_id: the merchant's own id of the item, when AssetPay returns one.
        reason: for a failed item, AssetPay's stable error key (e.g. ``TRADE_CANCEL_TOO_SOON``).
    """

    item_id: str
    status: CancelStatus
    external_id: str | None = None
    reason: str | None = None

    @property
    def cancelled(self) -> bool:
        """True when the marketplace accepted the cancel of this item."""
        return self.status is CancelStatus.CANCELLED


@attrs.frozen
class TradeCancelResult:
    """The answer to a whole-trade cancel: best effort, so some items may have failed.

    Attributes:
        trade_id: AssetPay's id of the trade, as sent.
        requested: how many items AssetPay tried to cancel (the still undelivered ones).
        cancelled: how many it cancelled.
        failed: how many it could not cancel.
        items: one row per item tried.
        request_id: AssetPay's request id.
    """

    trade_id: str
    requested: int
    cancelled: int
    failed: int
    items: tuple[TradeCancelItem, ...] = ()
    request_id: str | None = None

    def item(self, ref: str | uuid.UUID) -> TradeCancelItem | None:
        """The row of the item whose id, else whose externalId, is ``ref``; None when there is none."""
        return _find(self.items, ref, lambda row: (row.item_id, row.external_id))


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

    def item(self, ref: str | uuid.UUID) -> TradeItem | None:
        """The item whose id, else whose externalId, is ``ref``; None when there is none.

        UUIDs compare in any case and form; other strings exactly (externalIds are case-sensitive).
        """
        return _find(self.items, ref, lambda it: (it.id, it.external_id))


def _find(
    rows: tuple[R, ...], ref: str | uuid.UUID, ids: Callable[[R], tuple[str, str | None]]
) -> R | None:
    text = str(ref) if isinstance(ref, uuid.UUID) else ref
    wanted = ref_uuid(text)

    def same(value: str | None) -> bool:
        if value is None:
            return False
        return value == text or (wanted is not None and ref_uuid(value) == wanted)

    by_id = next((row for row in rows if same(ids(row)[0])), None)
    if by_id is not None:
        return by_id
    return next((row for row in rows if same(ids(row)[1])), None)


@attrs.frozen
class TradePage:
    """One page of ``GET /client/trades``: newest first; ``next_cursor`` is None on the last page."""

    items: tuple[Trade, ...] = ()
    next_cursor: str | None = None
