"""The poller's bookkeeping of followed items: one watch per trade, one waiter per item, and how each ended
([`FollowedItem`][assetpay_async.FollowedItem], what ``wait_for_items`` returns)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeGuard

import attrs

from ._errors import ItemNotFoundError, WaitTimeoutError
from ._models import Trade, TradeItem, TradeStatus

if TYPE_CHECKING:
    from ._interfaces import ItemReader

__all__ = ["FollowedItem", "Waiter", "Watch", "fail", "outcome_of", "settle", "settles", "terminal"]


@attrs.frozen
class FollowedItem:
    """How one followed item ended.

    Attributes:
        index: its position in the input.
        trade_id: the trade ref as sent (AssetPay's id or its externalId; a ``uuid.UUID`` in lowercase).
        item_id: the item ref as sent.
        item: the item in its final status; None when it was not reached.
        error: why it was not reached: ``WaitTimeoutError`` (``last_status`` says where it was),
            ``ItemNotFoundError``, or the typed error of the read that failed for good.
        via_callback: True when a callback, not a poll, brought the final status.
    """

    index: int
    trade_id: str
    item_id: str
    item: TradeItem | None = None
    error: BaseException | None = None
    via_callback: bool = False

    @property
    def final(self) -> bool:
        """True when the item reached a final status (``item`` holds it)."""
        return self.item is not None

    @property
    def status(self) -> TradeStatus | None:
        """The final status, or None."""
        return None if self.item is None else self.item.status


class Waiter:
    """One item a call of ``wait_for_items`` waits for: its future and how it was settled."""

    __slots__ = ("future", "item_id", "via_callback")

    def __init__(self, future: asyncio.Future[TradeItem], item_id: str) -> None:
        self.future = future
        self.item_id = item_id
        self.via_callback = False


class Watch:
    """One followed trade: the client that reads it, its waiters, the last read and when to read again.

    ``start`` is when it was first followed (the loop's time); ``plannable`` stays True while one call's
    items are all it follows, so the learnt revert delay may move its reads (``_follow_plan.postpone``);
    ``postponed`` once it did; ``after`` is the gap to use after the next one instead of growing it;
    ``launched`` is when its latest read was started; ``call`` the ``wait_for_items`` call that started it.
    """

    __slots__ = (
        "after",
        "call",
        "client",
        "first_poll",
        "interval",
        "last",
        "launched",
        "max_interval",
        "next_at",
        "observed",
        "plannable",
        "postponed",
        "reading",
        "singly",
        "start",
        "trade_id",
        "waiters",
    )

    def __init__(
        self,
        client: ItemReader,
        trade_id: str,
        first_poll: float,
        max_interval: float,
        start: float = 0.0,
    ) -> None:
        self.client = client
        self.trade_id = trade_id
        self.waiters: list[Waiter] = []
        self.last: Trade | None = None
        self.next_at = 0.0  # read at once: the item may be final already
        self.interval = first_poll
        self.first_poll = first_poll
        self.max_interval = max_interval
        self.reading = False
        self.singly = False  # a scan of the list did not reach it: read it by its own route
        self.start = start
        self.launched = start
        self.plannable = True
        self.postponed = False
        self.observed = False
        self.after: float | None = None
        self.call: object = None  # the ``wait_for_items`` call that started it

    def join(self, call: object, first_poll: float, max_interval: float, now: float) -> None:
        """Another item of the trade is followed: the gaps shrink to its call's; an item of another call
        (cancelled later, perhaps) is read as today's schedule would, so no learnt delay moves it."""
        self.interval = min(self.interval, first_poll)
        self.max_interval = min(self.max_interval, max_interval)
        if call is not self.call:
            self.plannable = False
            if self.postponed:  # its gaps were the learnt plan's: back to today's
                self.interval, self.after = min(first_poll, self.first_poll), None
            self.next_at = min(self.next_at, now + self.interval)

    def next_gap(self) -> float:
        """The gap to the next read after the one just done; the one after it is set too."""
        gap = self.interval
        if self.after is not None:
            self.interval, self.after = self.after, None
        else:
            self.interval = min(self.max_interval, self.interval * 1.5)
        return gap


def terminal(item: TradeItem | None) -> TypeGuard[TradeItem]:
    return item is not None and item.status is not None and item.status.terminal


def settles(watch: Watch, trade: Trade) -> bool:
    """True when ``trade`` (a read of the watch's trade) shows an item of its waiters final."""
    return any(terminal(trade.item(waiter.item_id)) for waiter in watch.waiters)


def settle(watch: Watch, trade: Trade) -> None:
    """Keep ``trade`` as the watch's last read; end the waiters whose item it shows final (or lacks)."""
    watch.last = trade
    for waiter in list(watch.waiters):
        item = trade.item(waiter.item_id)
        if item is None:
            waiter.future.set_exception(
                ItemNotFoundError(
                    f"trade {watch.trade_id} has no item {waiter.item_id}",
                    http_status=200,
                    code=None,
                    key="ITEM_NOT_FOUND",
                    request_id=None,
                )
            )
        elif terminal(item):
            waiter.future.set_result(item)
        else:
            continue
        watch.waiters.remove(waiter)


def fail(watch: Watch, exc: BaseException) -> None:
    """End every waiter of the watch with ``exc``."""
    for waiter in watch.waiters:
        if not waiter.future.done():
            waiter.future.set_exception(exc)
    watch.waiters.clear()


def outcome_of(
    index: int,
    trade_id: str,
    item_id: str,
    *,
    future: asyncio.Future[TradeItem],
    via_callback: bool,
    last: Trade | None,
    timeout: float,
) -> FollowedItem:
    """How the waiter of one item ended: its future's result or error, or a ``WaitTimeoutError`` naming the
    item's status in ``last`` (the trade's last read) when the wait was given up (the future cancelled)."""
    if future.cancelled():
        item = None if last is None else last.item(item_id)
        status = None if item is None or item.status is None else item.status.value
        error = WaitTimeoutError(
            f"item {item_id} of trade {trade_id} not final after {timeout:g}s "
            f"(last status {status})",
            last_status=status,
        )
        return FollowedItem(index, trade_id, item_id, error=error)
    if future.exception() is not None:
        return FollowedItem(index, trade_id, item_id, error=future.exception())
    return FollowedItem(index, trade_id, item_id, item=future.result(), via_callback=via_callback)
