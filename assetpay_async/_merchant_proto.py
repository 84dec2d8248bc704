"""The merchant scope's requests and answers as plain functions (no I/O), beside ``_protocol``'s.

Routes (``api-key`` header): ``POST /auth/authenticate-client``, ``GET /secure/trades``,
``GET /secure/trades/{ref,ref,...}``, ``POST /secure/buy/{tradeId}/items/{itemId}/cancel`` and
``POST /secure/buy/{tradeId}/cancel``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from typing import Final

from . import _protocol as proto
from ._errors import InvalidRequestError, InvalidResponseError
from ._minting import EndUser
from ._models import CancelResult, Trade, TradeCancelResult, TradePage
from ._quota import RouteGroup
from ._refs import check_ref, check_segment, names, path_segment
from ._tokens import SecretToken

__all__ = [
    "MAX_REFS",
    "authenticate_call",
    "buy_cancel_call",
    "buy_cancel_item_call",
    "chunks",
    "decode_token",
    "decode_trades_by_refs",
    "secure_list_call",
    "secure_refs_call",
    "unique_refs",
]

MAX_REFS: Final = 100
"""Refs one ``GET /secure/trades/{refs}`` may carry."""


def authenticate_call(user: EndUser) -> proto.Call[SecretToken]:
    """``POST /auth/authenticate-client`` for ``user`` (a JSON body; repeatable: it only issues a token)
    and its decoder, `decode_token`."""
    body = json.dumps(user.authenticate_body(), separators=(",", ":")).encode()
    spec = proto.RequestSpec("POST", "/auth/authenticate-client", RouteGroup.AUTH, body=body)
    return proto.Call(spec, decode_token)


def decode_token(envelope: proto.Envelope, status: int) -> SecretToken:
    """The token of ``/auth/authenticate-client``'s ``{"token": ...}``.

    Raises:
        InvalidResponseError: no token string, or one an HTTP header cannot carry (its text never shown).
    """
    data = envelope.data
    token = data.get("token") if isinstance(data, dict) else None
    if isinstance(token, str):
        try:
            return SecretToken(token)
        except InvalidRequestError:
            pass
    error = InvalidResponseError(
        "authenticate-client answered without a usable token",
        http_status=status,
        content_type="application/json",
        snippet="<redacted>",
        request_id=envelope.request_id,
    )
    raise error


def unique_refs(refs: Iterable[object]) -> list[str]:
    """Each ref checked (as every ref of the SDK) and refused if it holds a comma; duplicates dropped.

    Raises:
        InvalidRequestError: a bad ref or one with a comma (the route separates refs by raw commas), naming
            its position; before anything is sent.
    """
    if isinstance(refs, str | bytes):
        raise InvalidRequestError("refs must be an iterable of refs, not one string")
    seen: dict[str, None] = {}
    for index, value in enumerate(refs):
        try:
            ref = check_ref(value, "ref")
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"ref {index}: {exc}") from None
        if "," in ref:
            raise InvalidRequestError(
                f"ref {index} holds a comma, which GET /secure/trades/{{refs}} cannot carry"
            )
        seen.setdefault(ref, None)
    return list(seen)


def chunks(refs: Sequence[str], size: int = MAX_REFS) -> list[list[str]]:
    """``refs`` in requests of at most ``size``."""
    return [list(refs[i : i + size]) for i in range(0, len(refs), size)]


def secure_refs_call(refs: Sequence[str]) -> proto.Call[list[Trade]]:
    """``GET /secure/trades/{refs}`` (refs checked by `unique_refs`): each ref percent-encoded, joined by
    raw commas (1 to 100 refs), and its decoder, which refuses a trade no ref names."""
    if not 1 <= len(refs) <= MAX_REFS:
        raise InvalidRequestError(f"one request carries 1 to {MAX_REFS} refs, got {len(refs)}")
    joined = ",".join(path_segment(ref) for ref in refs)
    spec = proto.RequestSpec("GET", f"/secure/trades/{joined}", RouteGroup.MERCHANT_READ)
    return proto.Call(spec, functools.partial(decode_trades_by_refs, refs=refs))


def decode_trades_by_refs(
    envelope: proto.Envelope, status: int, *, refs: Sequence[str]
) -> list[Trade]:
    """The trades of ``GET /secure/trades/{refs}``: one trade for one ref, an array for more.

    A trade no ref of the request names is refused (not ambiguous: a read).

    Raises:
        InvalidResponseError: a bad shape, or a trade that was not asked for.
    """
    data = envelope.data
    many = data if isinstance(data, list) else [data]
    if len(refs) == 1 and isinstance(data, list):
        many = data  # tolerate an array for one ref too
    trades = [
        proto.structure(item, Trade, what="trade", status=status, request_id=envelope.request_id)
        for item in many
    ]
    for trade in trades:
        if not any(names(ref, trade.id, trade.external_id) is not False for ref in refs):
            error = proto._mismatch(
                f"asked for {len(refs)} refs, got trade {trade.id!r} which none names",
                trade.raw,
                status,
                envelope.request_id,
            )
            error.ambiguous = False
            raise error
    return trades


def secure_list_call(
    *, cursor: str | None = None, limit: int = 100, type: str | None = None, game: str = "730"
) -> proto.Call[TradePage]:
    """``GET /secure/trades``: the query of ``GET /client/trades``, checked the same way; a page of it."""
    spec = proto.list_trades_request(cursor=cursor, limit=limit, type=type, game=game)
    secure = proto.RequestSpec("GET", "/secure/trades", RouteGroup.MERCHANT_READ, spec.params)
    return proto.Call(secure, proto.decode_trade_page)


def buy_cancel_item_call(trade_id: object, item_id: object) -> proto.Call[CancelResult]:
    """``POST /secure/buy/{tradeId}/items/{itemId}/cancel`` and the client scope's checked decoder: the
    item-cancel bucket (shared, assumed)."""
    trade, trade_segment = check_segment(trade_id, "trade_id")
    item, item_segment = check_segment(item_id, "item_id")
    path = f"/secure/buy/{trade_segment}/items/{item_segment}/cancel"
    spec = proto.RequestSpec("POST", path, RouteGroup.CANCEL_ITEM)
    return proto.Call(
        spec, functools.partial(proto.decode_cancel, trade_ref=trade, item_ref=item), trade, item
    )


def buy_cancel_call(trade_id: object) -> proto.Call[TradeCancelResult]:
    """``POST /secure/buy/{tradeId}/cancel`` and its checked decoder: its quota is unpublished, so the
    item-cancel bucket."""
    trade, segment = check_segment(trade_id, "trade_id")
    spec = proto.RequestSpec("POST", f"/secure/buy/{segment}/cancel", RouteGroup.CANCEL_ITEM)
    return proto.Call(spec, functools.partial(proto.decode_trade_cancel, trade_ref=trade), trade)
