"""AssetPay's envelope, sans I/O: any answer becomes its success envelope or the typed error it stands for.

Used through ``_protocol`` (which re-exports every name here): the status, the lower-cased headers and the body
bytes go in, an [`Envelope`][assetpay_async._envelope.Envelope] or a raised
[`AssetPayError`][assetpay_async.AssetPayError] comes out. The error class follows the key, then the code,
then the HTTP status. The request id a call sends (`new_request_id`) is made here too.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import itertools
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from . import _errors as e
from ._cancel_rules import proves_not_cancelled

_SNIPPET_CHARS: Final = 200
_COUNTER_MASK: Final = (1 << 48) - 1  # the last group of a UUID: 12 hex digits


class _RequestIds:
    """This process's random prefix of request ids and their counter."""

    __slots__ = ("next", "prefix")

    def __init__(self) -> None:
        self.prefix = ""
        self.next: Callable[[], int] = itertools.count().__next__
        self.reseed()

    def reseed(self) -> None:
        """A new prefix and counter start (again in a forked child, which would repeat its parent's ids)."""
        seed = uuid.uuid4()
        # "xxxxxxxx-xxxx-4xxx-yxxx-": the version and variant of a random UUID, 74 random bits.
        self.prefix = str(seed)[:24]
        self.next = itertools.count(seed.int & _COUNTER_MASK).__next__


_IDS: Final = _RequestIds()
os.register_at_fork(after_in_child=_IDS.reseed)


def new_request_id() -> str:
    """A fresh ``X-Request-Id``: a version 4 UUID, unique per call without drawing 16 random bytes each time.

    The process's random prefix (74 random bits, drawn again after a fork) and a 48-bit counter that starts at
    a random value: no two calls of one process share an id before 2**48 calls, and two processes share one
    only if their prefixes collide.
    """
    return f"{_IDS.prefix}{_IDS.next() & _COUNTER_MASK:012x}"


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


_MISSING_ROUTE_STATUSES: Final = frozenset({404, 405})
MISSING_ROUTE_HINT: Final = (
    "the server has no such route: check the API root (base_url= of AssetPaySession, --base-url on the "
    "command line)"
)
"""Said by every 404 or 405 without an AssetPay envelope: a framework's plain "not found" means the requests
go to a server (or a path prefix) that is not AssetPay's API."""


def _snippet(body: bytes) -> str:
    return body[: _SNIPPET_CHARS * 4].decode("utf-8", "replace")[:_SNIPPET_CHARS]


class Envelope(NamedTuple):
    """A decoded success envelope (a named tuple: one is made per answer)."""

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
    if not truncated and 200 <= status < 300:
        # The common answer, a well-formed success, in one parse; anything else takes the full path below.
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):
            doc = None
        if type(doc) is dict and doc.get("success") is True and "data" in doc:
            envelope_request_id = doc.get("requestId")
            if not (isinstance(envelope_request_id, str) and envelope_request_id):
                envelope_request_id = headers.get("x-request-id") or sent_request_id
            return Envelope(doc["data"], envelope_request_id)
    return _decode_envelope(
        status, headers, body, sent_request_id, ambiguous=ambiguous, truncated=truncated
    )


def _decode_envelope(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    sent_request_id: str,
    *,
    ambiguous: bool,
    truncated: bool,
) -> Envelope:
    """`decode_envelope` of any answer: the envelope, or the typed error it stands for."""
    request_id = headers.get("x-request-id") or sent_request_id

    def invalid(reason: str) -> e.AssetPayError:
        return _no_envelope(reason, status, headers, body, request_id, ambiguous=ambiguous)

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
    raise _api_error(error, status, headers, request_id, ambiguous=ambiguous)


def _no_envelope(
    reason: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    request_id: str,
    *,
    ambiguous: bool,
) -> e.AssetPayError:
    """The error of an answer without an AssetPay envelope: a 429 whatever its body, else invalid."""
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
    if status in _MISSING_ROUTE_STATUSES:
        reason += f"; {MISSING_ROUTE_HINT}"
    error = e.InvalidResponseError(
        reason,
        http_status=status,
        content_type=headers.get("content-type"),
        snippet=_snippet(body),
        request_id=request_id,
    )
    # After a lost response an earlier attempt may have acted too.
    error.ambiguous = ambiguous or _server_may_have_acted(status)
    return error


def _message_of(error: Mapping[str, Any]) -> str:
    raw_message = error.get("message")
    if isinstance(raw_message, list):
        return "; ".join(str(m) for m in raw_message)
    if isinstance(raw_message, str):
        return raw_message
    return "(no message)"


def _api_error(
    error: Mapping[str, Any],
    status: int,
    headers: Mapping[str, str],
    request_id: str,
    *,
    ambiguous: bool,
) -> e.APIError:
    """The typed error of an error envelope's ``error`` object."""
    raw_key = error.get("key")
    key = raw_key if isinstance(raw_key, str) and raw_key else None
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    details = error.get("details") if isinstance(error.get("details"), dict) else None
    cls = error_class(key, code, status)
    kwargs: dict[str, Any] = {
        "http_status": status,
        "code": code,
        "key": key,
        "request_id": request_id,
        "details": details,
        "ambiguous": status >= 500
        or (ambiguous and not proves_not_cancelled(cls, same_token=True)),
    }
    if cls is e.RateLimitedError:
        kwargs["retry_after"] = parse_retry_after(headers.get("retry-after"))
    elif cls is e.APIValidationError:
        fields = error.get("fields")
        kwargs["fields"] = (
            {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else None
        )
    return cls(_message_of(error)[:2000], **kwargs)


def is_missing_route(error: BaseException) -> bool:
    """True for the answer of a route the server does not have: a 404 or 405 without an AssetPay envelope.

    AssetPay's own "not found" (TRADE_NOT_FOUND) comes in an error envelope and is an
    [`APIError`][assetpay_async.APIError].
    """
    return (
        isinstance(error, e.InvalidResponseError) and error.http_status in _MISSING_ROUTE_STATUSES
    )
