"""Reading trades: one trade, one page, every trade, or a round of followed trades.

[`AssetPayClient`][assetpay_async.AssetPayClient]'s read methods delegate here. A `TradeReader` is a cheap
view over one client's request path (its ``_send``, which takes ``_protocol``'s call objects) and the session's
[`TradeRoutes`][assetpay_async._trade_routes.TradeRoutes], which decides between the single-trade route and the
list and probes the former once for every concurrent reader. Every scan of ``GET /client/trades`` is bounded by
a [`ListingScan`][assetpay_async._listing.ListingScan]: a listing that does not end raises
[`ListingDidNotTerminateError`][assetpay_async.ListingDidNotTerminateError] instead of reading forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Sequence
from typing import Final, Protocol, TypeVar

from . import _protocol as proto
from ._errors import TradeNotFoundError
from ._listing import ListingScan, walk
from ._models import Game, Trade, TradePage, TradeType
from ._refs import names
from ._trade_routes import TradeRoutes

__all__ = ["Sender", "TradeReader"]

T = TypeVar("T")
_OLDEST: Final = dt.datetime.min.replace(tzinfo=dt.UTC)
_PAGE: Final = 100
_GAMES: Final = list(proto.GAMES)
_WITHDRAW: Final = str(TradeType.WITHDRAW)
logger = logging.getLogger("assetpay_async._reader")


class Sender(Protocol):
    """Runs one call object with a client's token: ``AssetPayClient._send``."""

    async def __call__(self, call: proto.Call[T], /) -> T:
        """Send ``call`` through the session's request path and decode its answer."""
        ...


def _age_key(trade: Trade) -> dt.datetime:
    return trade.created_at or _OLDEST


def not_listed(ref: str, games: Sequence[str], kind: str | None) -> TradeNotFoundError:
    """The error for a ref that a complete scan of ``games`` did not find."""
    return TradeNotFoundError(
        f"no trade {ref!r} among this user's trades "
        f"(type {kind or 'any'}, game {' and '.join(games)})",
        http_status=200,
        code=None,
        key="TRADE_NOT_FOUND",
        request_id=None,
    )


def _filters(
    game: Game | str | None, type: TradeType | str | None, limit: int
) -> tuple[list[str], str | None]:
    """The games and type of a search, checked now so a bad filter fails before any request."""
    games = [str(game)] if game is not None else list(proto.GAMES)
    kind = None if type is None else str(type)
    for one in games:
        proto.list_trades_request(type=kind, game=one, limit=limit)
    return games, kind


