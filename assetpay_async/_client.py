"""AssetPayClient: a cheap handle bound to one end user's client token."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from . import _http, _poller
from . import _protocol as proto
from ._batch import CancelBatch, CancelOutcome, ProgressCallback
from ._errors import (
    AssetPayError,
    InvalidRequestError,
    QueueTimeoutError,
    RateLimitedError,
    RequestTimeoutError,
    SessionClosedError,
    TransportError,
    WaitTimeoutError,
)
from ._models import CancelResult, Game, Trade, TradeItem, TradePage, TradeType
from ._poller import FollowedItem
from ._tokens import SecretToken

if TYPE_CHECKING:
    from ._session import AssetPaySession

__all__ = ["AssetPayClient"]

T = TypeVar("T")
logger = logging.getLogger("assetpay_async")


def _backoff(attempt: int, base: float, cap: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class AssetPayClient:
    """Calls on behalf of one end user. Get one from :meth:`AssetPaySession.client`; create as many as needed.

    The token is held in a :class:`SecretToken`: ``repr(client)`` shows the merchant and a fingerprint only.
    """

    __slots__ = ("_merchant_id", "_session", "_token")

    def __init__(self, session: AssetPaySession, token: SecretToken, merchant_id: str) -> None:
        self._session = session
        self._token = token
        self._merchant_id = merchant_id

    @property
    def merchant_id(self) -> str:
        return self._merchant_id

    @property
    def session(self) -> AssetPaySession:
        return self._session

    @property
    def token_fingerprint(self) -> str:
        """A short hash of the token, safe to log."""
        return self._token.fingerprint

    def __repr__(self) -> str:
        return f"<AssetPayClient merchant={self._merchant_id!r} token={self._token.fingerprint}>"

    async def cancel_withdrawal_item(
        self,
        trade_id: uuid.UUID | str,
        item_id: uuid.UUID | str,
        *,
        max_queue_wait: float | None = None,
    ) -> CancelResult:
        """Ask AssetPay to cancel one undelivered withdrawal item.

        A result means the marketplace accepted; the item becomes ``reverted`` later (refund then).

        Args:
            trade_id: the withdrawal trade (UUID or UUID string).
            item_id: the item within it.
            max_queue_wait: seconds this call may wait for quota (default: the session's).

        Raises:
            InvalidRequestError: a bad id, before anything is sent or any quota is spent.
            CancelTooSoonError, NotCancellableError, ForbiddenError, ItemNotFoundError, ...: AssetPay's answer.
            QueueTimeoutError: no quota within ``max_queue_wait``; nothing was sent.
            TransportError: the network failed after retries (``ambiguous`` if it may have been sent).
        """
        spec = proto.cancel_request(trade_id, item_id)
        return await self._call(
            spec,
            proto.decode_cancel,
            max_queue_wait=max_queue_wait,
        )

    async def get_trade(self, trade_id: uuid.UUID | str) -> Trade:
        """Read one trade (``GET /client/trades/{id}``) through the merchant's trades-read quota.

        Raises:
            InvalidRequestError: a bad id, before anything is sent.
            TradeNotFoundError, ForbiddenError, ...: AssetPay's answer.
        """
        spec = proto.get_trade_request(trade_id)
        return await self._call(spec, proto.decode_trade)

    async def list_trades(
        self,
        *,
        type: TradeType | str | None = None,
        game: Game | str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> TradePage:
        """One page of ``GET /client/trades``, newest first; pass ``page.next_cursor`` for the next one."""
        spec = proto.list_trades_request(
            cursor=cursor,
            limit=limit,
            type=None if type is None else str(type),
            game=None if game is None else str(game),
        )
        return await self._call(spec, proto.decode_trade_page)

    async def iter_trades(
        self,
        *,
        type: TradeType | str | None = None,
        game: Game | str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Trade]:
        """Every trade of this user, newest first, following the cursor page by page.

        Each page is one request through the trades-read quota; stop iterating to stop reading.
        """
        cursor: str | None = None
        while True:
            page = await self.list_trades(type=type, game=game, cursor=cursor, limit=page_size)
            for trade in page.items:
                yield trade
            if not page.next_cursor or not page.items:
                return
            cursor = page.next_cursor

    async def wait_for_item(
        self,
        trade_id: uuid.UUID | str,
        item_id: uuid.UUID | str,
        *,
        timeout: float = 900.0,
        first_poll: float = 1.0,
        max_interval: float = 15.0,
    ) -> TradeItem:
        """Follow one item until it reaches a final status (``reverted`` after a cancel) and return it.

        The one-item case of ``wait_for_items``: the trade is polled by the merchant's shared poller (one
        read per trade however many items of it are followed), first ``first_poll`` seconds apart, the gap
        growing by half up to ``max_interval``, every read queued in the trades-read limiter; a callback fed to
        the session (``callback_handler(..., session=session)``) ends the wait at once.

        Raises:
            InvalidRequestError: a bad id or timeout, before anything is sent.
            WaitTimeoutError: not final within ``timeout`` seconds (``last_status`` says where it was).
            ItemNotFoundError: the trade has no such item.
            TradeNotFoundError, ForbiddenError, ...: a read AssetPay refused for good.
        """
        (outcome,) = await self.wait_for_items(
            [(trade_id, item_id)],
            timeout=timeout,
            first_poll=first_poll,
            max_interval=max_interval,
        )
        if outcome.item is None:
            raise outcome.error or WaitTimeoutError(
                f"item {item_id} of trade {trade_id} not final", last_status=None
            )
        return outcome.item

    async def wait_for_items(
        self,
        pairs: Iterable[tuple[uuid.UUID | str, uuid.UUID | str]],
        *,
        timeout: float = 900.0,
        first_poll: float = 1.0,
        max_interval: float = 15.0,
    ) -> list[FollowedItem]:
        """Follow many items until each is final or ``timeout`` seconds have passed; outcomes in input order.

        Every waiter of the session shares one poller per merchant: a poll round reads each distinct trade
        once however many of its items are followed, paced by the merchant's trades-read limiter. Callbacks
        fed to the session settle items without a read. Never raises for one item: each
        [`FollowedItem`][assetpay_async.FollowedItem] holds the final item or the error
        (``WaitTimeoutError``, ``ItemNotFoundError``, a refused read).

        Raises:
            InvalidRequestError: a bad id (naming its position) or timeout, before anything is sent.
        """
        parsed: list[tuple[uuid.UUID, uuid.UUID]] = []
        for index, pair in enumerate(pairs):
            try:
                trade_id, item_id = pair
                parsed.append(
                    (proto.parse_id(trade_id, "trade_id"), proto.parse_id(item_id, "item_id"))
                )
            except InvalidRequestError as exc:
                raise InvalidRequestError(f"pair {index}: {exc}") from None
            except (TypeError, ValueError):
                raise InvalidRequestError(
                    f"pair {index}: expected (trade_id, item_id), got {type(pair).__name__}"
                ) from None
        for name, value in (
            ("timeout", timeout),
            ("first_poll", first_poll),
            ("max_interval", max_interval),
        ):
            if isinstance(value, bool) or not (isinstance(value, int | float) and value > 0):
                raise InvalidRequestError(f"{name} must be a positive number of seconds")
        poller = _poller.poller_for(self._session, self._merchant_id)
        return await poller.wait(
            self,
            parsed,
            timeout=float(timeout),
            first_poll=float(first_poll),
            max_interval=float(max_interval),
        )

    def batch(
        self,
        pairs: Iterable[tuple[object, object]],
        *,
        workers: int = 32,
        on_progress: ProgressCallback | None = None,
        reschedule_too_soon: bool = False,
        max_reschedule_wait: float = 1800.0,
    ) -> CancelBatch:
        """A :class:`CancelBatch` of ``(trade_id, item_id)`` pairs, not started yet (``await batch.run()``)."""
        return CancelBatch(
            self,
            pairs,
            workers=workers,
            on_progress=on_progress,
            reschedule_too_soon=reschedule_too_soon,
            max_reschedule_wait=max_reschedule_wait,
        )

    async def cancel_withdrawal_items(
        self,
        pairs: Iterable[tuple[object, object]],
        *,
        workers: int = 32,
        on_progress: ProgressCallback | None = None,
        reschedule_too_soon: bool = False,
        max_reschedule_wait: float = 1800.0,
    ) -> list[CancelOutcome]:
        """Cancel many items; one :class:`CancelOutcome` per pair, in input order. Never raises for one pair.

        Duplicate pairs are cancelled once; bad ids fail before any quota is spent; with
        ``reschedule_too_soon`` an item younger than 30 minutes is cancelled again once it is old enough.
        Use :meth:`batch` instead to keep a handle on the outcomes if the task may be cancelled.
        """
        return await self.batch(
            pairs,
            workers=workers,
            on_progress=on_progress,
            reschedule_too_soon=reschedule_too_soon,
            max_reschedule_wait=max_reschedule_wait,
        ).run()

    async def _call(
        self,
        spec: proto.RequestSpec,
        decode: Callable[[proto.Envelope, int], T],
        *,
        max_queue_wait: float | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> T:
        """Run one call: limiter, attempt, classify, retry. Every attempt pays the limiter.

        ``on_send`` is called as each granted attempt goes on the wire (a batch uses it to tell a pair that
        may have reached AssetPay from one still queued for quota).
        """
        session = self._session
        retry = session.retry_policy
        limiter = session.limiter_for(self._merchant_id, spec.route_group)
        queue_budget = (
            max_queue_wait if max_queue_wait is not None else session.default_max_queue_wait
        )
        request_id = proto.new_request_id()
        headers = proto.request_headers(self._token.reveal(), request_id)
        maybe_sent = False
        failures = 0
        attempt = 0
        rate_limited_since: float | None = None
        queued_total = 0.0
        while True:
            attempt += 1
            remaining = None if queue_budget is None else max(0.0, queue_budget - queued_total)
            try:
                queued = await limiter.acquire(max_wait=remaining)
            except (QueueTimeoutError, SessionClosedError) as exc:
                exc.ambiguous = maybe_sent
                raise
            queued_total += queued
            if on_send is not None:
                on_send()
            try:
                raw = await session.send(spec, headers)
            except SessionClosedError as exc:  # closed while this call waited or retried
                exc.ambiguous = maybe_sent
                raise
            except _http.TLSError as exc:
                raise TransportError(
                    f"TLS failure talking to AssetPay: {exc}", request_id=request_id
                ) from None
            except (_http.NotSentError, _http.MaybeSentError) as exc:
                lost = isinstance(exc, _http.MaybeSentError)
                maybe_sent = maybe_sent or lost
                self._log(
                    spec,
                    attempt=attempt,
                    queued=queued,
                    raw=None,
                    key=None,
                    request_id=request_id,
                    failure=str(exc),
                )
                failures += 1
                if failures <= retry.max_retries and (spec.repeatable or not lost):
                    await asyncio.sleep(_backoff(failures, retry.backoff_base, retry.backoff_cap))
                    continue
                timed_out = isinstance(exc, _http.MaybeSentError) and exc.timed_out
                cls = RequestTimeoutError if timed_out else TransportError
                raise cls(
                    f"{spec.method} {spec.path} failed after {attempt} attempt(s): {exc}",
                    request_id=request_id,
                    ambiguous=maybe_sent,
                ) from None
            try:
                envelope = proto.decode_envelope(
                    raw.status, raw.headers, raw.body, request_id, ambiguous=maybe_sent
                )
            except RateLimitedError as exc:
                self._log(
                    spec,
                    attempt=attempt,
                    queued=queued,
                    raw=raw,
                    key=exc.key,
                    request_id=exc.request_id,
                    failure=None,
                )
                limiter.rate_limited(exc.retry_after)
                now = asyncio.get_running_loop().time()
                if rate_limited_since is None:  # (a virtual clock can read 0.0: no `or` here)
                    rate_limited_since = now
                if now - rate_limited_since >= retry.max_rate_limited_wait:
                    raise
                continue
            except AssetPayError as exc:
                limiter.succeeded()
                key = getattr(exc, "key", None) or type(exc).__name__
                self._log(
                    spec,
                    attempt=attempt,
                    queued=queued,
                    raw=raw,
                    key=key,
                    request_id=getattr(exc, "request_id", None),
                    failure=None,
                )
                raise
            limiter.succeeded()
            self._log(
                spec,
                attempt=attempt,
                queued=queued,
                raw=raw,
                key=None,
                request_id=envelope.request_id,
                failure=None,
            )
            return decode(envelope, raw.status)

    def _log(
        self,
        spec: proto.RequestSpec,
        *,
        attempt: int,
        queued: float,
        raw: _http.RawResponse | None,
        key: str | None,
        request_id: str | None,
        failure: str | None,
    ) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        logger.debug(
            "%s %s group=%s status=%s key=%s request_id=%s attempt=%d queued=%.3fs wire=%s%s",
            spec.method,
            spec.path,
            spec.route_group.value,
            raw.status if raw else "-",
            key or "-",
            request_id,
            attempt,
            queued,
            f"{raw.wire_seconds:.3f}s" if raw else "-",
            f" failure={failure}" if failure else "",
        )
