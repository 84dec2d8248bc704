"""Every exception the SDK raises, in one tree.

```
AssetPayError                      base of everything below; ``ambiguous`` = outcome unknown; ``request_id``
├── ConfigurationError             (also ValueError) every bad argument, refused before anything is sent
│   ├── InvalidRequestError        ... a bad argument of a call: a ref, an option, a client token
│   └── MerchantMismatchError      ... a token of another merchant, or with contradicting claims
├── JournalError                   (_journal) a batch journal that cannot be used; nothing was sent
│   ├── JournalMismatchError       ... written for other pairs, another merchant or another endpoint
│   └── JournalLockedError         ... held by another run (this process or another); nothing was sent
├── SessionClosedError             (also RuntimeError) the session was closed (or never usable on this loop)
├── QueueTimeoutError              waited longer than allowed for quota; nothing was sent
├── BatchStoppedError              (_batch) a batch pair not sent because the batch stopped early
├── WaitTimeoutError               (also TimeoutError) an item did not reach a final status in time
├── LimiterBackendError            the shared limiter's store (Redis) failed and fallback is off
├── InvalidResponseError           no AssetPay envelope (HTML, empty, bad JSON, missing fields)
│   └── RefsUnconfirmed            (_protocol, private) ... an answer naming other ids than a UUID-shaped ref
├── ListingDidNotTerminateError    GET /client/trades kept giving pages (a repeated cursor, the page bound)
├── TransportError                 the request or its response was lost on the network
│   └── RequestTimeoutError        ... because the request timed out on the wire
├── APIError                       AssetPay answered with an error envelope
│   ├── CancelTooSoonError         TRADE_CANCEL_TOO_SOON (27): item younger than 30 minutes
│   ├── NotCancellableError        TRADE_NOT_CANCELLABLE (28), TRADE_CANCEL_UNSUPPORTED
│   ├── ForbiddenError             FORBIDDEN (1300): trade of another user
│   ├── ItemNotFoundError          ITEM_NOT_FOUND (2201)
│   ├── TradeNotFoundError         TRADE_NOT_FOUND (21)
│   ├── RateLimitedError           RATE_LIMITED (1005, formerly 1007); ``retry_after``
│   ├── AuthenticationError        UNAUTHORIZED, INVALID_TOKEN, MISSING_BEARER, TOKEN_EXPIRED, ...
│   ├── AccountDisabledError       ACCOUNT_DISABLED (1301)
│   ├── APIValidationError         VALIDATION_FAILED (1001); ``fields``
│   └── ServerError                any 5xx with an envelope (SERVER_ERROR, SYSTEM_MAINTENANCE, ...)
└── CallbackError                  (_callback_core, via assetpay_async.callbacks) a callback not to trust
    ├── CallbackAuthenticationError    401: not authenticated
    │   ├── MissingSignatureError      no X-AssetPay-Signature header
    │   ├── MalformedSignatureError    a header that does not parse
    │   ├── SignatureMismatchError     no signature matches any secret
    │   └── TimestampToleranceError    signed too long before or after now
    ├── InvalidCallbackBodyError       kept for old ``except`` clauses; no longer raised
    └── UnsignedTestPing               the unsigned test ping: answer 200, act on nothing
```

Classes marked with a module live there (next to what raises them) and are exported by the package like the
rest. Branch on the class (it follows the error ``key``, then the numeric ``code``); an unknown key is a plain
[`APIError`][assetpay_async.APIError] that keeps everything the server said. ``docs/errors.md`` lists them all,
and ``tests/core/test_core_error_tree.py`` checks that every exception class the package exposes is there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIError",
    "APIValidationError",
    "AccountDisabledError",
    "AssetPayError",
    "AuthenticationError",
    "CancelTooSoonError",
    "ConfigurationError",
    "ForbiddenError",
    "InvalidRequestError",
    "InvalidResponseError",
    "ItemNotFoundError",
    "LimiterBackendError",
    "ListingDidNotTerminateError",
    "MerchantMismatchError",
    "NotCancellableError",
    "QueueTimeoutError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "SessionClosedError",
    "TradeNotFoundError",
    "TransportError",
    "WaitTimeoutError",
]


class AssetPayError(Exception):
    """Base class of every error raised by assetpay-async.

    Attributes:
        ambiguous: True when the outcome on AssetPay's side is unknown: an earlier attempt of the same call
            may have been accepted although this one failed (its response was lost), or the server failed
            (a 5xx) after the call reached it.
        request_id: the request id of the call that failed (the envelope's, the response header's, else the
            ``X-Request-Id`` the SDK sent); None for errors raised before a request existed.
    """

    ambiguous: bool = False
    request_id: str | None = None


class ConfigurationError(AssetPayError, ValueError):
    """A bad argument, raised before anything is sent and before any quota is spent.

    Every bad argument of the package raises it (or one of its subclasses): of
    [`AssetPaySession`][assetpay_async.AssetPaySession] (an unknown ``tier``, a negative ``timeout``, a
    ``base_url`` carrying credentials, a ``limiter`` that is neither a registry nor Redis, ...),
    [`RetryPolicy`][assetpay_async.RetryPolicy], [`Quota`][assetpay_async.Quota], the limiters, and of every
    call ([`InvalidRequestError`][assetpay_async.InvalidRequestError]). The message never repeats a secret.
    """


class InvalidRequestError(ConfigurationError):
    """A bad argument of a call (a ref that cannot be one, a bad option, an unusable client token).

    Raised before anything is sent. A [`ConfigurationError`][assetpay_async.ConfigurationError] (and a
    ``ValueError``) like every bad argument.
    """


class SessionClosedError(AssetPayError, RuntimeError):
    """The session is closed, or cannot be used from the running event loop."""


class MerchantMismatchError(ConfigurationError):
    """A token that belongs to another merchant than the session's, or whose claims disagree."""


