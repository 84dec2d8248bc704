"""The sandbox's world: merchants, their end users, trades and items (mutable, owned by one Sandbox).

Tests may change these objects directly (e.g. ``trade.items[0].status = "completed"``); the rendering
functions turn them into AssetPay's JSON shapes (camelCase, trade status spelled ``canceled``).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

import attrs

from assetpay_async._quota import MerchantTier, Quota, RouteGroup, default_quota

from ._clock import isoformat_ms

__all__ = [
    "APPIDS",
    "TERMINAL",
    "GameName",
    "Merchant",
    "SandboxItem",
    "SandboxTrade",
    "User",
    "render_item",
    "render_trade",
    "same_ref",
    "trade_status_after",
]

TERMINAL = frozenset({"completed", "failed", "canceled", "declined", "reverted"})
"""Terminal trade and item statuses."""


class GameName(enum.StrEnum):
    CS2 = "cs2"
    RUST = "rust"


APPIDS = {GameName.CS2: 730, GameName.RUST: 252490}


@attrs.define(repr=False)
class Merchant:
    """A merchant account.

    Attributes:
        id: the merchant id (``merchantId`` in tokens).
        secret: the API secret: signs client tokens and callbacks.
        tier: verified or unverified; sets the default quotas.
        callback_url: where trade callbacks go (None: no callbacks).
        previous_secret: a secret being rotated out: callbacks then also carry ``s1``.
        quotas: the quota of each route group (the tier's unless overridden).
        api_key: the API key (``ap_...``) the merchant scope (``/secure/*``, ``/auth/*``) authenticates.
    """

    id: str
    secret: str
    tier: MerchantTier
    callback_url: str | None = None
    previous_secret: str | None = None
    quotas: dict[RouteGroup, Quota] = attrs.field(factory=dict)
    api_key: str = ""

    def quota(self, group: RouteGroup) -> Quota:
        """The quota this merchant gets for ``group``."""
        return self.quotas.get(group) or default_quota(self.tier, group)

    def __repr__(self) -> str:  # the secret stays out
        return f"<Merchant {self.id} tier={self.tier.value} callback_url={self.callback_url!r}>"


@attrs.define
class User:
    """One end user (Steam account) of a merchant; a client token is minted per user."""

    id: str
    merchant_id: str
    steam_id: str
    trade_url: str


@attrs.define
class SandboxItem:
    """An item of a trade.

    Attributes:
        refuse_cancel: the marketplace refuses to cancel this item (TRADE_NOT_CANCELLABLE).
        cancel_pending: a cancel was accepted and the revert has not happened yet (not rendered).
    """

    id: str
    appid: int
    status: str | None
    name: str
    market_hash_name: str
    price: float
    external_id: str | None = None
    refuse_cancel: bool = False
    cancel_pending: bool = False


@attrs.define
class SandboxTrade:
    """A deposit or withdrawal trade; ``created_at``/``updated_at`` are sandbox seconds (may be negative)."""

    id: str
    type: str
    merchant_id: str
    user_id: str
    steam_id: str
    trade_url: str
    game: GameName
    status: str
    items: list[SandboxItem]
    created_at: float
    updated_at: float
    external_id: str | None = None
    reverted_by: str | None = None
    source: str = "client"
    """``client`` (an end user's trade) or ``self`` (the merchant's own buy, the ``/secure/*`` scope)."""

    def item(self, ref: str) -> SandboxItem | None:
        """The item whose id, else whose externalId, is ``ref`` (UUIDs in any case), or None."""
        by_id = next((it for it in self.items if same_ref(ref, it.id)), None)
        if by_id is not None:
            return by_id
        return next((it for it in self.items if same_ref(ref, it.external_id)), None)


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def same_ref(ref: str, value: str | None) -> bool:
    """``value`` is what ``ref`` names: the same string, or the same UUID in another case."""
    if value is None:
        return False
    return value == ref or (ref.lower() == value.lower() and _is_uuid(ref))


def trade_status_after(trade: SandboxTrade) -> str:
    """The trade status its items imply: unchanged while any item is in flight.

    Once every item is terminal: ``reverted`` if every item was reverted or canceled, ``completed`` if any was
    delivered, else the first item's status.
    """
    statuses = [it.status for it in trade.items if it.status is not None]
    if not statuses or any(s not in TERMINAL for s in statuses):
        return trade.status
    if all(s in ("reverted", "canceled") for s in statuses):
        return "reverted"
    if "completed" in statuses:
        return "completed"
    return statuses[0]


def render_item(item: SandboxItem, trade_type: str) -> dict[str, Any]:
    """The Item JSON of AssetPay's OpenAPI document (``status`` on withdrawal items only)."""
    doc: dict[str, Any] = {
        "id": item.id,
        "appid": item.appid,
        "tradable": True,
        "name": item.name,
        "marketHashName": item.market_hash_name,
        "offer": {"price": item.price},
    }
    if item.external_id is not None:
        doc["externalId"] = item.external_id
    if trade_type == "withdraw" and item.status is not None:
        doc["status"] = item.status
    return doc


def render_trade(trade: SandboxTrade, start: dt.datetime) -> dict[str, Any]:
    """The Trade JSON of AssetPay's OpenAPI document; ``start`` is the wall-clock datetime of sandbox time 0."""

    def when(at: float) -> str:
        return isoformat_ms(start + dt.timedelta(seconds=at))

    doc: dict[str, Any] = {
        "id": trade.id,
        "type": trade.type,
        "source": trade.source,
        "merchantId": trade.merchant_id,
        "clientUserId": trade.user_id,
        "clientSteamID": trade.steam_id,
        "clientTradeUrl": trade.trade_url,
        "status": trade.status,
        "game": str(APPIDS[trade.game]),
        "items": [render_item(it, trade.type) for it in trade.items],
        "totalPrice": round(sum(it.price for it in trade.items), 2),
        "createdAt": when(trade.created_at),
        "updatedAt": when(trade.updated_at),
    }
    if trade.external_id is not None:
        doc["externalId"] = trade.external_id
    if trade.reverted_by is not None:
        doc["revertedBy"] = trade.reverted_by
    return doc
