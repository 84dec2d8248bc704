"""The pure core: build requests and decode responses. No I/O; everything here is a plain function.

Nothing here knows aiohttp: requests go out as a [`RequestSpec`][assetpay_async._protocol.RequestSpec] plus
plain header dicts, and responses come back as a status, a dict of lower-cased header names and the body bytes
(as gidgethub's ``sansio`` does). The HTTP layer (``_http.py``) adds the ``User-Agent`` and the token.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

import attrs

from . import _errors as e
from ._converter import ShapeError, decode, decode_cancel_result
from ._envelope import (
    _BY_CODE,
    _BY_KEY,
    _SNIPPET_CHARS,
    MISSING_ROUTE_HINT,
    Envelope,
    decode_envelope,
    error_class,
    is_missing_route,
    new_request_id,
    parse_retry_after,
)
from ._models import CancelResult, Trade, TradeCancelResult, TradePage
from ._quota import RouteGroup
from ._refs import check_ref, check_segment, names, segment_of

__all__ = [
    "MISSING_ROUTE_HINT",
    "_BY_CODE",
    "_BY_KEY",
    "Call",
    "Envelope",
    "RefsUnconfirmed",
    "RequestSpec",
    "cancel_item_call",
    "cancel_trade_call",
    "confirm_cancel",
    "decode_envelope",
    "error_class",
    "get_trade_call",
    "is_missing_route",
    "list_trades_call",
    "new_request_id",
    "parse_retry_after",
]

T = TypeVar("T")
R = TypeVar("R", CancelResult, TradeCancelResult)


@attrs.frozen
class RequestSpec:
    """Everything needed to send one call, minus the token and the request id."""

    method: str
    path: str
    route_group: RouteGroup
    params: tuple[tuple[str, str], ...] = ()
    # Whether repeating the call after a lost response is harmless (a cancel cannot move money twice).
    repeatable: bool = True
    # A JSON request body (merchant scope's POST /auth/authenticate-client); None: no body.
    body: bytes | None = None

    @property
    def safe(self) -> bool:
        """A read: no effect on AssetPay's side, so it may be repeated after any server failure too."""
        return self.method == "GET"


def parse_id(value: object, name: str) -> str:
    """Check a trade or item ref (AssetPay's id or your externalId) and return it as it is sent.

    A string is kept exactly as given (an externalId is case-sensitive); a `uuid.UUID` becomes its
    lowercase hyphenated text.

    Raises:
        InvalidRequestError: another type, an empty or whitespace-only string, ``.`` or ``..``, more than
            128 characters, or a control character; the offending value shortened and escaped.
    """
    return check_ref(value, name)


def canonical_id(value: object, name: str) -> str:
    """The ref as it goes into a URL path: one percent-encoded segment. The checks of `parse_id`."""
    return segment_of(value, name)


def cancel_request(trade_id: object, item_id: object) -> RequestSpec:
    """The request of `cancel_item_call`.

    Raises:
        InvalidRequestError: a bad ref, before anything is sent.
    """
    return cancel_item_call(trade_id, item_id).spec


def cancel_trade_request(trade_id: object) -> RequestSpec:
    """The request of `cancel_trade_call`: every undelivered item of the trade at once, on the item cancel's
    quota (AssetPay publishes none of its own: assume the stricter)."""
    return cancel_trade_call(trade_id).spec


def get_trade_request(trade_id: object) -> RequestSpec:
    """The request of `get_trade_call`."""
    return get_trade_call(trade_id).spec


GAMES: Final = ("730", "252490")
"""The games ``GET /client/trades`` knows, as its ``game`` parameter spells them (CS2, Rust)."""
DEFAULT_GAME: Final = "730"
"""AssetPay's default ``game`` of ``GET /client/trades``: a call without it lists CS2 trades only."""


