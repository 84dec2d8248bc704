"""The framework-neutral callback processor: verification, dedupe, approve-once and the answers.

[`CallbackProcessor.handle`][assetpay_async.callbacks.CallbackProcessor.handle] takes the raw body and the
headers and returns a [`CallbackAnswer`][assetpay_async.callbacks.CallbackAnswer]; web frameworks are adapters
on top (``callback_handler`` for aiohttp, ``processor.asgi()`` for Starlette, FastAPI and other ASGI servers).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from ._callback_asgi import CallbackASGIApp, asgi_app
from ._callback_core import DEFAULT_TOLERANCE, check_tolerance, secret_keys, verify_callback
from ._callback_dedupe import DedupeStore, MemoryDedupeStore
from ._callback_errors import CallbackError, UnsignedTestPing
from ._callback_events import (
    AnyCallbackEvent,
    ApprovalDecision,
    ApprovalRequest,
    CallbackAnswer,
    CallbackEvent,
    CryptoDepositEvent,
    CryptoWithdrawalEvent,
    UnknownCallbackEvent,
)
from ._errors import ConfigurationError
from ._poller import observe

if TYPE_CHECKING:
    from ._session import AssetPaySession

__all__ = [
    "NO_APPROVER_REASON",
    "UNREADABLE_APPROVAL_REASON",
    "ApprovalHandler",
    "CallbackProcessor",
    "EventHandler",
    "OtherEvent",
    "OtherEventHandler",
    "settle_waiters",
]

logger = logging.getLogger("assetpay_async.callbacks")

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

OK: Final = CallbackAnswer.json(200, {"ok": True})
DUPLICATE: Final = CallbackAnswer.json(200, {"ok": True, "duplicate": True})
FAILED: Final = CallbackAnswer.json(500, {"error": "handler failed"})
BUSY: Final = CallbackAnswer.json(
    503, {"error": "already in progress"}, headers={"Retry-After": "1"}
)


class CallbackProcessor:
    """Answers AssetPay's callbacks, whatever the web framework: verify, dedupe, approve once.

    Answers (see [`handle`][assetpay_async.callbacks.CallbackProcessor.handle]):

    * ``200 {"ok": true}`` once ``on_event`` (a trade) or ``on_other`` (a crypto or unknown event) returned, or
      at once for a delivery already handled (``"duplicate": true``);
    * ``200 {"action": "approve"}`` or **the rejection**, ``200 {"action": "reject", "reason": ...}``, to an
      approval request (a ``withdraw`` trade in ``initiated``, a crypto withdrawal in ``awaiting_approval``,
      in any case): ``on_approval`` decides, once per trade or withdrawal; without it every one is rejected;
    * the rejection to every signed body that is **not certainly a non-gate event** (not JSON, truncated, a
      trade without ``type``, a shape the SDK does not know, ...), without asking ``on_approval``;
    * ``401`` to a missing, malformed or mismatching signature, or a timestamp outside ``tolerance``;
    * ``200 {"ok": true}`` to the **unsigned** test ping (nothing else happens);
    * ``500`` when ``on_event``/``on_other``/``on_approval`` raised (not marked handled: AssetPay retries);
    * ``503`` with ``Retry-After: 1`` to a redelivery while the first copy is still being handled.

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
            ``wait_for_items``) each verified trade event settles at once when it shows their item final.

    Raises:
        ConfigurationError: no secret, a bad tolerance or TTL.
    """

    def __init__(
        self,
        secrets: str | Sequence[str],
        on_event: EventHandler,
        *,
        on_approval: ApprovalHandler | None = None,
        on_other: OtherEventHandler | None = None,
        dedupe: DedupeStore | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        now: Callable[[], dt.datetime] | None = None,
        seen_ttl: float = DEFAULT_SEEN_TTL,
        processing_ttl: float = DEFAULT_PROCESSING_TTL,
        session: AssetPaySession | None = None,
    ) -> None:
        secret_keys(secrets)  # fail at start-up, not at the first callback
        self._secrets = (secrets,) if isinstance(secrets, str) else tuple(secrets)
        self._tolerance = check_tolerance(tolerance)
        for name, ttl in (("seen_ttl", seen_ttl), ("processing_ttl", processing_ttl)):
            if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        self._on_event = on_event
        self._on_approval = on_approval
        self._on_other = on_other
        self._store: DedupeStore = MemoryDedupeStore() if dedupe is None else dedupe
        self._now = now
        self._seen_ttl = float(seen_ttl)
        self._processing_ttl = float(processing_ttl)
        self._session = session

    def __repr__(self) -> str:
        return f"<CallbackProcessor secrets={len(self._secrets)} store={self._store!r}>"

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> CallbackAnswer:
        """Verify one delivery, hand it to your coroutines once, and build the answer for AssetPay.

        Args:
            body: the raw request body, exactly as received.
            headers: the request headers (looked up case-insensitively; a repeated signature header, as a
                multidict shows it or joined with commas, is refused as malformed).

        Returns:
            The answer to write back as it is.
        """
        try:
            event = verify_callback(
                body, headers, self._secrets, tolerance=self._tolerance, now=self._now
            )
        except UnsignedTestPing:
            logger.info("answered AssetPay's unsigned test ping")
            return OK
        except CallbackError as exc:
            logger.warning("refused a callback (%s): %s", type(exc).__name__, exc)
            return CallbackAnswer.json(exc.http_status, {"error": type(exc).__name__})
        if isinstance(event, UnknownCallbackEvent) and event.is_approval_request:
            return await self._unreadable(event)
        if isinstance(event, CallbackEvent | CryptoWithdrawalEvent) and event.is_approval_request:
            return await self._approval(event)
        if isinstance(event, CryptoWithdrawalEvent) and not event.is_certainly_not_a_gate:
            return await self._unreadable(event)
        if self._session is not None and isinstance(event, CallbackEvent):
            settle_waiters(self._session, event)
        return await self._event(event)

    def asgi(self) -> CallbackASGIApp:
        """A plain ASGI application answering with this processor, for Starlette, FastAPI or any ASGI server.

        Route it at your callback path (``app.add_route("/assetpay/callback", processor.asgi())`` in FastAPI
        or Starlette, ``Route(path, processor.asgi())``) or ``Mount`` it. It answers every ``POST`` (``405`` to
        other methods, ``413`` to a body over 1 MiB) and imports no ASGI library.
        """
        return asgi_app(self)

    async def _dispatch(self, event: AnyCallbackEvent) -> None:
        if isinstance(event, CallbackEvent):
            await self._on_event(event)
        elif self._on_other is not None:
            await self._on_other(event)
        else:
            logger.info(
                "acknowledged %s %s without handling it (pass on_other= to handle these)",
                type(event).__name__,
                event.delivery_id,
            )

    async def _event(self, event: AnyCallbackEvent) -> CallbackAnswer:
        key = event.dedupe_key
        if not await self._store.add(key, _PROCESSING, self._processing_ttl):
            if await self._store.get(key) == _DONE:
                logger.debug("skipped duplicate delivery %s", event.delivery_id)
                return DUPLICATE
            return _busy(event)
        try:
            await self._dispatch(event)
        except Exception:
            await self._release(key)
            logger.exception(
                "the event handler failed for delivery %s; AssetPay will retry", event.delivery_id
            )
            return FAILED
        except BaseException:  # cancelled: leave the delivery for AssetPay's retry
            await self._release(key)
            raise
        await self._store.set(key, _DONE, self._seen_ttl)
        return OK

    async def _unreadable(
        self, event: UnknownCallbackEvent | CryptoWithdrawalEvent
    ) -> CallbackAnswer:
        """A delivery that may be an approval gate the SDK cannot read: always the rejection.

        ``on_other`` sees it once per key; its failure is logged, not answered 500: after AssetPay's last
        attempt a gate left undecided would be AssetPay's to decide.
        """
        decision = ApprovalDecision.reject(UNREADABLE_APPROVAL_REASON)
        logger.error(
            "rejected a delivery that may be an approval request the SDK cannot read (delivery %s)",
            event.delivery_id,
        )
        try:
            first = await self._store.add(
                event.dedupe_key, _encode_decision(decision), self._seen_ttl
            )
            if first and self._on_other is not None:
                await self._on_other(event)
        except Exception:
            logger.exception(
                "on_other or the dedupe store failed for delivery %s", event.delivery_id
            )
        return decision.answer()

    async def _approval(self, event: ApprovalRequest) -> CallbackAnswer:
        if self._on_approval is None:
            logger.warning(
                "rejected withdrawal %s: no on_approval handler is configured", _subject(event)
            )
            return ApprovalDecision.reject(NO_APPROVER_REASON).answer()
        key = event.dedupe_key
        if not await self._store.add(key, _PROCESSING, self._processing_ttl):
            earlier = _decode_decision(await self._store.get(key))
            if earlier is None:
                return _busy(event)
            logger.debug("repeated the decision on withdrawal %s", _subject(event))
            return earlier.answer()
        try:
            decision: object = await self._on_approval(event)
        except Exception:
            await self._release(key)
            logger.exception(
                "on_approval failed for withdrawal %s; AssetPay will retry", _subject(event)
            )
            return FAILED
        except BaseException:  # cancelled: decide on AssetPay's next attempt
            await self._release(key)
            raise
        verdict = (
            decision if isinstance(decision, ApprovalDecision) else _no_decision(decision, event)
        )
        await self._store.set(key, _encode_decision(verdict), self._seen_ttl)
        return verdict.answer()

    async def _release(self, key: str) -> None:
        try:
            await self._store.delete(key)
        except Exception:
            # The claim then lapses after processing_ttl; until then redeliveries get 503 and come back.
            logger.exception("could not release dedupe key %s", key)


def settle_waiters(session: AssetPaySession, event: CallbackEvent) -> int:
    """Settle the session's waiters whose item this verified event shows final; how many were settled.

    [`CallbackProcessor`][assetpay_async.callbacks.CallbackProcessor] does this when given ``session=``; call
    it yourself after [`verify_callback`][assetpay_async.callbacks.verify_callback] otherwise. Polling stays
    the fallback for events that never arrive.
    """
    return observe(session, event.trade)


def _subject(event: ApprovalRequest) -> str | None:
    """The id of what an approval request is about, for logs."""
    return event.trade.id if isinstance(event, CallbackEvent) else event.withdrawal.id


def _no_decision(returned: object, event: ApprovalRequest) -> ApprovalDecision:
    logger.error(
        "on_approval returned %s instead of an ApprovalDecision: rejecting withdrawal %s",
        type(returned).__name__,
        _subject(event),
    )
    return ApprovalDecision.reject("the approval handler gave no decision")


def _busy(event: AnyCallbackEvent) -> CallbackAnswer:
    logger.info("delivery %s is still being handled; asked AssetPay to retry", event.delivery_id)
    return BUSY


def _encode_decision(decision: ApprovalDecision) -> str:
    return _APPROVED if decision.approved else _REJECTED_PREFIX + decision.reason


def _decode_decision(value: str | None) -> ApprovalDecision | None:
    if value == _APPROVED:
        return ApprovalDecision.approve()
    if value is not None and value.startswith(_REJECTED_PREFIX):
        return ApprovalDecision(approved=False, reason=value.removeprefix(_REJECTED_PREFIX))
    return None
