"""AssetPay's signed callbacks: verify them, decode their event, answer the withdrawal approval gate.

Two layers:

* `verify_callback` (and `verify_signature`) take the raw body and headers and return a verified
  event or raise a `CallbackError`; they work with any web framework. The event is a `CallbackEvent` (a
  trade), a `CryptoWithdrawalEvent`, a `CryptoDepositEvent`, or an `UnknownCallbackEvent` keeping the raw
  payload of a body the SDK does not know.
* `callback_handler` builds an aiohttp handler on top: it answers AssetPay, hands each event to your
  coroutine once (dedupe on the delivery id, on the trade id for approvals) and never approves a withdrawal
  unless your ``on_approval`` coroutine said so.

```
CallbackError (AssetPayError)          http_status: what to answer AssetPay
├── CallbackAuthenticationError        401
│   ├── MissingSignatureError          no X-AssetPay-Signature header
│   ├── MalformedSignatureError        a header that does not parse
│   ├── SignatureMismatchError         no signature matches any secret (or the body was altered)
│   └── TimestampToleranceError        signed more than ``tolerance`` seconds before or after now
├── InvalidCallbackBodyError           no longer raised (an unreadable authentic body is an unknown event)
└── UnsignedTestPing                   200: the unsigned {"test": true} ping; trust nothing in it
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

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final

from aiohttp import web

from ._callback_core import (
    DEFAULT_TOLERANCE,
    AnyCallbackEvent,
    ApprovalDecision,
    ApprovalRequest,
    CallbackAnswer,
    CallbackAuthenticationError,
    CallbackError,
    CallbackEvent,
    Clock,
    CryptoDeposit,
    CryptoDepositEvent,
    CryptoWithdrawal,
    CryptoWithdrawalEvent,
    InvalidCallbackBodyError,
    MalformedSignatureError,
    MissingSignatureError,
    SignatureMismatchError,
    TimestampToleranceError,
    UnknownCallbackEvent,
    UnsignedTestPing,
    VerifiedDelivery,
    check_tolerance,
    is_test_ping,
    secret_keys,
    verify_callback,
    verify_signature,
)
from ._callback_dedupe import DedupeStore, MemoryDedupeStore
from ._poller import observe

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
    "CryptoDeposit",
    "CryptoDepositEvent",
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

logger = logging.getLogger(__name__)

EventHandler = Callable[[CallbackEvent], Awaitable[None]]
"""Your coroutine for trade events: return normally once handled, raise to have AssetPay retry."""

OtherEvent = CryptoWithdrawalEvent | CryptoDepositEvent | UnknownCallbackEvent
"""The events that are not trade events (and not approval requests)."""

OtherEventHandler = Callable[[OtherEvent], Awaitable[None]]
"""Your coroutine for crypto and unknown events: return once handled, raise to have AssetPay retry."""

ApprovalHandler = Callable[[ApprovalRequest], Awaitable[ApprovalDecision]]
"""Your coroutine for approval requests (a trade or a crypto withdrawal): return
[`ApprovalDecision.approve`][assetpay_async.callbacks.ApprovalDecision.approve] or ``.reject(reason)``."""

NO_APPROVER_REASON: Final = "this callback endpoint does not approve withdrawals"
UNREADABLE_APPROVAL_REASON: Final = "the approval request could not be read"

DEFAULT_SEEN_TTL: Final = 7 * 24 * 3600.0
DEFAULT_PROCESSING_TTL: Final = 120.0

# Store values. A key is claimed as "processing" while your coroutine runs, then records the outcome.
_PROCESSING: Final = "processing"
_DONE: Final = "done"
_APPROVED: Final = "approved"
_REJECTED_PREFIX: Final = "rejected:"


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
    """An aiohttp handler for AssetPay's callback URL.

    Answers:

    * 200 once ``on_event`` returned for a verified trade event (or at once for a delivery already handled);
    * 200 once ``on_other`` returned for a crypto withdrawal or deposit, or an
      [`UnknownCallbackEvent`][assetpay_async.callbacks.UnknownCallbackEvent]
      (a signed body the SDK does not know); without ``on_other`` they are acknowledged and logged. An
      authentic delivery never gets a 4xx for its shape alone;
    * 401 for a missing, malformed or mismatching signature or a timestamp outside ``tolerance``;
    * 200 for AssetPay's unsigned test ping (nothing else happens);
    * for an approval request (a ``withdraw`` trade in ``initiated``, a crypto withdrawal in
      ``awaiting_approval``): the decision of ``on_approval``, given once per trade or withdrawal and repeated to
      AssetPay's further attempts. **Without** ``on_approval`` every approval request is rejected (403 with a
      reject body): an endpoint that answers 200 to everything would approve every withdrawal. An approval
      request the SDK cannot read is rejected without asking ``on_approval``. Approval requests never reach
      ``on_event``;
    * 500 when ``on_event``/``on_approval`` raises: the delivery is not marked as handled, so AssetPay's retry
      runs it again;
    * 503 to a redelivery that arrives while the first one is still being handled, so it is retried later
      instead of being acknowledged before the outcome is known.

    Args:
        secrets: the merchant's API secret, or several during a rotation.
        on_event: awaited with each verified trade event, once per delivery id.
        on_approval: awaited with each approval request, once per trade or crypto withdrawal id; must return
            an [`ApprovalDecision`][assetpay_async.callbacks.ApprovalDecision] (anything else rejects).
        on_other: awaited with each crypto or unknown event, once per delivery id (default: acknowledge and
            log it).
        dedupe: where handled deliveries are remembered; a per-process `MemoryDedupeStore` by default.
            Pass a shared store when several processes serve the callback URL.
        tolerance: seconds the signed timestamp may lie before or after now.
        now: a clock returning the current datetime (tests); the system clock by default.
        seen_ttl: seconds a handled delivery (and an approval decision) is remembered.
        processing_ttl: seconds a delivery stays claimed while being handled, should the process die meanwhile.
        session: the [`AssetPaySession`][assetpay_async.AssetPaySession] whose waiters (``wait_for_item``,
            ``wait_for_items``) each verified event settles at once when it shows their item final.

    Returns:
        A coroutine function to register with ``app.router.add_post(path, handler)``.
    """
    secret_keys(secrets)  # fail at start-up, not at the first callback
    secret_list = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    tolerance = check_tolerance(tolerance)
    for name, ttl in (("seen_ttl", seen_ttl), ("processing_ttl", processing_ttl)):
        if not ttl > 0:
            raise ValueError(f"{name} must be a positive number of seconds")
    store: DedupeStore = MemoryDedupeStore() if dedupe is None else dedupe

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = verify_callback(
                body, request.headers, secret_list, tolerance=tolerance, now=now
            )
        except UnsignedTestPing:
            logger.info("answered AssetPay's unsigned test ping")
            return _json(200, {"ok": True})
        except CallbackError as exc:
            logger.warning("refused a callback (%s): %s", type(exc).__name__, exc)
            return _json(exc.http_status, {"error": type(exc).__name__})
        if isinstance(event, UnknownCallbackEvent) and event.is_approval_request:
            return await _unreadable_approval(event)
        if isinstance(event, CallbackEvent | CryptoWithdrawalEvent) and event.is_approval_request:
            return await _approval(event)
        if session is not None and isinstance(event, CallbackEvent):
            settle_waiters(session, event)
        return await _event(event)

    async def _dispatch(event: AnyCallbackEvent) -> None:
        if isinstance(event, CallbackEvent):
            await on_event(event)
        elif on_other is not None:
            await on_other(event)
        else:
            logger.info(
                "acknowledged %s %s without handling it (pass on_other= to handle these)",
                type(event).__name__,
                event.delivery_id,
            )

    async def _event(event: AnyCallbackEvent) -> web.Response:
        key = event.dedupe_key
        if not await store.add(key, _PROCESSING, processing_ttl):
            if await store.get(key) == _DONE:
                logger.debug("skipped duplicate delivery %s", event.delivery_id)
                return _json(200, {"ok": True, "duplicate": True})
            return _busy(event)
        try:
            await _dispatch(event)
        except Exception:
            await _release(key)
            logger.exception(
                "the event handler failed for delivery %s; AssetPay will retry", event.delivery_id
            )
            return _json(500, {"error": "handler failed"})
        except BaseException:  # cancelled: leave the delivery for AssetPay's retry
            await _release(key)
            raise
        await store.set(key, _DONE, seen_ttl)
        return _json(200, {"ok": True})

    async def _unreadable_approval(event: UnknownCallbackEvent) -> web.Response:
        logger.error(
            "rejected an approval request the SDK cannot read (delivery %s): %s",
            event.delivery_id,
            event.reason,
        )
        decision = ApprovalDecision.reject(UNREADABLE_APPROVAL_REASON)
        await store.add(event.dedupe_key, _encode_decision(decision), seen_ttl)
        return _response(decision.answer())

    async def _approval(event: ApprovalRequest) -> web.Response:
        if on_approval is None:
            logger.warning(
                "rejected withdrawal %s: no on_approval handler is configured", _subject(event)
            )
            return _response(ApprovalDecision.reject(NO_APPROVER_REASON).answer())
        key = event.dedupe_key
        if not await store.add(key, _PROCESSING, processing_ttl):
            earlier = _decode_decision(await store.get(key))
            if earlier is None:
                return _busy(event)
            logger.debug("repeated the decision on withdrawal %s", _subject(event))
            return _response(earlier.answer())
        try:
            decision: object = await on_approval(event)
        except Exception:
            await _release(key)
            logger.exception(
                "on_approval failed for withdrawal %s; AssetPay will retry", _subject(event)
            )
            return _json(500, {"error": "handler failed"})
        except BaseException:  # cancelled: decide on AssetPay's next attempt
            await _release(key)
            raise
        verdict = (
            decision if isinstance(decision, ApprovalDecision) else _no_decision(decision, event)
        )
        await store.set(key, _encode_decision(verdict), seen_ttl)
        return _response(verdict.answer())

    async def _release(key: str) -> None:
        try:
            await store.delete(key)
        except Exception:
            # The claim then lapses after processing_ttl; until then redeliveries get 503 and come back.
            logger.exception("could not release dedupe key %s", key)

    return handle


def _subject(event: ApprovalRequest) -> str | None:
    """The id of what an approval request is about, for logs."""
    return event.trade.id if isinstance(event, CallbackEvent) else event.withdrawal.id


def settle_waiters(session: AssetPaySession, event: CallbackEvent) -> int:
    """Settle the session's waiters whose item this verified event shows final; how many were settled.

    [`callback_handler`][assetpay_async.callbacks.callback_handler] does this when given ``session=``; call it
    yourself after [`verify_callback`][assetpay_async.callbacks.verify_callback] in another web framework.
    Polling stays the fallback for events that never arrive.
    """
    return observe(session, event.trade)


def _no_decision(returned: object, event: ApprovalRequest) -> ApprovalDecision:
    logger.error(
        "on_approval returned %s instead of an ApprovalDecision: rejecting withdrawal %s",
        type(returned).__name__,
        _subject(event),
    )
    return ApprovalDecision.reject("the approval handler gave no decision")


def _busy(event: AnyCallbackEvent) -> web.Response:
    logger.info("delivery %s is still being handled; asked AssetPay to retry", event.delivery_id)
    response = _json(503, {"error": "already in progress"})
    response.headers["Retry-After"] = "1"
    return response


def _encode_decision(decision: ApprovalDecision) -> str:
    return _APPROVED if decision.approved else _REJECTED_PREFIX + decision.reason


def _decode_decision(value: str | None) -> ApprovalDecision | None:
    if value == _APPROVED:
        return ApprovalDecision.approve()
    if value is not None and value.startswith(_REJECTED_PREFIX):
        return ApprovalDecision(approved=False, reason=value.removeprefix(_REJECTED_PREFIX))
    return None


def _json(status: int, payload: dict[str, object]) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(payload).encode(), content_type="application/json"
    )


def _response(answer: CallbackAnswer) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)
