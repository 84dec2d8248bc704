"""Building the sandbox's world: a trade and its items from the arguments of
[`Sandbox.add_trade`][assetpay_async.sandbox.Sandbox.add_trade], and every merchant, user and trade of a seed
document."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from assetpay_async._quota import Quota

from ._state import APPIDS, GameName, Merchant, SandboxItem, SandboxTrade, User

if TYPE_CHECKING:
    from ._sandbox import Sandbox

__all__ = ["SeededToken", "as_quota", "new_trade", "new_user", "populate", "seconds"]

_STEAM_ID_BASE: Final = 76561197960265728
_NAMES: Final = {
    GameName.CS2: (
        "AK-47 | Redline (Field-Tested)",
        "AWP | Asiimov (Battle-Scarred)",
        "M4A1-S | Printstream (Minimal Wear)",
        "Glock-18 | Fade (Factory New)",
        "Desert Eagle | Blaze (Factory New)",
    ),
    GameName.RUST: ("Tempered AK47", "Alien Red", "Big Grin", "Punishment Mask", "No Mercy AK47"),
}


@attrs.frozen
class SeededToken:
    """A client token of one seeded user (for the command line and demos)."""

    merchant_id: str
    user_id: str
    steam_id: str
    token: str = attrs.field(repr=False)


def as_quota(value: Quota | tuple[int, float]) -> Quota:
    """A [`Quota`][assetpay_async.Quota] or ``(limit, period_seconds)`` as a quota."""
    return value if isinstance(value, Quota) else Quota(*value)


def _stored_id(value: str) -> str:
    """UUIDs lowercase (as AssetPay renders them), other ids (listing ids) exactly as given."""
    try:
        return str(uuid.UUID(value)) if len(value) == 36 else value
    except ValueError:
        return value


def seconds(value: dt.timedelta | float) -> float:
    """A timedelta or a number of seconds, as seconds."""
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def new_user(sb: Sandbox, owner: Merchant, steam_id: str | None, trade_url: str | None) -> User:
    """A new end user of ``owner`` (not yet in the sandbox's users); a Steam id and a trade URL are drawn
    when not given."""
    if steam_id is None:
        steam_id = str(_STEAM_ID_BASE + sb._ids.randrange(1, 2**31))
    if trade_url is None:
        partner = int(steam_id) - _STEAM_ID_BASE if steam_id.isdigit() else 1
        token = f"{sb._ids.getrandbits(32):08x}"
        trade_url = f"https://steamcommunity.com/tradeoffer/new/?partner={partner}&token={token}"
    if (owner.id, steam_id) in sb._users_by_steam:
        raise ValueError(f"merchant {owner.id} already has a user with Steam id {steam_id}")
    return User(id=sb._new_id(), merchant_id=owner.id, steam_id=steam_id, trade_url=trade_url)


def _item_ids(
    sb: Sandbox, items: int, item_ids: Iterable[str] | None, *, listing_ids: bool
) -> list[str]:
    if item_ids is not None:
        ids = [_stored_id(i) for i in item_ids]
    elif listing_ids:
        ids = [f"{sb._ids.getrandbits(64):016x}" for _ in range(items)]
    else:
        ids = [sb._new_id() for _ in range(items)]
    if len(ids) != items:
        raise ValueError("item_ids must have one id per item")
    return ids


def _externals(ids: list[str], item_external_ids: bool | Iterable[str]) -> list[str | None]:
    if isinstance(item_external_ids, bool):
        return [f"ext-{i[:8]}" if item_external_ids else None for i in ids]
    externals: list[str | None] = list(item_external_ids)
    if len(externals) != len(ids):
        raise ValueError("item_external_ids must have one externalId per item")
    return externals


def new_trade(
    sb: Sandbox,
    user: User,
    *,
    game: GameName | str,
    items: int,
    age: dt.timedelta | float,
    type: str,
    status: str | None,
    item_status: str,
    external_id: str | None,
    item_external_ids: bool | Iterable[str],
    trade_id: str | None,
    item_ids: Iterable[str] | None,
    listing_ids: bool,
    source: str,
) -> SandboxTrade:
    """A new trade of ``user`` as [`Sandbox.add_trade`][assetpay_async.sandbox.Sandbox.add_trade]
    describes it (not yet in the sandbox's trades)."""
    if source not in ("client", "self"):
        raise ValueError("source must be 'client' or 'self'")
    if type not in ("withdraw", "deposit"):
        raise ValueError("type must be 'withdraw' or 'deposit'")
    if items < 1:
        raise ValueError("a trade has at least one item")
    kind = GameName(game)
    ids = _item_ids(sb, items, item_ids, listing_ids=listing_ids)
    externals = _externals(ids, item_external_ids)
    created = sb.clock.now() - seconds(age)
    return SandboxTrade(
        id=_stored_id(trade_id or sb._new_id()),
        type=type,
        merchant_id=user.merchant_id,
        user_id=user.id,
        steam_id=user.steam_id,
        trade_url=user.trade_url,
        game=kind,
        status=status or ("active" if type == "withdraw" else "completed"),
        items=[
            SandboxItem(
                id=item_id,
                appid=APPIDS[kind],
                status=item_status if type == "withdraw" else None,
                name=(name := sb._ids.choice(_NAMES[kind])),
                market_hash_name=name,
                price=round(sb._ids.uniform(0.5, 250.0), 2),
                external_id=item_external,
            )
            for item_id, item_external in zip(ids, externals, strict=True)
        ],
        created_at=created,
        updated_at=created,
        external_id=external_id,
        source=source,
    )


def populate(sandbox: Sandbox, document: Mapping[str, Any]) -> None:
    """Add the merchants, users and trades of a seed document (the format of
    [`Sandbox.from_seed`][assetpay_async.sandbox.Sandbox.from_seed]) to ``sandbox``."""
    for m in document.get("merchants", ()):
        merchant = sandbox.add_merchant(
            m.get("tier", "verified"),
            quotas={g: tuple(q) for g, q in m.get("quotas", {}).items()},
            callback_url=m.get("callback_url"),
            merchant_id=m.get("id"),
            secret=m.get("secret"),
            previous_secret=m.get("previous_secret"),
            api_key=m.get("api_key"),
        )
        for u in m.get("users", ()):
            user = sandbox.add_user(
                merchant, steam_id=u.get("steam_id"), trade_url=u.get("trade_url")
            )
            for t in u.get("trades", ()):
                sandbox.add_trade(
                    user,
                    game=t.get("game", "cs2"),
                    items=int(t.get("items", 1)),
                    age=dt.timedelta(minutes=float(t.get("age_minutes", 0))),
                    type=t.get("type", "withdraw"),
                    status=t.get("status"),
                    item_status=t.get("item_status", "active"),
                    external_id=t.get("external_id"),
                    trade_id=t.get("id"),
                    listing_ids=bool(t.get("listing_ids", False)),
                    item_external_ids=t.get("item_external_ids", False),
                    source=t.get("source", "client"),
                )
