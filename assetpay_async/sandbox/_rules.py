"""AssetPay's rules as pure functions: given the world and a caller, the answer (and the effect to apply).

Nothing here touches the network or a clock: time is passed in, effects are returned.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from ._behavior import RustCancelAnswer, SandboxBehavior
from ._state import APPIDS, TERMINAL, GameName, SandboxItem, SandboxTrade, User, same_ref

__all__ = [
    "CANCEL_MIN_AGE",
    "Answer",
    "CancelOutcome",
    "TradeCancelOutcome",
    "cancel_item",
    "cancel_trade",
    "find_trade",
    "get_trade",
    "list_page",
    "list_trades",
]

CANCEL_MIN_AGE: Final = 30 * 60.0
"""An item can be cancelled once its trade is this many seconds old."""

UNSUPPORTED_CODE: Final = 29
"""The sandbox's guess at TRADE_CANCEL_UNSUPPORTED's code (unpublished)."""


@attrs.frozen
class Answer:
    """A response before it gets its request id: a success ``data`` or an error object."""

    status: int
    data: Any = None
    error: Mapping[str, Any] | None = None

    @classmethod
    def ok(cls, data: Any) -> Answer:
        return cls(200, data)

    @classmethod
    def fail(
        cls,
        status: int,
        code: int,
        key: str,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
    ) -> Answer:
        error: dict[str, Any] = {"code": code, "key": key, "message": message}
        if fields:
            error["fields"] = dict(fields)
        return cls(status, error=error)

    @property
    def key(self) -> str | None:
        return None if self.error is None else str(self.error["key"])

    def envelope(self, request_id: str) -> dict[str, Any]:
        """The JSON body."""
        if self.error is None:
            return {"requestId": request_id, "success": True, "data": self.data}
        return {"requestId": request_id, "success": False, "error": dict(self.error)}


def validation_failed(behavior: SandboxBehavior, fields: Mapping[str, str]) -> Answer:
    return Answer.fail(
        behavior.validation_status, 1001, "VALIDATION_FAILED", "Validation failed", fields=fields
    )


MAX_ITEM_REF: Final = 128
"""``itemId``: 1-128 characters (the OpenAPI document); ``tradeId`` only needs one."""


def _ref_problems(trade_ref: str, item_ref: str | None) -> dict[str, str]:
    bad: dict[str, str] = {}
    if not trade_ref.strip():
        bad["tradeId"] = "must not be empty"
    if item_ref is not None and not (item_ref.strip() and len(item_ref) <= MAX_ITEM_REF):
        bad["itemId"] = f"must be 1 to {MAX_ITEM_REF} characters"
    return bad


def _trade_not_found(trade_id: str) -> Answer:
    return Answer.fail(404, 21, "TRADE_NOT_FOUND", f"Trade {trade_id} not found")


def _forbidden() -> Answer:
    return Answer.fail(
        403, 1300, "FORBIDDEN", "This trade does not belong to the authenticated user"
    )


def find_trade(
    trades: Mapping[str, SandboxTrade], merchant_id: str, ref: str
) -> SandboxTrade | None:
    """The merchant's trade whose id, else whose externalId, is ``ref`` (UUIDs in any case)."""
    trade = trades.get(ref) or trades.get(ref.lower())  # UUIDs are stored lowercase
    if trade is not None and trade.merchant_id == merchant_id and same_ref(ref, trade.id):
        return trade
    return next(
        (
            t
            for t in trades.values()
            if t.merchant_id == merchant_id and same_ref(ref, t.external_id)
        ),
        None,
    )


def _find_trade(
    trades: Mapping[str, SandboxTrade], caller: User, trade_id: str
) -> SandboxTrade | Answer:
    trade = find_trade(trades, caller.merchant_id, trade_id)
    # Another merchant's trade is not revealed to exist.
    if trade is None:
        return _trade_not_found(trade_id)
    if trade.user_id != caller.id:
        return _forbidden()
    return trade


def _cancel_target(
    trades: Mapping[str, SandboxTrade],
    caller: User,
    trade_id: str,
    item_id: str | None,
    behavior: SandboxBehavior,
) -> SandboxTrade | Answer:
    """The caller's trade a cancel names, or the answer refusing the refs or the trade (the first rules)."""
    bad = _ref_problems(trade_id, item_id)
    if bad:
        return validation_failed(behavior, bad)
    return _find_trade(trades, caller, trade_id)


