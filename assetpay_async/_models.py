"""Values decoded from AssetPay's answers: frozen attrs classes and open enums.

AssetPay adds enum values over time; an unknown value decodes to a pseudo-member whose ``known`` is False
and whose ``value`` is the server's string, instead of failing.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, Self, TypeVar

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


_SPECIAL: Final = {"client_steam_id": "clientSteamID", "offer_id": "offerID"}
"""Field names whose camelCase (AssetPay's JSON key) is not the mechanical one."""


def camel(name: str) -> str:
    """AssetPay's JSON key of a model field: ``created_at`` -> ``createdAt``, ``offer_id`` -> ``offerID``."""
    if name in _SPECIAL:
        return _SPECIAL[name]
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return _to_dict(value)
    return value


def _to_dict(model: Any) -> dict[str, Any]:
    """``model`` as JSON-ready data with AssetPay's keys; None fields and ``raw`` left out."""
    out: dict[str, Any] = {}
    for field in attrs.fields(type(model)):
        value = getattr(model, field.name)
        if field.name == "raw" or value is None:
            continue
        out[camel(field.name)] = _json_value(value)
    return out


def _raw_field() -> Any:
    return attrs.field(default=None, eq=False, repr=False, kw_only=True)


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data with AssetPay's keys (``tradeId``, ...); absent values left out."""
        return _to_dict(self)


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data with AssetPay's keys; absent values left out."""
        return _to_dict(self)


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data with AssetPay's keys (rows included); absent values left out."""
        return _to_dict(self)


@attrs.frozen
class TradeItem:
    """One item of a trade; ``status`` exists for withdrawal items only.

    Every field but ``id`` is optional, as in AssetPay's schema. ``raw`` is the item's JSON as AssetPay sent
    it (fields newer than this SDK included); it takes no part in equality or ``repr``.

    Attributes:
        asset_id: the Steam asset id.
        amount: how many of this item (stackables).
        market_price: the item's market price in USD.
        offer: the marketplace offer (``price`` and more), as sent.
    """

    id: str
    appid: int | None = None
    status: TradeStatus | None = None
    tradable: bool | None = None
    external_id: str | None = None
    name: str | None = None
    market_hash_name: str | None = None
    error: str | None = None
    offer: dict[str, Any] | None = None
    asset_id: str | None = None
    amount: int | None = None
    market_price: float | None = None
    raw: Mapping[str, Any] | None = _raw_field()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data with AssetPay's keys; absent values and ``raw`` left out."""
        return _to_dict(self)


@attrs.frozen
class Trade:
    """A deposit or withdrawal trade as AssetPay's reads and callbacks carry it.

    ``created_at`` is required (a trade without ``createdAt`` is a broken answer, not the oldest trade);
    everything else the schema makes optional is optional here. ``raw`` is the trade's JSON as AssetPay sent
    it (fields newer than this SDK included); it takes no part in equality or ``repr``.

    Attributes:
        external_client_user_id: the ``clientId`` the merchant gave the end user's token.
        pre_credit: money credited before delivery (USD), when AssetPay sends it.
        pending_credit: money awaiting credit (USD), when AssetPay sends it.
        hold_end_date: when a Steam trade hold ends.
        is_instant: whether the trade was instant.
        active_at: when the trade became active.
        auto_cancel_at: when AssetPay cancels it unless delivered.
    """

    id: str
    type: TradeType
    status: TradeStatus
    items: tuple[TradeItem, ...] = ()
    game: Game | None = None
    source: TradeSource | None = None
    external_id: str | None = None
    merchant_id: str | None = None
    client_user_id: str | None = None
    external_client_user_id: str | None = None
    client_steam_id: str | None = None
    client_trade_url: str | None = None
    offer_id: str | None = None
    total_price: float | None = None
    pre_credit: float | None = None
    pending_credit: float | None = None
    hold_end_date: dt.datetime | None = None
    is_instant: bool | None = None
    reverted_by: RevertedBy | None = None
    error: str | None = None
    active_at: dt.datetime | None = None
    auto_cancel_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    created_at: dt.datetime = attrs.field(kw_only=True)
    raw: Mapping[str, Any] | None = _raw_field()

    def item(self, ref: str | uuid.UUID) -> TradeItem | None:
        """The item whose id, else whose externalId, is ``ref``; None when there is none.

        UUIDs compare in any case and form; other strings exactly (externalIds are case-sensitive).
        """
        return _find(self.items, ref, lambda it: (it.id, it.external_id))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data with AssetPay's keys (items included); absent values and ``raw`` left out."""
        return _to_dict(self)


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
