"""The pure core: build requests and decode responses. No I/O; everything here is a plain function.

Nothing here knows aiohttp: requests go out as a [`RequestSpec`][assetpay_async._protocol.RequestSpec] plus
plain header dicts, and responses come back as a status, a dict of lower-cased header names and the body bytes
(as gidgethub's ``sansio`` does). The HTTP layer (``_http.py``) adds the ``User-Agent`` and the token.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import json
import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs

from . import _errors as e
from ._converter import ShapeError, decode
from ._models import CancelResult, Trade, TradeCancelResult, TradePage
from ._quota import RouteGroup
from ._refs import check_ref, names, segment_of

T = TypeVar("T")

_SNIPPET_CHARS: Final = 200


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
    """The cancel call for one item. Raises [`InvalidRequestError`][assetpay_async.InvalidRequestError] for bad refs."""
    trade = canonical_id(trade_id, "trade_id")
    item = canonical_id(item_id, "item_id")
    return RequestSpec(
        method="POST",
        path=f"/client/trading/withdraw/{trade}/items/{item}/cancel",
        route_group=RouteGroup.CANCEL_ITEM,
    )


def cancel_trade_request(trade_id: object) -> RequestSpec:
    """``POST /client/trading/withdraw/{tradeId}/cancel``: every undelivered item of the trade at once.

    It draws on the item cancel's quota (AssetPay publishes none of its own: assume the stricter).
    """
    trade = canonical_id(trade_id, "trade_id")
    return RequestSpec(
        method="POST",
        path=f"/client/trading/withdraw/{trade}/cancel",
        route_group=RouteGroup.CANCEL_ITEM,
    )


def get_trade_request(trade_id: object) -> RequestSpec:
    """``GET /client/trades/{id}``. Raises [`InvalidRequestError`][assetpay_async.InvalidRequestError] for a bad ref."""
    trade = canonical_id(trade_id, "trade_id")
    return RequestSpec("GET", f"/client/trades/{trade}", RouteGroup.TRADES_READ)


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


def new_request_id() -> str:
    return str(uuid.uuid4())


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date. None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        now = now or dt.datetime.now(dt.UTC)
        return max(0.0, (when - now).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


# Error classes by key first, then by numeric code (codes were renumbered between editions).
_BY_KEY: Final[dict[str, type[e.APIError]]] = {
    "TRADE_CANCEL_TOO_SOON": e.CancelTooSoonError,
    "TRADE_NOT_CANCELLABLE": e.NotCancellableError,
    "TRADE_CANCEL_UNSUPPORTED": e.NotCancellableError,
    "FORBIDDEN": e.ForbiddenError,
    "ITEM_NOT_FOUND": e.ItemNotFoundError,
    "TRADE_NOT_FOUND": e.TradeNotFoundError,
    "RATE_LIMITED": e.RateLimitedError,
    "VALIDATION_FAILED": e.APIValidationError,
    "SERVER_ERROR": e.ServerError,
    "SYSTEM_MAINTENANCE": e.ServerError,
    "SERVICE_UNAVAILABLE": e.ServerError,
    "UNAUTHORIZED": e.AuthenticationError,
    "INVALID_TOKEN": e.AuthenticationError,
    "MISSING_BEARER": e.AuthenticationError,
    "TOKEN_INVALID_OR_EXPIRED": e.AuthenticationError,
    "TOKEN_EXPIRED": e.AuthenticationError,
    "ACCOUNT_DISABLED": e.AccountDisabledError,
    # The merchant scope's keys (api-key header).
    "MISSING_API_KEY": e.AuthenticationError,
    "INVALID_API_KEY": e.AuthenticationError,
    "API_KEY_REVOKED": e.AuthenticationError,
    "API_KEY_SCOPE_DENIED": e.ForbiddenError,
}
_BY_CODE: Final[dict[int, type[e.APIError]]] = {
    27: e.CancelTooSoonError,
    28: e.NotCancellableError,
    21: e.TradeNotFoundError,
    1300: e.ForbiddenError,
    2201: e.ItemNotFoundError,
    1001: e.APIValidationError,
    1005: e.RateLimitedError,
    1006: e.ServerError,
    1009: e.ServerError,
    1100: e.AuthenticationError,
    1102: e.AuthenticationError,
    1108: e.AuthenticationError,
    1110: e.AuthenticationError,
    1111: e.AuthenticationError,
    1301: e.AccountDisabledError,
    1900: e.AuthenticationError,
    1901: e.AuthenticationError,
    1902: e.AuthenticationError,
    1903: e.ForbiddenError,
}


# After a lost response, an earlier attempt may have cancelled the item, so the final error leaves the
# outcome unknown -- unless the error proves no attempt could have succeeded either.
_PROVES_NOT_CANCELLED: Final[frozenset[type[e.APIError]]] = frozenset(
    {
        e.CancelTooSoonError,
        e.ItemNotFoundError,
        e.TradeNotFoundError,
        e.ForbiddenError,
        e.AuthenticationError,
        e.AccountDisabledError,
        e.APIValidationError,
    }
)


def error_class(key: str | None, code: int | None, http_status: int) -> type[e.APIError]:
    """The exception class for an error envelope: by key, else by code, else by HTTP status."""
    if http_status == 429:  # whatever the key says, the server refused for rate: pause, do not fail
        return e.RateLimitedError
    if key is not None and key in _BY_KEY:
        return _BY_KEY[key]
    if key is None and code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    if key is None and code == 1007:  # RATE_LIMITED's old number, SYSTEM_MAINTENANCE's new one
        return e.RateLimitedError if http_status == 429 else e.ServerError
    if http_status == 429:
        return e.RateLimitedError
    if http_status >= 500:
        return e.ServerError
    return e.APIError


def _snippet(body: bytes) -> str:
    return body[: _SNIPPET_CHARS * 4].decode("utf-8", "replace")[:_SNIPPET_CHARS]


@attrs.frozen
class Envelope:
    """A decoded success envelope."""

    data: Any
    request_id: str | None


def _server_may_have_acted(status: int) -> bool:
    """A 2xx means AssetPay acted on the call; a 5xx (an error envelope, a gateway's or a server's page) may
    follow work the server did before it failed, so the outcome of a cancel is unknown."""
    return 200 <= status < 300 or status >= 500


def decode_envelope(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    sent_request_id: str,
    *,
    ambiguous: bool = False,
    truncated: bool = False,
) -> Envelope:
    """Decode any AssetPay response into its success envelope, or raise the typed error it stands for.

    Args:
        status: the HTTP status.
        headers: the response headers, names lower-cased.
        body: the body as read (its start only when ``truncated``).
        sent_request_id: the ``X-Request-Id`` the SDK sent.
        ambiguous: an earlier attempt of this call may have reached AssetPay (its response was lost).
        truncated: the body was larger than the HTTP layer reads; it is refused whatever it starts with.

    Raises:
        RateLimitedError: for any HTTP 429, with an envelope or not (a proxy's or CDN's page is a rate limit
            too).
        APIError: (a subclass of) for an error envelope.
        InvalidResponseError: when there is no envelope at all.
    """
    content_type = headers.get("content-type")
    request_id = headers.get("x-request-id") or sent_request_id

    def invalid(reason: str) -> e.AssetPayError:
        if status == 429:
            return e.RateLimitedError(
                f"HTTP 429 without an AssetPay envelope ({reason}); body starts {_snippet(body)[:80]!r}",
                http_status=status,
                code=None,
                key=None,
                request_id=request_id,
                retry_after=parse_retry_after(headers.get("retry-after")),
                ambiguous=ambiguous,
            )
        error = e.InvalidResponseError(
            reason,
            http_status=status,
            content_type=content_type,
            snippet=_snippet(body),
            request_id=request_id,
        )
        # After a lost response an earlier attempt may have acted too.
        error.ambiguous = ambiguous or _server_may_have_acted(status)
        return error

    if truncated:
        raise invalid("response body larger than the SDK reads")
    if not body.strip():
        raise invalid("empty response body")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise invalid("response body is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("success"), bool):
        raise invalid("response is not an AssetPay envelope")
    envelope_request_id = doc.get("requestId")
    if isinstance(envelope_request_id, str) and envelope_request_id:
        request_id = envelope_request_id
    if doc["success"]:
        if not 200 <= status < 300:
            raise invalid(f"success envelope on HTTP {status}")
        if "data" not in doc:
            raise invalid("success envelope without data")
        return Envelope(doc["data"], request_id)
    error = doc.get("error")
    if not isinstance(error, dict):
        raise invalid("error envelope without an error object")
    if 200 <= status < 300:
        raise invalid(f"error envelope on HTTP {status}")
    raw_key = error.get("key")
    key = raw_key if isinstance(raw_key, str) and raw_key else None
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    raw_message = error.get("message")
    if isinstance(raw_message, list):
        message = "; ".join(str(m) for m in raw_message)
    elif isinstance(raw_message, str):
        message = raw_message
    else:
        message = "(no message)"
    details = error.get("details") if isinstance(error.get("details"), dict) else None
    cls = error_class(key, code, status)
    kwargs: dict[str, Any] = {
        "http_status": status,
        "code": code,
        "key": key,
        "request_id": request_id,
        "details": details,
        "ambiguous": status >= 500 or (ambiguous and cls not in _PROVES_NOT_CANCELLED),
    }
    if cls is e.RateLimitedError:
        kwargs["retry_after"] = parse_retry_after(headers.get("retry-after"))
    elif cls is e.APIValidationError:
        fields = error.get("fields")
        kwargs["fields"] = (
            {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else None
        )
    raise cls(message[:2000], **kwargs)


def structure(data: Any, cls: type[T], *, what: str, status: int, request_id: str | None) -> T:
    """Decode ``data`` into ``cls``; a bad shape becomes ``InvalidResponseError``, never a cattrs error."""
    try:
        return decode(data, cls)
    except ShapeError as exc:
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
        raise error from exc


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
    data = envelope.data
    if isinstance(data, dict):
        # The request id is the envelope's, not a field of data: add it rather than build the result twice.
        data = {**data, "requestId": envelope.request_id}
    result = structure(
        data, CancelResult, what="cancel result", status=status, request_id=envelope.request_id
    )
    if item_ref is not None and names(item_ref, result.item_id, result.external_id) is False:
        raise _mismatch(
            f"the cancel answer names item {result.item_id!r}, not {item_ref!r}",
            envelope.data,
            status,
            envelope.request_id,
        )
    # The answer carries the item's externalId, never the trade's: a caller that named the item by its
    # externalId names the trade by its own too, and that may be UUID-shaped, so only AssetPay's ids are checked.
    by_external_item = item_ref is not None and names(item_ref, result.item_id, None) is not True
    if (
        trade_ref is not None
        and not by_external_item
        and names(trade_ref, result.trade_id, None) is False
    ):
        raise _mismatch(
            f"the cancel answer names trade {result.trade_id!r}, not {trade_ref!r}",
            envelope.data,
            status,
            envelope.request_id,
        )
    return result


def cancel_decoder(trade_id: object, item_id: object) -> Callable[[Envelope, int], CancelResult]:
    """`decode_cancel` bound to the refs of one cancel (checked as `parse_id` does)."""
    return functools.partial(
        decode_cancel,
        trade_ref=parse_id(trade_id, "trade_id"),
        item_ref=parse_id(item_id, "item_id"),
    )


def decode_trade_cancel(
    envelope: Envelope, status: int, *, trade_ref: str | None = None
) -> TradeCancelResult:
    """The [`TradeCancelResult`][assetpay_async.TradeCancelResult] of a whole-trade cancel, checked against
    the trade ref asked for.

    Raises:
        InvalidResponseError: (``ambiguous``) a bad shape, or an answer naming another trade.
    """
    data = envelope.data
    if isinstance(data, dict):
        data = {**data, "requestId": envelope.request_id}
    result = structure(
        data,
        TradeCancelResult,
        what="trade cancel result",
        status=status,
        request_id=envelope.request_id,
    )
    if trade_ref is not None and names(trade_ref, result.trade_id, None) is False:
        raise _mismatch(
            f"the cancel answer names trade {result.trade_id!r}, not {trade_ref!r}",
            envelope.data,
            status,
            envelope.request_id,
        )
    return result


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


_MISSING_ROUTE_STATUSES: Final = frozenset({404, 405})


def is_missing_route(error: BaseException) -> bool:
    """True for the answer of a route the server does not have: a 404 or 405 without an AssetPay envelope.

    AssetPay's own "not found" (TRADE_NOT_FOUND) comes in an error envelope and is an
    [`APIError`][assetpay_async.APIError].
    """
    return (
        isinstance(error, e.InvalidResponseError) and error.http_status in _MISSING_ROUTE_STATUSES
    )