@attrs.frozen
class CancelOutcome:
    """The answer to a cancel, and the item whose revert must now be scheduled (None: nothing new)."""

    answer: Answer
    accepted: SandboxItem | None = None


def cancel_item(
    trades: Mapping[str, SandboxTrade],
    caller: User,
    trade_id: str,
    item_id: str,
    *,
    now: float,
    behavior: SandboxBehavior,
    marketplace_refuses: Callable[[SandboxItem], bool],
) -> CancelOutcome:
    """Apply the contract's rules, in order: ids, trade, ownership, withdrawal, item, game, terminal, age,
    pending, marketplace.

    A second cancel of an item whose revert is pending answers 200 again and schedules nothing: cancel is
    repeatable and cannot move money twice.
    """
    found = _cancel_target(trades, caller, trade_id, item_id, behavior)
    if isinstance(found, Answer):
        return CancelOutcome(found)
    trade = found
    cancel_status = behavior.cancel_error_status

    def not_cancellable(why: str) -> CancelOutcome:
        return CancelOutcome(Answer.fail(cancel_status, 28, "TRADE_NOT_CANCELLABLE", why))

    if trade.type != "withdraw":
        return not_cancellable("Only withdrawal items can be cancelled")
    item = trade.item(item_id)
    if item is None:
        return CancelOutcome(
            Answer.fail(404, 2201, "ITEM_NOT_FOUND", f"No item {item_id} under trade {trade.id}")
        )
    refusal = _item_refusal(trade, item, now=now, behavior=behavior)
    if refusal is not None:
        return CancelOutcome(refusal)
    data: dict[str, Any] = {"tradeId": trade.id, "itemId": item.id, "status": "cancelled"}
    if item.external_id is not None:
        data["externalId"] = item.external_id
    if item.cancel_pending:
        return CancelOutcome(Answer.ok(data))
    if marketplace_refuses(item):
        return not_cancellable("The marketplace rejected the cancellation")
    return CancelOutcome(Answer.ok(data), accepted=item)


def _item_refusal(
    trade: SandboxTrade, item: SandboxItem, *, now: float, behavior: SandboxBehavior
) -> Answer | None:
    """Why this withdrawal item cannot be cancelled now (game, terminal, age), or None."""
    cancel_status = behavior.cancel_error_status
    if trade.game is GameName.RUST or item.appid != APPIDS[GameName.CS2]:
        if behavior.rust_cancel is RustCancelAnswer.UNSUPPORTED:
            return Answer.fail(
                cancel_status,
                UNSUPPORTED_CODE,
                "TRADE_CANCEL_UNSUPPORTED",
                "Rust withdrawals cannot be cancelled",
            )
        return Answer.fail(
            cancel_status, 28, "TRADE_NOT_CANCELLABLE", "Rust withdrawals cannot be cancelled"
        )
    if item.status in TERMINAL:
        return Answer.fail(
            cancel_status, 28, "TRADE_NOT_CANCELLABLE", f"Item is already {item.status}"
        )
    if now - trade.created_at < CANCEL_MIN_AGE:
        return Answer.fail(
            cancel_status,
            27,
            "TRADE_CANCEL_TOO_SOON",
            "Items can be cancelled 30 minutes after creation",
        )
    return None


@attrs.frozen
class TradeCancelOutcome:
    """The answer to a whole-trade cancel, and the items whose revert must now be scheduled."""

    answer: Answer
    accepted: tuple[SandboxItem, ...] = ()