def list_trades_request(
    *,
    cursor: str | None = None,
    limit: int = 100,
    type: str | None = None,
    game: str = DEFAULT_GAME,
) -> RequestSpec:
    """``GET /client/trades`` with its query; ``game`` is always sent (AssetPay would default it to CS2).

    Raises:
        InvalidRequestError: bad values, before anything is sent.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise e.InvalidRequestError(f"limit must be an int from 1 to 100, got {limit!r}")
    params: list[tuple[str, str]] = [("limit", str(limit))]
    if cursor is not None:
        if not isinstance(cursor, str) or not cursor or len(cursor) > 512:
            raise e.InvalidRequestError("cursor must be a non-empty string from a previous page")
        params.append(("cursor", cursor))
    if type is not None:
        if str(type) not in ("deposit", "withdraw"):
            raise e.InvalidRequestError(f"type must be 'deposit' or 'withdraw', got {type!r}")
        params.append(("type", str(type)))
    if str(game) not in GAMES:
        raise e.InvalidRequestError(f"game must be '730' (CS2) or '252490' (Rust), got {game!r}")
    params.append(("game", str(game)))
    return RequestSpec("GET", "/client/trades", RouteGroup.TRADES_READ, tuple(params))


def request_headers(request_id: str) -> dict[str, str]:
    """The headers of one call that the core decides, lower-cased.

    The HTTP layer adds ``user-agent`` and ``authorization`` when it builds the request: the token stays in
    its redacting holder until then.
    """
    return {"accept": "application/json", "x-request-id": request_id}


def structure(data: Any, cls: type[T], *, what: str, status: int, request_id: str | None) -> T:
    """Decode ``data`` into ``cls``; a bad shape becomes ``InvalidResponseError``, never a cattrs error."""
    try:
        return decode(data, cls)
    except ShapeError as exc:
        raise _unexpected_shape(data, what, status, request_id) from exc


def _unexpected_shape(
    data: Any, what: str, status: int, request_id: str | None
) -> e.InvalidResponseError:
    try:
        shown = json.dumps(data)[:_SNIPPET_CHARS]
    except (TypeError, ValueError):
        shown = repr(data)[:_SNIPPET_CHARS]
    error = e.InvalidResponseError(
        f"{what} has an unexpected shape",
        http_status=status,
        content_type="application/json",
        snippet=shown,
        request_id=request_id,
    )
    # AssetPay accepted the call; only its answer is unreadable.
    error.ambiguous = 200 <= status < 300
    return error


def _mismatch(what: str, data: Any, status: int, request_id: str | None) -> e.InvalidResponseError:
    try:
        shown = json.dumps(data)[:_SNIPPET_CHARS]
    except (TypeError, ValueError):
        shown = repr(data)[:_SNIPPET_CHARS]
    error = e.InvalidResponseError(
        what,
        http_status=status,
        content_type="application/json",
        snippet=shown,
        request_id=request_id,
    )
    # AssetPay acted on the call, but on what cannot be told: the real call's outcome is unknown.
    error.ambiguous = 200 <= status < 300
    return error


class RefsUnconfirmed(e.InvalidResponseError, Generic[T]):
    """A cancel's answer names another trade or item than the refs, where a ref may be a UUID-shaped
    externalId (the answer names AssetPay's ids): the mismatch is not proven until a read resolves the ref.

    An [`InvalidResponseError`][assetpay_async.InvalidResponseError] (``ambiguous``) like the mismatch it
    stands for, so a caller that does not resolve refs fails closed; the client's cancel methods resolve it
    with one read ([`confirm_cancel`][assetpay_async._protocol.confirm_cancel]).

    Attributes:
        result: the decoded answer.
        trade_ref: the trade ref the call named.
        item_ref: the item ref it named (None for a whole-trade cancel).
    """

    def __init__(
        self,
        mismatch: e.InvalidResponseError,
        result: T,
        *,
        trade_ref: str | None,
        item_ref: str | None,
    ) -> None:
        super().__init__(
            mismatch.args[0],
            http_status=mismatch.http_status,
            content_type=mismatch.content_type,
            snippet=mismatch.snippet,
            request_id=mismatch.request_id,
        )
        self.ambiguous = mismatch.ambiguous
        self.result = result
        self.trade_ref = trade_ref
        self.item_ref = item_ref


def confirm_cancel(error: RefsUnconfirmed[Any], trade: Trade) -> bool:
    """Whether ``trade`` (read by the call's trade ref) shows the answer named what the call did.

    The answer's trade id must be ``trade``'s id; for an item cancel, the answer's item must be an item of
    ``trade`` that the item ref names (by its id or its externalId).
    """
    result = error.result
    if error.trade_ref is None or names(result.trade_id, trade.id, None) is not True:
        return False
    if error.item_ref is None:
        return True
    item = next((it for it in trade.items if names(result.item_id, it.id, None) is True), None)
    return item is not None and names(error.item_ref, item.id, item.external_id) is True


@attrs.frozen
class Call(Generic[T]):
    """One request and the decoder of its answer, built together from refs parsed once.

    Attributes:
        spec: what goes on the wire.
        decode: turns the success envelope and HTTP status into the result (checked against the refs).
        trade_ref: the trade ref as sent (checked), if the call names one.
        item_ref: the item ref as sent, if the call names one.
    """

    spec: RequestSpec
    decode: Callable[[Envelope, int], T]
    trade_ref: str | None = None
    item_ref: str | None = None


def cancel_item_call(trade_id: object, item_id: object) -> Call[CancelResult]:
    """``POST /client/trading/withdraw/{trade}/items/{item}/cancel`` and its checked decoder.

    Raises:
        InvalidRequestError: a bad ref, before anything is sent.
    """
    trade, trade_segment = check_segment(trade_id, "trade_id")
    item, item_segment = check_segment(item_id, "item_id")
    path = f"/client/trading/withdraw/{trade_segment}/items/{item_segment}/cancel"
    spec = RequestSpec("POST", path, RouteGroup.CANCEL_ITEM)
    return Call(spec, functools.partial(decode_cancel, trade_ref=trade, item_ref=item), trade, item)


def cancel_trade_call(trade_id: object) -> Call[TradeCancelResult]:
    """``POST /client/trading/withdraw/{trade}/cancel`` (every undelivered item) and its checked decoder.

    Raises:
        InvalidRequestError: a bad ref, before anything is sent.
    """
    trade, segment = check_segment(trade_id, "trade_id")
    spec = RequestSpec("POST", f"/client/trading/withdraw/{segment}/cancel", RouteGroup.CANCEL_ITEM)
    return Call(spec, functools.partial(decode_trade_cancel, trade_ref=trade), trade)


def get_trade_call(trade_id: object) -> Call[Trade]:
    """``GET /client/trades/{id}`` and its decoder, which refuses a trade the ref cannot name.

    Raises:
        InvalidRequestError: a bad ref, before anything is sent.
    """
    trade, segment = check_segment(trade_id, "trade_id")
    spec = RequestSpec("GET", f"/client/trades/{segment}", RouteGroup.TRADES_READ)
    return Call(spec, functools.partial(decode_trade, trade_ref=trade), trade)


def list_trades_call(
    *,
    cursor: str | None = None,
    limit: int = 100,
    type: str | None = None,
    game: str = DEFAULT_GAME,
) -> Call[TradePage]:
    """One page of ``GET /client/trades`` (the checks of `list_trades_request`; a `TradeType` or `Game` is
    its text) and its decoder: the one builder of a listing's page for the client scope and, with another
    route, for the merchant scope (``_merchant_proto.secure_list_call``)."""
    spec = list_trades_request(cursor=cursor, limit=limit, type=type, game=game)
    return Call(spec, decode_trade_page)


def decode_cancel(
    envelope: Envelope, status: int, *, trade_ref: str | None = None, item_ref: str | None = None
) -> CancelResult:
    """The [`CancelResult`][assetpay_async.CancelResult] of a cancel's success envelope, checked against
    the refs asked for.

    Args:
        trade_ref: the trade ref the call named (as sent, see `parse_id`); None skips its check.
        item_ref: the item ref the call named; None skips its check.

    Raises:
        InvalidResponseError: (``ambiguous``) a bad shape, a status that is not a string, or an answer naming
            another trade or item than the call did: a UUID-shaped ref that is neither the answer's id nor
            its externalId, or a ref that differs from both while the answer carries an externalId. The trade
            is checked only when the item was named by AssetPay's id: a merchant's own trade externalIds may be
            UUIDs, and the answer never echoes them.
    """
    try:
        result = decode_cancel_result(envelope.data, envelope.request_id)
    except ShapeError as exc:
        data = envelope.data
        if isinstance(data, dict):
            data = {**data, "requestId": envelope.request_id}  # what the converter was given
        raise _unexpected_shape(data, "cancel result", status, envelope.request_id) from exc
    item_named = None if item_ref is None else names(item_ref, result.item_id, result.external_id)
    if item_named is False:
        error = _mismatch(
            f"the cancel answer names item {result.item_id!r}, not {item_ref!r}",
            envelope.data,
            status,
            envelope.request_id,
        )
        if result.external_id is not None:
            raise error  # the answer names the item both ways, and neither is the ref
        # A UUID-shaped item externalId the answer does not echo: a read can tell.
        raise RefsUnconfirmed(error, result, trade_ref=trade_ref, item_ref=item_ref)
    # The answer carries the item's externalId, never the trade's: a caller that named the item by its
    # externalId names the trade by its own too, so only a trade named with an item's id is checked.
    by_external_item = (
        item_ref is not None
        and item_ref != result.item_id  # the common case, without calling `names` again
        and names(item_ref, result.item_id, None) is not True
    )
    if (
        trade_ref is not None
        and not by_external_item
        and trade_ref != result.trade_id
        and names(trade_ref, result.trade_id, None) is False
    ):
        raise _another_trade(envelope, status, result, trade_ref, item_ref)
    return result


def decode_trade_cancel(
    envelope: Envelope, status: int, *, trade_ref: str | None = None
) -> TradeCancelResult:
    """The [`TradeCancelResult`][assetpay_async.TradeCancelResult] of a whole-trade cancel, checked against
    the trade ref asked for.

    Raises:
        InvalidResponseError: (``ambiguous``) a bad shape, or an answer naming another trade.
    """
    result = _result_of(envelope, status, TradeCancelResult, "trade cancel result")
    if trade_ref is not None and names(trade_ref, result.trade_id, None) is False:
        raise _another_trade(envelope, status, result, trade_ref, None)
    return result


def _result_of(envelope: Envelope, status: int, cls: type[R], what: str) -> R:
    """A cancel's result from its success envelope."""
    data = envelope.data
    if isinstance(data, dict):
        # The request id is the envelope's, not a field of data: add it rather than build the result twice.
        data = {**data, "requestId": envelope.request_id}
    return structure(data, cls, what=what, status=status, request_id=envelope.request_id)


def _another_trade(
    envelope: Envelope, status: int, result: R, trade_ref: str, item_ref: str | None
) -> RefsUnconfirmed[R]:
    """A cancel's answer names another trade than ``trade_ref``: unconfirmed, for a read to tell."""
    error = _mismatch(
        f"the cancel answer names trade {result.trade_id!r}, not {trade_ref!r}",
        envelope.data,
        status,
        envelope.request_id,
    )
    # The ref may be the trade's UUID-shaped externalId (the answer names AssetPay's id).
    return RefsUnconfirmed(error, result, trade_ref=trade_ref, item_ref=item_ref)


def decode_trade(envelope: Envelope, status: int, *, trade_ref: str | None = None) -> Trade:
    """The [`Trade`][assetpay_async.Trade] of ``GET /client/trades/{id}``.

    ``data`` is the trade, or ``{"trade": ...}``.

    Raises:
        InvalidResponseError: a bad shape, or a trade that ``trade_ref`` cannot name (not ambiguous: a read).
    """
    data = envelope.data
    if isinstance(data, dict) and isinstance(data.get("trade"), dict) and "id" not in data:
        data = data["trade"]
    trade = structure(data, Trade, what="trade", status=status, request_id=envelope.request_id)
    if trade_ref is not None and names(trade_ref, trade.id, trade.external_id) is False:
        error = _mismatch(
            f"asked for trade {trade_ref!r}, got trade {trade.id!r}",
            data,
            status,
            envelope.request_id,
        )
        error.ambiguous = False  # a read changes nothing
        raise error
    return trade


def decode_trade_page(envelope: Envelope, status: int) -> TradePage:
    """A page of ``GET /client/trades``."""
    return structure(
        envelope.data, TradePage, what="trade page", status=status, request_id=envelope.request_id
    )
