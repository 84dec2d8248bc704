"""AssetPay's signed callbacks: verify them, decode their event, answer the withdrawal approval gate.

Two layers:

* `verify_callback` (and `verify_signature`) take the raw body and headers and return a verified
  event or raise a `CallbackError`; they work with any web framework. The event is a `CallbackEvent` (a
  trade), a `CryptoWithdrawalEvent`, a `CryptoDepositEvent`, or an `UnknownCallbackEvent` keeping the raw
  payload of a body the SDK does not know.
* `CallbackProcessor` answers AssetPay in any framework (``await processor.handle(body, headers)`` returns a
  `CallbackAnswer`): it hands each event to your coroutine once (dedupe on the delivery id, on the trade id for
  approvals), never approves a withdrawal unless your ``on_approval`` coroutine said so, and answers the
  rejection to every signed body it cannot certainly read as a non-gate event. `callback_handler` is its
  aiohttp adapter, ``processor.asgi()`` its ASGI application (Starlette, FastAPI).

```
CallbackError (AssetPayError)          http_status: what to answer AssetPay
├── CallbackAuthenticationError        401
│   ├── MissingSignatureError          no X-AssetPay-Signature header
│   ├── MalformedSignatureError        a header that does not parse
│   ├── SignatureMismatchError         no signature matches any secret (or the body was altered)
│   └── TimestampToleranceError        signed more than ``tolerance`` seconds before or after now
├── InvalidCallbackBodyError           no longer raised (an unreadable authentic body is an unknown event)
└── UnsignedTestPing                   200: the {"test": true} ping without a signature header
```

Example:
    >>> from aiohttp import web
    >>> async def on_event(event: CallbackEvent) -> None:
    ...     print(event.trade.id, event.status)
    >>> async def on_approval(event: ApprovalRequest) -> ApprovalDecision:
    ...     return ApprovalDecision.approve()
    >>> app = web.Application()
    >>> _ = app.router.add_post(
    ...     "/assetpay/callback", callback_handler("api-secret", on_event, on_approval=on_approval)
    ... )
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from ._callback_core import (
    DEFAULT_TOLERANCE,
    Clock,
    is_test_ping,
    verify_callback,
    verify_signature,
)
from ._callback_dedupe import DedupeStore, MemoryDedupeStore
from ._callback_errors import (
    CallbackAuthenticationError,
    CallbackError,
    InvalidCallbackBodyError,
    MalformedSignatureError,
    MissingSignatureError,
    SignatureMismatchError,
    TimestampToleranceError,
    UnsignedTestPing,
)
from ._callback_events import (
    AnyCallbackEvent,
    ApprovalDecision,
    ApprovalRequest,
    CallbackAnswer,
    CallbackEvent,
    CryptoDeposit,
    CryptoDepositEvent,
    CryptoEvent,
    CryptoTransfer,
    CryptoWithdrawal,
    CryptoWithdrawalEvent,
    UnknownCallbackEvent,
    VerifiedDelivery,
)
from ._callback_processor import (
    DEFAULT_PROCESSING_TTL,
    DEFAULT_SEEN_TTL,
    NO_APPROVER_REASON,
    UNREADABLE_APPROVAL_REASON,
    ApprovalHandler,
    CallbackProcessor,
    EventHandler,
    OtherEvent,
    OtherEventHandler,
    settle_waiters,
)

if TYPE_CHECKING:
    from ._session import AssetPaySession

__all__ = [
    "NO_APPROVER_REASON",
    "UNREADABLE_APPROVAL_REASON",
    "AnyCallbackEvent",
    "ApprovalDecision",
    "ApprovalHandler",
    "ApprovalRequest",
    "CallbackAnswer",
    "CallbackAuthenticationError",
    "CallbackError",
    "CallbackEvent",
    "CallbackProcessor",
    "CryptoDeposit",
    "CryptoDepositEvent",
    "CryptoEvent",
    "CryptoTransfer",
    "CryptoWithdrawal",
    "CryptoWithdrawalEvent",
    "DedupeStore",
    "EventHandler",
    "InvalidCallbackBodyError",
    "MalformedSignatureError",
    "MemoryDedupeStore",
    "MissingSignatureError",
    "OtherEvent",
    "OtherEventHandler",
    "SignatureMismatchError",
    "TimestampToleranceError",
    "UnknownCallbackEvent",
    "UnsignedTestPing",
    "VerifiedDelivery",
    "callback_handler",
    "is_test_ping",
    "settle_waiters",
    "verify_callback",
    "verify_signature",
]


def callback_handler(
    secrets: str | Sequence[str],
    on_event: EventHandler,
    *,
    on_approval: ApprovalHandler | None = None,
    on_other: OtherEventHandler | None = None,
    dedupe: DedupeStore | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Clock | None = None,
    seen_ttl: float = DEFAULT_SEEN_TTL,
    processing_ttl: float = DEFAULT_PROCESSING_TTL,
    session: AssetPaySession | None = None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler for AssetPay's callback URL: a thin adapter over a
    [`CallbackProcessor`][assetpay_async.callbacks.CallbackProcessor] built with the same arguments, which
    documents them and every answer.

    Returns:
        A coroutine function to register with ``app.router.add_post(path, handler)``.

    Raises:
        ConfigurationError: no secret, a bad tolerance or TTL.
    """
    processor = CallbackProcessor(
        secrets,
        on_event,
        on_approval=on_approval,
        on_other=on_other,
        dedupe=dedupe,
        tolerance=tolerance,
        now=now,
        seen_ttl=seen_ttl,
        processing_ttl=processing_ttl,
        session=session,
    )

    async def handle(request: web.Request) -> web.Response:
        # request.headers is a multidict: a repeated signature header stays visible (and is refused).
        answer = await processor.handle(await request.read(), request.headers)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    return handle
