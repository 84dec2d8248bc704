"""What an accepted request does to the sandbox's world beyond its answer.

The rules (``_rules.py``, ``_merchant_scope.py``) decide the answer; these functions run them against one
[`Sandbox`][assetpay_async.sandbox.Sandbox] and carry out the side effects: an accepted cancel reverts the
item after the sandbox's delay and sends the callback, a merchant's client authentication creates the user
and mints a token that was never revoked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from . import _rules as rules
from ._state import TERMINAL, Merchant, SandboxItem, SandboxTrade, User, trade_status_after
from ._tokens import TokenClaims

if TYPE_CHECKING:
    from ._sandbox import Sandbox

__all__ = [
    "authenticate_client",
    "cancel",
    "cancel_trade",
    "merchant_by_key",
    "secure_cancel",
    "user_for",
]


def user_for(sb: Sandbox, claims: TokenClaims) -> User:
    """The user a valid client token names; a token the merchant minted for a Steam user the sandbox has
    not seen creates that user."""
    user = sb._users_by_steam.get((claims.merchant_id, claims.steam_id))
    if user is None:
        user = sb.add_user(claims.merchant_id, steam_id=claims.steam_id, trade_url=claims.trade_url)
    return user


def merchant_by_key(sb: Sandbox, api_key: str) -> Merchant | None:
    """The merchant whose API key is ``api_key``."""
    return next((m for m in sb.merchants.values() if m.api_key == api_key), None)


def authenticate_client(
    sb: Sandbox, merchant: Merchant, steam_id: str, trade_url: str, extra: Mapping[str, Any]
) -> rules.Answer:
    """``POST /auth/authenticate-client``: the user's token (the user is created when new)."""
    user = sb._users_by_steam.get((merchant.id, steam_id))
    if user is None:
        user = sb.add_user(merchant, steam_id=steam_id, trade_url=trade_url)
    minted = attrs.evolve(user, trade_url=trade_url) if user.trade_url != trade_url else user
    sb.tokens_issued += 1
    issued_at = sb.clock.wall()
    token = sb.token(minted, claims=extra, issued_at=issued_at)
    while (
        token.rpartition(".")[2] in sb._revocations.revoked
    ):  # the same claims a second later: a new token
        issued_at += dt.timedelta(seconds=1)
        token = sb.token(minted, claims=extra, issued_at=issued_at)
    return rules.Answer.ok({"token": token})


def secure_cancel(
    sb: Sandbox, merchant: Merchant, trade_id: str, item_id: str | None
) -> rules.Answer:
    """``/secure/buy`` cancels: the merchant's own buys only, run as the buy's owner would."""
    trade = rules.find_trade(sb.trades, merchant.id, trade_id)
    if trade is None or trade.source != "self":
        return rules.Answer.fail(404, 21, "TRADE_NOT_FOUND", f"Trade {trade_id} not found")
    owner = sb.users[trade.user_id]
    if item_id is None:
        return cancel_trade(sb, owner, trade_id)
    return cancel(sb, owner, trade_id, item_id)


def _marketplace_refuses(sb: Sandbox, item: SandboxItem) -> bool:
    if item.refuse_cancel:
        return True
    return sb.marketplace_refusal > 0 and sb._market.random() < sb.marketplace_refusal


def cancel(sb: Sandbox, user: User, trade_id: str, item_id: str) -> rules.Answer:
    """One item's cancel by ``user``; an accepted one reverts later."""
    outcome = rules.cancel_item(
        sb.trades,
        user,
        trade_id,
        item_id,
        now=sb.clock.now(),
        behavior=sb.behavior,
        marketplace_refuses=lambda item: _marketplace_refuses(sb, item),
    )
    _schedule_reverts(sb, user, trade_id, () if outcome.accepted is None else (outcome.accepted,))
    return outcome.answer


def cancel_trade(sb: Sandbox, user: User, trade_id: str) -> rules.Answer:
    """A whole trade's cancel by ``user``; every accepted item reverts later."""
    outcome = rules.cancel_trade(
        sb.trades,
        user,
        trade_id,
        now=sb.clock.now(),
        behavior=sb.behavior,
        marketplace_refuses=lambda item: _marketplace_refuses(sb, item),
    )
    _schedule_reverts(sb, user, trade_id, outcome.accepted)
    return outcome.answer


def _schedule_reverts(
    sb: Sandbox, user: User, trade_id: str, accepted: Iterable[SandboxItem]
) -> None:
    """Accepted items are pending until the supplier reverts them, after the sandbox's delay."""
    trade = rules.find_trade(sb.trades, user.merchant_id, trade_id)
    if trade is None:  # (the rules just found it)
        return
    for item in accepted:
        item.cancel_pending = True
        sb._spawn(_revert_later(sb, trade, item))


async def _revert_later(sb: Sandbox, trade: SandboxTrade, item: SandboxItem) -> None:
    await sb.clock.sleep_until(sb.clock.now() + sb.revert_delay)
    item.cancel_pending = False
    if item.status in TERMINAL:  # something else finished it meanwhile
        return
    item.status = "reverted"
    trade.reverted_by = "supplier"
    trade.status = trade_status_after(trade)
    trade.updated_at = sb.clock.now()
    merchant = sb.merchants[trade.merchant_id]
    if merchant.callback_url is not None:
        await sb._callbacks.deliver(merchant, sb.render(trade))