def cancel_trade(
    trades: Mapping[str, SandboxTrade],
    caller: User,
    trade_id: str,
    *,
    now: float,
    behavior: SandboxBehavior,
    marketplace_refuses: Callable[[SandboxItem], bool],
) -> TradeCancelOutcome:
    """``POST /client/trading/withdraw/{tradeId}/cancel``: every undelivered item, best effort.

    The items tried (``requested``) are those not terminal yet; each gets a row, cancelled or failed with
    the key its own cancel would have answered. A partial result is still a 200.
    """
    found = _cancel_target(trades, caller, trade_id, None, behavior)
    if isinstance(found, Answer):
        return TradeCancelOutcome(found)
    trade = found
    if trade.type != "withdraw":
        return TradeCancelOutcome(
            Answer.fail(
                behavior.cancel_error_status,
                28,
                "TRADE_NOT_CANCELLABLE",
                "Only withdrawal trades can be cancelled",
            )
        )
    rows: list[dict[str, Any]] = []
    accepted: list[SandboxItem] = []
    for item in trade.items:
        if item.status in TERMINAL:
            continue
        row: dict[str, Any] = {"itemId": item.id}
        if item.external_id is not None:
            row["externalId"] = item.external_id
        refusal = _item_refusal(trade, item, now=now, behavior=behavior)
        if refusal is None and not item.cancel_pending and marketplace_refuses(item):
            refusal = Answer.fail(
                behavior.cancel_error_status, 28, "TRADE_NOT_CANCELLABLE", "refused"
            )
        if refusal is not None:
            row.update(status="failed", reason=refusal.key)
        else:
            row["status"] = "cancelled"
            if not item.cancel_pending:
                accepted.append(item)
        rows.append(row)
    cancelled = sum(1 for r in rows if r["status"] == "cancelled")
    data = {
        "tradeId": trade.id,
        "requested": len(rows),
        "cancelled": cancelled,
        "failed": len(rows) - cancelled,
        "items": rows,
    }
    return TradeCancelOutcome(Answer.ok(data), accepted=tuple(accepted))


def get_trade(
    trades: Mapping[str, SandboxTrade],
    caller: User,
    trade_id: str,
    *,
    behavior: SandboxBehavior,
    render: Callable[[SandboxTrade], dict[str, Any]],
) -> Answer:
    """``GET /client/trades/{id}``: the caller's trade, by id or externalId."""
    if not trade_id.strip():
        return validation_failed(behavior, {"id": "must not be empty"})
    found = _find_trade(trades, caller, trade_id)
    return found if isinstance(found, Answer) else Answer.ok(render(found))


def _encode_cursor(trade_id: str) -> str:
    return base64.urlsafe_b64encode(trade_id.encode()).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> str | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return text or None


_GAMES: Final = {"730": GameName.CS2, "252490": GameName.RUST}
DEFAULT_GAME: Final = "730"


def list_trades(
    trades: Iterable[SandboxTrade],
    caller: User,
    query: Mapping[str, str],
    *,
    behavior: SandboxBehavior,
    render: Callable[[SandboxTrade], dict[str, Any]],
) -> Answer:
    """``GET /client/trades``: the caller's trades, newest first, a page at a time (see `list_page`)."""
    mine = [t for t in trades if t.user_id == caller.id and t.merchant_id == caller.merchant_id]
    return list_page(mine, query, behavior=behavior, render=render)


def list_page(
    candidates: Iterable[SandboxTrade],
    query: Mapping[str, str],
    *,
    behavior: SandboxBehavior,
    render: Callable[[SandboxTrade], dict[str, Any]],
) -> Answer:
    """One page of ``candidates``, newest first.

    Query: ``limit`` (1-100, default 20), ``cursor`` (``nextCursor`` of the previous page), ``type``
    (``deposit``/``withdraw``), ``game`` (``730``/``252490``; AssetPay's default ``730``: a call without it
    lists CS2 trades only).
    """
    fields: dict[str, str] = {}
    limit = 20
    if "limit" in query:
        text = query["limit"]
        if not text.isdigit() or not 1 <= int(text) <= 100:
            fields["limit"] = "must be an integer from 1 to 100"
        else:
            limit = int(text)
    kind = query.get("type")
    if kind is not None and kind not in ("deposit", "withdraw"):
        fields["type"] = "must be one of: deposit, withdraw"
    game = query.get("game", DEFAULT_GAME)
    if game not in _GAMES:
        fields["game"] = "must be one of: 730, 252490"
    after: str | None = None
    if "cursor" in query:
        after = _decode_cursor(query["cursor"])
        if after is None:
            fields["cursor"] = "is not a cursor returned by this endpoint"
    if fields:
        return validation_failed(behavior, fields)
    mine = sorted(
        (t for t in candidates if (kind is None or t.type == kind) and t.game is _GAMES[game]),
        key=lambda t: (t.created_at, t.id),
        reverse=True,
    )
    if after is not None:
        position = next((i for i, t in enumerate(mine) if t.id == after), None)
        if position is None:
            return validation_failed(
                behavior, {"cursor": "is not a cursor returned by this endpoint"}
            )
        mine = mine[position + 1 :]
    page = mine[:limit]
    next_cursor = _encode_cursor(page[-1].id) if len(mine) > limit else None
    return Answer.ok({"items": [render(t) for t in page], "nextCursor": next_cursor})
