"""AssetPayClient: a cheap handle bound to one end user's client token."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, TypeVar, Unpack

from . import _poller
from . import _protocol as proto
from ._batch import BatchOptions, CancelBatch, CancelOutcome
from ._errors import (
    InvalidRequestError,
    WaitTimeoutError,
)
from ._models import CancelResult, Game, Trade, TradeItem, TradePage, TradeType
from ._poller import FollowedItem
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