class QueueTimeoutError(AssetPayError):
    """The call waited longer than its ``max_queue_wait`` for quota. Nothing was sent, no quota spent."""

    def __init__(self, message: str, *, waited: float) -> None:
        super().__init__(message)
        self.waited = waited


class WaitTimeoutError(AssetPayError, TimeoutError):
    """``wait_for_item`` gave up: the item was not in a final status within the timeout.

    Attributes:
        last_status: the item's status at the last poll (None if it was never read).
    """

    def __init__(self, message: str, *, last_status: str | None) -> None:
        super().__init__(message)
        self.last_status = last_status


class LimiterBackendError(AssetPayError):
    """The shared limiter's store (Redis) is unreachable or failed, and falling back was switched off.

    Nothing was sent and no quota was spent by the call that raised it.
    """


class InvalidResponseError(AssetPayError):
    """The server's answer is not an AssetPay envelope (HTML from a proxy, empty body, bad JSON, ...).

    Attributes:
        http_status: the HTTP status of the response.
        content_type: its Content-Type header, if any.
        snippet: the first 200 characters of the body, for diagnosis.
        request_id: the request id we sent (or the server's, if it echoed one).
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        content_type: str | None,
        snippet: str,
        request_id: str | None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.content_type = content_type
        self.snippet = snippet
        self.request_id = request_id

    def __str__(self) -> str:
        return (
            f"{self.args[0]} (HTTP {self.http_status}, content type {self.content_type!r}, "
            f"request id {self.request_id}, body starts {self.snippet[:80]!r})"
        )


class TransportError(AssetPayError):
    """The request could not be sent, or its response was lost.

    ``ambiguous`` is True when the request may have reached AssetPay.
    """

    def __init__(
        self, message: str, *, request_id: str | None = None, ambiguous: bool = False
    ) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.ambiguous = ambiguous


class RequestTimeoutError(TransportError, TimeoutError):
    """The request timed out on the wire (time spent queueing for quota does not count)."""


class APIError(AssetPayError):
    """AssetPay answered with an error envelope.

    Attributes:
        http_status: HTTP status of the response.
        code: the numeric error code (renumbered between API editions: prefer ``key``).
        key: the stable error key, e.g. ``"TRADE_NOT_CANCELLABLE"``.
        message: the server's message (wording changes without notice; lists are joined).
        request_id: from the envelope, else the response header, else the one we sent.
        details: the envelope's ``details`` object, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        code: int | None,
        key: str | None,
        request_id: str | None,
        details: Mapping[str, Any] | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.key = key
        self.request_id = request_id
        self.details: Mapping[str, Any] = details or {}
        self.ambiguous = ambiguous

    def __str__(self) -> str:
        text = f"{self.key or 'UNKNOWN'} ({self.code}, HTTP {self.http_status}): {self.message}"
        if self.ambiguous:
            text += " [outcome unknown: an earlier attempt whose response was lost may have been accepted]"
        return f"{text} [request id {self.request_id}]"


class CancelTooSoonError(APIError):
    """TRADE_CANCEL_TOO_SOON (27): the item is younger than 30 minutes; retry after that."""


class NotCancellableError(APIError):
    """TRADE_NOT_CANCELLABLE (28) or TRADE_CANCEL_UNSUPPORTED.

    Not a withdrawal, not a CS2 item (Rust), already terminal, or the marketplace refused. When ``ambiguous`` is
    True, an earlier attempt of this call lost its response and may have been the one that cancelled the item.
    """


class ForbiddenError(APIError):
    """FORBIDDEN (1300): the trade does not belong to the authenticated user."""


class ItemNotFoundError(APIError):
    """ITEM_NOT_FOUND (2201): no item with that id under that trade."""


class TradeNotFoundError(APIError):
    """TRADE_NOT_FOUND (21): no such trade."""


class RateLimitedError(APIError):
    """RATE_LIMITED (1005): over the merchant's quota.

    Attributes:
        retry_after: seconds to wait as the server said (``Retry-After``), or None when it did not say.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AuthenticationError(APIError):
    """The client token is missing, malformed, expired or refused (401)."""


class AccountDisabledError(APIError):
    """ACCOUNT_DISABLED (1301)."""


class APIValidationError(APIError):
    """VALIDATION_FAILED (1001).

    Attributes:
        fields: ``{"dotted.path": "reason"}`` as the server reported them.
    """

    def __init__(
        self, message: str, *, fields: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.fields: Mapping[str, str] = fields or {}


class ServerError(APIError):
    """A 5xx answer carrying an error envelope (SERVER_ERROR, SYSTEM_MAINTENANCE, SERVICE_UNAVAILABLE)."""


# -- Reading trades: a listing that never ends (reads) -------------------------------------------------


class ListingDidNotTerminateError(AssetPayError):
    """``GET /client/trades`` did not terminate: a ``nextCursor`` came back that this scan had already followed
    (A -> B -> A), or the scan passed its bound of pages or kept getting pages of trades it had already seen.

    The SDK stops reading instead of spending the merchant's read quota on a listing that never ends.

    Attributes:
        game: the game whose listing was being read.
        pages: the pages read by the scan before it stopped.
        cursor: the repeated cursor, when a cursor repeated.
    """

    def __init__(self, message: str, *, game: str, pages: int, cursor: str | None = None) -> None:
        super().__init__(message)
        self.game = game
        self.pages = pages
        self.cursor = cursor
