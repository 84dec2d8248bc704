"""AssetPayClient: a cheap handle bound to one end user's client token."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, TypeVar, Unpack

from . import _protocol as proto
from ._batch import BatchOptions, CancelBatch, CancelOutcome
from ._errors import (
    InvalidRequestError,
    ItemNotFoundError,
    WaitTimeoutError,
)
from ._models import CancelResult, Game, Trade, TradeItem, TradePage, TradeType
from ._tokens import SecretToken

if TYPE_CHECKING:
    from ._interfaces import SessionView
    from ._transport import Requester

__all__ = ["AssetPayClient"]

T = TypeVar("T")


class AssetPayClient:
    """Calls on behalf of one end user. Get one from :meth:`AssetPaySession.client`; create as many as needed.

    The token is held in a :class:`SecretToken`: ``repr(client)`` shows the merchant and a fingerprint only.
    """

    __slots__ = ("_merchant_id", "_requester", "_session", "_token")

    def __init__(
        self, session: SessionView, requester: Requester, token: SecretToken, merchant_id: str
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
        """Poll the trade until the item reaches a final status (``reverted`` after a cancel) and return it.

        Polls start ``first_poll`` seconds apart and grow by half each time up to ``max_interval``; every poll
        also queues in the trades-read limiter shared by every poller of the merchant.

        Raises:
            WaitTimeoutError: not final within ``timeout`` seconds (``last_status`` says where it was).
            ItemNotFoundError: the trade has no such item.
        """
        trade_uuid = proto.parse_id(trade_id, "trade_id")
        item_uuid = proto.parse_id(item_id, "item_id")
        if not (isinstance(timeout, int | float) and timeout > 0):
            raise InvalidRequestError("timeout must be a positive number of seconds")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = first_poll
        last: str | None = None
        while True:
            trade = await self.get_trade(trade_uuid)
            item = trade.item(item_uuid)
            if item is None:
                raise ItemNotFoundError(
                    f"trade {trade_uuid} has no item {item_uuid}",
                    http_status=200,
                    code=None,
                    key="ITEM_NOT_FOUND",
                    request_id=None,
                )
            if item.status is not None and item.status.terminal:
                return item
            last = None if item.status is None else item.status.value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeoutError(
                    f"item {item_uuid} of trade {trade_uuid} not final after {timeout:g}s "
                    f"(last status {last})",
                    last_status=last,
                )
            await asyncio.sleep(min(interval, remaining))
            interval = min(max_interval, interval * 1.5)

    def batch(
        self, pairs: Iterable[tuple[object, object]], **options: Unpack[BatchOptions]
    ) -> CancelBatch:
        """A [`CancelBatch`][assetpay_async.CancelBatch] of ``(trade_id, item_id)`` pairs, not started yet
        (``await batch.run()``); ``options`` are those of ``CancelBatch``."""
        return CancelBatch(self, pairs, **options)

    async def cancel_withdrawal_items(
        self, pairs: Iterable[tuple[object, object]], **options: Unpack[BatchOptions]
    ) -> list[CancelOutcome]:
        """Cancel many items; one :class:`CancelOutcome` per pair, in input order. Never raises for one pair.

        Duplicate pairs are cancelled once; bad ids fail before any quota is spent; with
        ``reschedule_too_soon`` an item younger than 30 minutes is cancelled again once it is old enough.
        Use :meth:`batch` instead to keep a handle on the outcomes if the task may be cancelled.
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
