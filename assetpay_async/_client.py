"""AssetPayClient: a cheap handle bound to one end user's client token."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar, Unpack

from . import _poller
from . import _protocol as proto
from ._batch import BatchOptions, CancelBatch, CancelOutcome
from ._errors import (
    AssetPayError,
    InvalidRequestError,
    WaitTimeoutError,
)
from ._models import (
    CancelResult,
    Game,
    Trade,
    TradeCancelResult,
    TradeItem,
    TradePage,
    TradeType,
)
from ._poller import FollowedItem
from ._reader import TradeReader
from ._tokens import SecretToken

if TYPE_CHECKING:
    from ._interfaces import SessionView, TokenSource
    from ._transport import Requester

__all__ = ["AssetPayClient"]

T = TypeVar("T")
logger = logging.getLogger("assetpay_async")


class AssetPayClient:
    """Calls on behalf of one end user.

    Get one from [`AssetPaySession.client`][assetpay_async.AssetPaySession.client]; create as many as needed.

    The token is held in a `SecretToken`: ``repr(client)`` shows the merchant and a fingerprint only.
    """

    __slots__ = ("_merchant_id", "_requester", "_session", "_token")

    def __init__(
        self,
        session: SessionView,
        requester: Requester,
        token: SecretToken | TokenSource,
        merchant_id: str,
    ) -> None:
        self._session = session
        self._requester = requester
        self._token = token
        self._merchant_id = merchant_id

    @property
    def merchant_id(self) -> str:
        return self._merchant_id

    @property
    def session(self) -> SessionView:
        """The [`AssetPaySession`][assetpay_async.AssetPaySession] that made this client."""
        return self._session

    @property
    def token_fingerprint(self) -> str:
        """A short hash of the token, safe to log (for a token source: an id of that source)."""
        if isinstance(self._token, SecretToken):
            return self._token.fingerprint
        return f"source:{id(self._token):x}"

    def __repr__(self) -> str:
        return f"<AssetPayClient merchant={self._merchant_id!r} token={self.token_fingerprint}>"

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
            trade_id: the withdrawal trade: AssetPay's id or the externalId you gave it (a string sent as
                given, or a `uuid.UUID`); see "Trade and item refs" in the docs.
            item_id: the item within it: its id (a CS2 item's marketplace listing id) or your externalId.
            max_queue_wait: seconds this call may wait for quota (default: the session's).

        Raises:
            InvalidRequestError: a bad ref, before anything is sent or any quota is spent.
            CancelTooSoonError, NotCancellableError, ForbiddenError, ItemNotFoundError, ...: AssetPay's answer.
            InvalidResponseError: an unreadable answer, or one naming another trade or item (``ambiguous``).
            QueueTimeoutError: no quota within ``max_queue_wait``; nothing was sent.
            TransportError: the network failed after retries (``ambiguous`` if it may have been sent).
        """
        call = proto.cancel_item_call(trade_id, item_id)
        return await self._send_cancel(call, max_queue_wait)

    async def cancel_withdrawal_trade(
        self,
        trade_id: uuid.UUID | str,
        *,
        max_queue_wait: float | None = None,
    ) -> TradeCancelResult:
        """Ask AssetPay to cancel every still undelivered item of a withdrawal trade, in one request.

        One request instead of one per item, through the same quota as
        [`cancel_withdrawal_item`][assetpay_async.AssetPayClient.cancel_withdrawal_item] (AssetPay publishes
        no quota of its own for it). Best effort: a 200 may report some items failed; each row says which
        and why (``reason`` is AssetPay's error key, e.g. ``TRADE_CANCEL_TOO_SOON``).

        Args:
            trade_id: AssetPay's id of the trade or the externalId you gave it.
            max_queue_wait: seconds this call may wait for quota (default: the session's).

        Raises:
            InvalidRequestError: a bad ref, before anything is sent or any quota is spent.
            TradeNotFoundError, ForbiddenError, NotCancellableError, ...: AssetPay's answer.
            InvalidResponseError: an unreadable answer, or one naming another trade (``ambiguous``).
            QueueTimeoutError: no quota within ``max_queue_wait``; nothing was sent.
            TransportError: the network failed after retries (``ambiguous`` if it may have been sent).
        """
        call = proto.cancel_trade_call(trade_id)
        return await self._send_cancel(call, max_queue_wait)

    async def _send_cancel(self, call: proto.Call[T], max_queue_wait: float | None) -> T:
        """Send a cancel; when its answer names another trade or item than a ref that may be a UUID-shaped
        externalId, resolve the ref with one read before calling it a mismatch."""
        try:
            # Through `_send`, which a merchant-mode client extends: it learns whose quota the call spends
            # from the user's first token.
            return await self._send(call, max_queue_wait=max_queue_wait)
        except proto.RefsUnconfirmed as unconfirmed:
            if unconfirmed.trade_ref is None:
                raise
            try:
                trade = await self.get_trade(unconfirmed.trade_ref, type=None)
            except AssetPayError as exc:
                raise unconfirmed from exc  # still unknown: the ambiguous mismatch stands
            if not proto.confirm_cancel(unconfirmed, trade):
                raise
            result: T = unconfirmed.result
            return result

    async def _send(
        self,
        call: proto.Call[T],
        *,
        max_queue_wait: float | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> T:
        """Run one call object (request and decoder) with this client's token through the session's
        request path (``_transport``): every request of the client goes out here."""
        return await self._requester.call(
            self._token,
            self._merchant_id,
            call.spec,
            call.decode,
            max_queue_wait=max_queue_wait,
            on_send=on_send,
        )

    def _reader(self, pace: Callable[[], Awaitable[None]] | None = None) -> TradeReader:
        """This client's view of the session's read path (``_reader``; ``pace``: the poller's share)."""
        return TradeReader(self._send, self._requester.trade_routes, pace)

    async def get_trade(
        self,
        trade_id: uuid.UUID | str,
        *,
        game: Game | str | None = None,
        type: TradeType | str | None = TradeType.WITHDRAW,
    ) -> Trade:
        """Read one trade through the merchant's trades-read quota.

        The first choice is ``GET /client/trades/{id}`` (one request). That route is not in AssetPay's
        published API: when it answers as a missing route does (a 404 or 405 without an AssetPay envelope, or
        a gateway's 404 envelope with key ``NOT_FOUND`` / code 1003), the read finds the trade in
        ``GET /client/trades`` instead, newest first, page by page (one request per page of 100), until the
        trade turns up. The session then reads through the list, probes the route once more a minute later
        and keeps the list for good only if that answer confirms it (a single transient 404 does not).
        While the session does not know the route, one read probes it and concurrent reads wait for it.

        Args:
            trade_id: AssetPay's id of the trade or the externalId you gave it.
            game: the trade's game, to narrow the list search; both games are searched when None.
            type: the trade's type, to narrow the list search (withdrawals by default); None searches all.

        Raises:
            InvalidRequestError: a bad ref or filter, before anything is sent.
            TradeNotFoundError: no such trade (``TRADE_NOT_FOUND`` from AssetPay, or after a complete list
                search).
            ListingDidNotTerminateError: the list search met a listing that does not end.
            ForbiddenError, ...: AssetPay's answer.
        """
        return await self._reader().get_trade(trade_id, game=game, type=type)

    async def _read_trades(
        self,
        refs: Sequence[str],
        on_read: Callable[[str, Trade | Exception], None],
        *,
        pace: Callable[[], Awaitable[None]] | None = None,
        singly: Collection[str] = (),
    ) -> set[str]:
        """The poller's round: ``TradeReader.read_trades`` (``pace`` awaited before each request)."""
        return await self._reader(pace).read_trades(refs, on_read, singly=singly)

    async def list_trades(
        self,
        *,
        type: TradeType | str | None = None,
        game: Game | str = Game.CS2,
        cursor: str | None = None,
        limit: int = 100,
    ) -> TradePage:
        """One page of ``GET /client/trades`` for one game, newest first; pass ``page.next_cursor`` for more.

        Args:
            type: ``withdraw`` or ``deposit``; both when None.
            game: the game listed (CS2 by default, which is also AssetPay's default when ``game`` is left
                out). A page holds one game only: for every game, use
                [`iter_trades`][assetpay_async.AssetPayClient.iter_trades] without ``game``.
            cursor: ``next_cursor`` of the previous page.
            limit: trades per page, 1 to 100.
        """
        return await self._reader().list_trades(type=type, game=game, cursor=cursor, limit=limit)

    async def iter_trades(
        self,
        *,
        type: TradeType | str | None = None,
        game: Game | str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Trade]:
        """Every trade of this user, newest first, following the cursor page by page.

        Without ``game``, every game's trades: AssetPay lists one game per request, so each game is read
        on its own and the two are merged newest first (the first page of each is read before the first
        trade is yielded). Each page is one request through the trades-read quota; stop iterating to stop
        reading. A ``nextCursor`` equal to the cursor sent ends a game's scan; a cursor that comes back
        later (A -> B -> A), or a listing past its bound of pages, raises
        [`ListingDidNotTerminateError`][assetpay_async.ListingDidNotTerminateError].
        """
        pages = self._reader().iter_trades(type=type, game=game, page_size=page_size)
        async with contextlib.aclosing(pages) as trades:
            async for trade in trades:
                yield trade

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
        parsed: list[tuple[str, str]] = []
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
        self, pairs: Iterable[tuple[object, object]], **options: Unpack[BatchOptions]
    ) -> CancelBatch:
        """A [`CancelBatch`][assetpay_async.CancelBatch] of ``(trade_id, item_id)`` pairs, not started yet
        (``await batch.run()``); ``options`` are those of ``CancelBatch``."""
        return CancelBatch(self, pairs, **options)

    async def cancel_withdrawal_items(
        self, pairs: Iterable[tuple[object, object]], **options: Unpack[BatchOptions]
    ) -> list[CancelOutcome]:
        """Cancel many items; one [`CancelOutcome`][assetpay_async.CancelOutcome] per pair, in input order.

        Never raises for one pair.

        Duplicate pairs are cancelled once; bad ids fail before any quota is spent; with
        ``reschedule_too_soon`` an item younger than 30 minutes is cancelled again once it is old enough; with
        ``whole_trades`` a trade whose every undelivered item is listed goes as one whole-trade cancel.
        Use `batch` instead to keep a handle on the outcomes if the task may be cancelled.
        """
        return await self.batch(pairs, **options).run()
