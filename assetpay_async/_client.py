"""AssetPayClient: a cheap handle bound to one end user's client token."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Final, TypeVar, Unpack

from . import _poller
from . import _protocol as proto
from ._batch import BatchOptions, CancelBatch, CancelOutcome
from ._errors import (
    AssetPayError,
    InvalidRequestError,
    InvalidResponseError,
    TradeNotFoundError,
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
from ._refs import names
from ._tokens import SecretToken

if TYPE_CHECKING:
    from ._interfaces import SessionView, TokenSource
    from ._transport import Requester

__all__ = ["AssetPayClient"]

T = TypeVar("T")
logger = logging.getLogger("assetpay_async")


_OLDEST: Final = dt.datetime.min.replace(tzinfo=dt.UTC)


def _age_key(trade: Trade) -> dt.datetime:
    return trade.created_at or _OLDEST


def _not_listed(ref: str, games: list[str], kind: str | None) -> TradeNotFoundError:
    return TradeNotFoundError(
        f"no trade {ref!r} among this user's trades "
        f"(type {kind or 'any'}, game {' and '.join(games)})",
        http_status=200,
        code=None,
        key="TRADE_NOT_FOUND",
        request_id=None,
    )


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
            # Straight to the request path (what `_send` does, one coroutine fewer on every cancel).
            return await self._requester.call(
                self._token,
                self._merchant_id,
                call.spec,
                call.decode,
                max_queue_wait=max_queue_wait,
            )
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
        """Run one call object (request and decoder) with this client's token."""
        return await self._call(
            call.spec, call.decode, max_queue_wait=max_queue_wait, on_send=on_send
        )

    async def get_trade(
        self,
        trade_id: uuid.UUID | str,
        *,
        game: Game | str | None = None,
        type: TradeType | str | None = TradeType.WITHDRAW,
    ) -> Trade:
        """Read one trade through the merchant's trades-read quota.

        The first choice is ``GET /client/trades/{id}`` (one request). That route is not in AssetPay's
        published API: when it answers as a missing route does (a 404 or 405 without an AssetPay envelope),
        the session remembers it and from then on finds the trade in ``GET /client/trades`` instead, newest
        first, page by page (one request per page of 100), until the trade turns up.

        Args:
            trade_id: AssetPay's id of the trade or the externalId you gave it.
            game: the trade's game, to narrow the list search; both games are searched when None.
            type: the trade's type, to narrow the list search (withdrawals by default); None searches all.

        Raises:
            InvalidRequestError: a bad ref or filter, before anything is sent.
            TradeNotFoundError: no such trade (from AssetPay, or after a complete list search).
            ForbiddenError, ...: AssetPay's answer.
        """
        ref = proto.parse_id(trade_id, "trade_id")
        # Validate the list search's filters now, so a bad one fails before any request either way.
        games = [str(game)] if game is not None else list(proto.GAMES)
        kind = None if type is None else str(type)
        for one in games:
            proto.list_trades_request(type=kind, game=one)
        if not self._requester.trade_routes.single_trade_missing:
            trade = await self._read_single(ref)
            if trade is not None:
                return trade
        return await self._find_trade(ref, games, kind)

    async def _read_single(self, ref: str) -> Trade | None:
        """``GET /client/trades/{ref}``; None when the route answers as a missing one (remembered by the session)."""
        spec = proto.get_trade_request(ref)
        try:
            return await self._call(spec, functools.partial(proto.decode_trade, trade_ref=ref))
        except InvalidResponseError as exc:
            if not proto.is_missing_route(exc):
                raise
            routes = self._requester.trade_routes
            if not routes.single_trade_missing:
                routes.single_trade_missing = True
                logger.info(
                    "GET /client/trades/{id} answered HTTP %s without an AssetPay envelope: "
                    "this session finds trades through GET /client/trades from now on",
                    exc.http_status,
                )
            return None

    async def _find_trade(self, ref: str, games: list[str], kind: str | None) -> Trade:
        """The trade ``ref`` names, found by reading ``GET /client/trades`` newest first."""
        found: dict[str, Trade] = {}
        await self._search_list([ref], games, kind, found)
        if ref not in found:
            raise _not_listed(ref, games, kind)
        return found[ref]

    async def _search_list(
        self, refs: Sequence[str], games: list[str], kind: str | None, found: dict[str, Trade]
    ) -> None:
        """Put in ``found`` the trade each of ``refs`` names, in one scan of ``GET /client/trades``.

        Each game in turn, newest first, page by page; stops as soon as every ref was seen, so a round of
        recent trades costs the pages down to the oldest of them, however many refs there are. A ref still
        missing from ``found`` on return is not listed (every page of ``games`` was read). A page that fails
        raises, leaving in ``found`` what the pages before it showed.
        """
        unseen = [ref for ref in dict.fromkeys(refs) if ref not in found]
        for game in games:
            if not unseen:
                return
            async with contextlib.aclosing(
                self._pages(type=kind, game=game, page_size=100)
            ) as trades:
                async for trade in trades:
                    hits = [ref for ref in unseen if names(ref, trade.id, trade.external_id)]
                    for ref in hits:
                        found[ref] = trade
                        unseen.remove(ref)
                    if not unseen:
                        return

    async def _read_trades(
        self, refs: Sequence[str], on_read: Callable[[str, Trade | Exception], None]
    ) -> None:
        """Read the withdrawal trades ``refs`` name (parsed refs), telling ``on_read`` each one's trade or error.

        The poller's way to read a round of trades. Where the single-trade route serves, one
        ``GET /client/trades/{ref}`` each, all at once, each reported as soon as it is answered. Where the
        session found it missing, ONE scan of ``GET /client/trades`` for all of them (both games, newest
        first, stopping as soon as every ref was seen), every result reported at the end of the scan: a
        ref not listed is a ``TradeNotFoundError`` (after every page of both games), and when a page
        fails, every ref not seen yet gets that page's error. A ref whose single-trade read is the one
        that finds the route missing joins the scan. ``on_read`` is called exactly once per distinct ref
        (unless this coroutine is cancelled) and must not raise.
        """
        games, kind = list(proto.GAMES), str(TradeType.WITHDRAW)
        distinct = list(dict.fromkeys(refs))
        by_list: list[str] = []
        if self._requester.trade_routes.single_trade_missing:
            by_list = distinct
        else:

            async def one(ref: str) -> None:
                try:
                    trade = await self._read_single(ref)
                except Exception as exc:  # reported, never raised: the other reads go on
                    on_read(ref, exc)
                    return
                if trade is None:
                    by_list.append(ref)
                else:
                    on_read(ref, trade)

            async with asyncio.TaskGroup() as group:
                for ref in distinct:
                    group.create_task(one(ref))
        if not by_list:
            return
        found: dict[str, Trade] = {}
        failure: Exception | None = None
        try:
            await self._search_list(by_list, games, kind, found)
        except Exception as exc:
            failure = exc
        for ref in by_list:
            if ref in found:
                on_read(ref, found[ref])
            else:
                on_read(ref, failure or _not_listed(ref, games, kind))

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
        spec = proto.list_trades_request(
            cursor=cursor,
            limit=limit,
            type=None if type is None else str(type),
            game=str(game),
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

        Without ``game``, every game's trades: AssetPay lists one game per request, so each game is read
        on its own and the two are merged newest first (the first page of each is read before the first
        trade is yielded). Each page is one request through the trades-read quota; stop iterating to stop
        reading. A ``nextCursor`` equal to the cursor sent ends a game's scan.
        """
        kind = None if type is None else str(type)
        games = [str(game)] if game is not None else list(proto.GAMES)
        for one in games:  # bad filters fail before the first request
            proto.list_trades_request(type=kind, game=one, limit=page_size)
        streams = [self._pages(type=kind, game=one, page_size=page_size) for one in games]
        try:
            heads: list[tuple[Trade, AsyncGenerator[Trade, None]]] = []
            for stream in streams:
                first = await anext(stream, None)
                if first is not None:
                    heads.append((first, stream))
            while heads:
                newest = max(range(len(heads)), key=lambda i: _age_key(heads[i][0]))
                trade, stream = heads[newest]
                yield trade
                following = await anext(stream, None)
                if following is None:
                    del heads[newest]
                else:
                    heads[newest] = (following, stream)
        finally:
            for stream in streams:
                await stream.aclose()

    async def _pages(
        self, *, type: str | None, game: str, page_size: int
    ) -> AsyncGenerator[Trade, None]:
        """One game's trades, newest first, page by page; stops on a repeated or missing cursor."""
        cursor: str | None = None
        while True:
            page = await self.list_trades(type=type, game=game, cursor=cursor, limit=page_size)
            for trade in page.items:
                yield trade
            if not page.next_cursor or not page.items or page.next_cursor == cursor:
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

    async def _call(
        self,
        spec: proto.RequestSpec,
        decode: Callable[[proto.Envelope, int], T],
        *,
        max_queue_wait: float | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> T:
        """Run one call with this client's token through the session's request path (``_transport``)."""
        return await self._requester.call(
            self._token,
            self._merchant_id,
            spec,
            decode,
            max_queue_wait=max_queue_wait,
            on_send=on_send,
        )