class TradeReader:
    """Reads trades for one client.

    Args:
        send: the client's ``_send``.
        routes: the session's knowledge of the single-trade route.
        pace: awaited before each request (the shared poller's share of the read quota), or None.
    """

    __slots__ = ("_pace", "_routes", "_send")

    def __init__(
        self,
        send: Sender,
        routes: TradeRoutes,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._send = send
        self._routes = routes
        self._pace = pace

    async def _get(self, call: proto.Call[T]) -> T:
        if self._pace is not None:
            await self._pace()
        return await self._send(call)

    # -- one trade --------------------------------------------------------------------------------------

    async def get_trade(
        self, trade_id: uuid.UUID | str, *, game: Game | str | None, type: TradeType | str | None
    ) -> Trade:
        """``AssetPayClient.get_trade``: the single-trade route where it serves, else a list search."""
        ref = proto.parse_id(trade_id, "trade_id")
        games, kind = _filters(game, type, _PAGE)
        trade = await self.read_single(ref)
        if trade is not None:
            return trade
        found: dict[str, Trade] = {}
        await self.search([ref], games, kind, found)
        if ref not in found:
            raise not_listed(ref, games, kind)
        return found[ref]

    async def read_single(self, ref: str) -> Trade | None:
        """``GET /client/trades/{ref}``; None when the session reads through the list (or this read found the
        route missing). Probes the route when the session does not know it (one probe for all readers)."""
        use = await self._routes.use_single()
        if use is False:
            return None
        probe = use is None
        try:
            trade = await self._get(proto.get_trade_call(ref))
        except Exception as exc:
            if self._routes.learn(exc, probe=probe):
                return None
            raise
        except BaseException:
            self._routes.learn(asyncio.CancelledError(), probe=probe)  # no answer: learnt nothing
            raise
        self._routes.learn(None, probe=probe)
        return trade

    # -- the list ---------------------------------------------------------------------------------------

    async def list_trades(
        self,
        *,
        type: TradeType | str | None,
        game: Game | str,
        cursor: str | None,
        limit: int,
    ) -> TradePage:
        """``AssetPayClient.list_trades``: one page."""
        return await self._get(
            proto.list_trades_call(cursor=cursor, limit=limit, type=type, game=game)
        )

    async def pages(
        self,
        *,
        type: str | None,
        game: str,
        page_size: int,
        budget: list[int | None] | None = None,
    ) -> AsyncGenerator[Trade, None]:
        """One game's trades, newest first, page by page, until the listing ends (or ``budget[0]`` pages,
        when it is not None: each page read takes one from it).

        Raises:
            ListingDidNotTerminateError: the listing does not end (a cursor came back, the page bound).
        """

        async def page_at(cursor: str | None) -> TradePage | None:
            if budget is not None and budget[0] is not None:
                if budget[0] <= 0:
                    return None
                budget[0] -= 1
            return await self.list_trades(type=type, game=game, cursor=cursor, limit=page_size)

        async for trade in walk(ListingScan(game), page_at):
            yield trade

    async def iter_trades(
        self, *, type: TradeType | str | None, game: Game | str | None, page_size: int
    ) -> AsyncGenerator[Trade, None]:
        """``AssetPayClient.iter_trades``: every game's trades merged newest first."""
        games, kind = _filters(game, type, page_size)
        streams = [self.pages(type=kind, game=one, page_size=page_size) for one in games]
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

    async def search(
        self,
        refs: Sequence[str],
        games: Sequence[str],
        kind: str | None,
        found: dict[str, Trade],
        *,
        max_pages: int | None = None,
    ) -> None:
        """Put in ``found`` the trade each of ``refs`` names, in one scan of ``GET /client/trades``.

        Each game in turn, newest first, page by page; stops as soon as every ref was seen, so a round of
        recent trades costs the pages down to the oldest of them, however many refs there are. A ref still
        missing from ``found`` on return is not listed (every page of ``games`` was read), unless the scan
        stopped at ``max_pages`` pages in all. A page that fails raises, leaving in ``found`` what the pages
        before it showed.
        """
        unseen = [ref for ref in dict.fromkeys(refs) if ref not in found]
        budget = [max_pages]
        for game in games:
            if not unseen:
                return
            async with contextlib.aclosing(
                self.pages(type=kind, game=game, page_size=_PAGE, budget=budget)
            ) as trades:
                async for trade in trades:
                    hits = [ref for ref in unseen if names(ref, trade.id, trade.external_id)]
                    for ref in hits:
                        found[ref] = trade
                        unseen.remove(ref)
                    if not unseen:
                        return

    # -- a round of followed trades ---------------------------------------------------------------------

    async def read_trades(
        self,
        refs: Sequence[str],
        on_read: Callable[[str, Trade | Exception], None],
        *,
        singly: Collection[str] = (),
    ) -> set[str]:
        """Read the withdrawal trades ``refs`` name (parsed refs), telling ``on_read`` each one's trade or error;
        return the refs a scan of the list did not reach (read them singly next time: pass them as ``singly``).

        The poller's way to read a round of trades, at the fewest requests it can:

        * where the session reads through the list (the single-trade route is missing), ONE scan of
          ``GET /client/trades`` for all of them (both games, newest first, stopping as soon as every ref
          was seen); a ref not listed is a ``TradeNotFoundError`` after every page of both games, and when a
          page fails (or the listing does not terminate) every ref not seen yet gets that error;
        * otherwise, with two refs or more (``singly`` aside), the same scan first, but never more pages than
          the single reads it saves (one fewer than the refs it looks for); what it did not find is read with
          ``GET /client/trades/{ref}``, one each, all at once (while the session does not know that route,
          one of them probes it and the others wait for its answer).

        ``on_read`` is called exactly once per distinct ref (unless this coroutine is cancelled) and must not
        raise.
        """
        distinct = list(dict.fromkeys(refs))
        if self._routes.single_trade_missing and not self._routes.probe_due():
            await self._scan_round(distinct, on_read)
            return set()
        wanted = [ref for ref in distinct if ref not in set(singly)]
        found: dict[str, Trade] = {}
        unreached: set[str] = set()
        if len(wanted) >= 2:
            try:
                await self.search(wanted, _GAMES, _WITHDRAW, found, max_pages=len(wanted) - 1)
                unreached = set(wanted) - set(found)
            except Exception as exc:  # the single-trade route reads the rest
                logger.debug("a scan of the list failed, reading trades one by one: %s", exc)
            for ref, trade in found.items():
                on_read(ref, trade)
        await self._read_singly([ref for ref in distinct if ref not in found], on_read)
        return unreached

    async def _read_singly(
        self, refs: list[str], on_read: Callable[[str, Trade | Exception], None]
    ) -> None:
        """One ``GET /client/trades/{ref}`` each, all at once; those that find the route missing: one scan."""
        by_list: list[str] = []

        async def one(ref: str) -> None:
            try:
                trade = await self.read_single(ref)
            except Exception as exc:  # reported, never raised: the other reads go on
                on_read(ref, exc)
                return
            if trade is None:
                by_list.append(ref)
            else:
                on_read(ref, trade)

        async with asyncio.TaskGroup() as group:
            for ref in refs:
                group.create_task(one(ref))
        if by_list:
            await self._scan_round(by_list, on_read)

    async def _scan_round(
        self, refs: list[str], on_read: Callable[[str, Trade | Exception], None]
    ) -> None:
        found: dict[str, Trade] = {}
        failure: Exception | None = None
        try:
            await self.search(refs, _GAMES, _WITHDRAW, found)
        except Exception as exc:
            failure = exc
        for ref in refs:
            on_read(
                ref, found[ref] if ref in found else failure or not_listed(ref, _GAMES, _WITHDRAW)
            )
