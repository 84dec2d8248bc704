"""Follow many items to their final state with one poller per merchant, owned by the session.

Every waiter of a session (``wait_for_items``, ``wait_for_item``) registers its items with the merchant's
``TradePoller``, which the session keeps in its ``SessionPollers`` and closes with it (``aclose()`` ends every
waiter at once with ``SessionClosedError``). The poller keeps one *watch* per trade: however many of its items are
followed, a poll reads the trade once and settles every waiter whose item it shows final. Each trade is read again
``first_poll`` seconds later, the gap growing by half each time up to ``max_interval``; once the merchant's
revert delay is learnt, a newly followed trade is read first at a low percentile of it (``_follow_plan``).

The trades due at one moment are read together, one group per client token, with ``client._read_trades``: one
scan of ``GET /client/trades`` for the group where that costs fewer requests than reading each trade (and where
the single-trade route is missing), ``GET /client/trades/{id}`` for the rest; a trade the scan did not reach is
read singly from then on. Every request of the poller first waits for its ``ReadPace``: the poller spends at
most ``poll_read_share`` of the merchant's trades-read quota, which every other reader of the merchant shares.
When the session has an API key, the due trades are first read 100 a request through the merchant scope
(``_merchant_follow.BatchRoute``, within the same share of the merchant read quota); what that route does not
return is read in the client scope as above.

Callbacks meet polling here too: a verified callback fed to ``observe`` (``callback_handler(session=...)``
does it) settles the waiters of the items it shows final at once, without a read. Polling remains the fallback
for callbacks that never come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from ._errors import (
    InvalidResponseError,
    QueueTimeoutError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from ._follow_plan import YOUNG, DelayLearner, postpone
from ._followed import FollowedItem, Waiter, Watch, fail, outcome_of, settle, settles, terminal
from ._merchant_follow import BatchReader, BatchRoute
from ._models import Trade
from ._quota import Quota, RouteGroup
from ._read_pace import DEFAULT_READ_SHARE, ReadPace
from ._refs import names

if TYPE_CHECKING:
    from ._interfaces import ItemReader, SessionView

__all__ = ["FollowedItem", "SessionPollers", "TradePoller", "observe", "poller_for"]

logger = logging.getLogger("assetpay_async._poller")

# Read failures that say nothing about the trade: keep polling until the waiters' timeout.
_TRANSIENT: Final = (
    TransportError,
    ServerError,
    RateLimitedError,
    QueueTimeoutError,
    InvalidResponseError,
)
_BATCH: Final = (
    "\x00merchant-scope"  # the group key of the batch route (no token fingerprint is this)
)


class TradePoller:
    """The poller of one merchant in one session (get it with ``poller_for``).

    Args:
        merchant_id: the merchant.
        pace: the poller's share of the merchant's trades-read quota (every request it sends waits for it).
        batch: the session's merchant-scope route for following, if it has an API key.
        batch_pace: the poller's share of the merchant read quota (required with ``batch``).
    """

    def __init__(
        self,
        merchant_id: str,
        pace: ReadPace,
        batch: BatchRoute | None = None,
        batch_pace: ReadPace | None = None,
    ) -> None:
        self.merchant_id = merchant_id
        self.pace = pace
        self.batch = batch if batch_pace is not None else None
        self.batch_pace = batch_pace
        self.loop = asyncio.get_running_loop()
        # Keyed by token and trade: a trade is read with a token of its owner (another user's reads 403).
        self._watches: dict[tuple[str, str], Watch] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reads: set[asyncio.Task[None]] = set()
        self._closed: BaseException | None = None
        self.learner = DelayLearner()
        """The revert delays this merchant's trades showed (``_follow_plan``): the first read waits for it."""
        self.reads = 0
        """Trades read (for tests and benchmarks): one per trade a round, by its own route or a scan."""

    # -- waiters --------------------------------------------------------------------------------------

    async def wait(
        self,
        client: ItemReader,
        pairs: Sequence[tuple[str, str]],
        *,
        timeout: float,
        first_poll: float,
        max_interval: float,
    ) -> list[FollowedItem]:
        """Follow ``pairs`` until each is final or ``timeout`` seconds have passed; outcomes in input order."""
        call = object()  # its items share their watches' plan; another call's item does not
        waiters = [
            self._follow(client, str(t), str(i), first_poll, max_interval, call=call)
            for t, i in pairs
        ]
        try:
            futures = [w[1].future for w in waiters]
            if futures:
                await asyncio.wait(futures, timeout=timeout)
        finally:
            for watch, waiter in waiters:
                if not waiter.future.done():
                    waiter.future.cancel()
                self._forget(watch, waiter)
            await self._idle()
        return [
            outcome_of(
                n,
                str(t),
                str(i),
                future=w.future,
                via_callback=w.via_callback,
                last=v.last,
                timeout=timeout,
            )
            for n, ((t, i), (v, w)) in enumerate(zip(pairs, waiters, strict=True))
        ]

    def _follow(
        self,
        client: ItemReader,
        trade_id: str,
        item_id: str,
        first_poll: float,
        max_interval: float,
        *,
        call: object,
    ) -> tuple[Watch, Waiter]:
        key = (client.token_fingerprint, trade_id)
        watch = self._watches.get(key)
        if watch is None:
            start = self.loop.time()
            watch = self._watches[key] = Watch(client, trade_id, first_poll, max_interval, start)
            watch.call = call
        else:
            watch.join(call, first_poll, max_interval, self.loop.time())
        waiter = Waiter(self.loop.create_future(), item_id)
        known = None if watch.last is None else watch.last.item(item_id)
        if self._closed is not None:
            waiter.future.set_exception(self._closed)
        elif terminal(known):
            waiter.future.set_result(known)  # final is final: the last read already shows it
        else:
            watch.waiters.append(waiter)
            self._ensure_running()
        return watch, waiter

    def _forget(self, watch: Watch, waiter: Waiter) -> None:
        if waiter in watch.waiters:
            watch.waiters.remove(waiter)
        if not watch.waiters:
            key = (watch.client.token_fingerprint, watch.trade_id)
            if self._watches.get(key) is watch:
                del self._watches[key]
        self._wakeup.set()

    async def _idle(self) -> None:
        """With nothing left to follow, let the polling task end (it never outlives its last waiter)."""
        task = self._task
        if not self._watches and task is not None and not task.done():
            self._wakeup.set()
            await asyncio.gather(task, return_exceptions=True)

    def observe(self, trade: Trade) -> int:
        """Settle the waiters of every item ``trade`` shows final (a verified callback); how many were settled."""
        settled = 0
        for watch in list(self._watches.values()):
            # A waiter may name the trade by AssetPay's id or by its externalId.
            if not names(watch.trade_id, trade.id, trade.external_id):
                continue
            for waiter in list(watch.waiters):
                item = trade.item(waiter.item_id)
                if terminal(item) and not waiter.future.done():
                    waiter.via_callback = True
                    waiter.future.set_result(item)
                    watch.waiters.remove(waiter)
                    settled += 1
        return settled

    def close_now(self, error: BaseException) -> None:
        """End every waiter with ``error`` and refuse new ones; the polling task ends on its own."""
        self._closed = error
        for watch in list(self._watches.values()):
            fail(watch, error)
        self._watches.clear()
        self._wakeup.set()

    async def aclose(self, error: BaseException) -> None:
        """``close_now``, then wait for the polling task and its reads to end (they are cancelled)."""
        self.close_now(error)
        task = self._task
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- the polling loop -----------------------------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._run(), name="assetpay-trade-poller")
        self._wakeup.set()

    async def _run(self) -> None:
        try:
            while self._watches:
                due, waits = self._due(self.loop.time())
                for key, group in due.items():
                    read = self._read_batch(group) if key == _BATCH else self._read(group)
                    task = self.loop.create_task(read)
                    self._reads.add(task)
                    task.add_done_callback(self._reads.discard)
                self._wakeup.clear()
                try:
                    async with asyncio.timeout(min(waits) if waits else None):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
        finally:
            for task in list(self._reads):
                task.cancel()
            if self._reads:
                await asyncio.gather(*self._reads, return_exceptions=True)

    def _due(self, now: float) -> tuple[dict[str, list[Watch]], list[float]]:
        """The watches to read now, by client token, and the seconds until each other one is due. A watch a
        scan reaches rides along with its token's group when its read is under a third of its gap away: free
        in the same scan, it keeps trades followed by separate calls in one round instead of a scan each."""
        due: dict[str, list[Watch]] = {}
        later: list[Watch] = []
        learnt = self._learnt(now)
        for watch in list(self._watches.values()):
            if watch.reading or not watch.waiters:  # settled: its waiters are leaving
                continue
            if watch.next_at <= now and not self._postponed(watch, now, learnt):
                due.setdefault(self._key(watch), []).append(watch)
            else:
                later.append(watch)
        waits = []
        for watch in later:
            key = self._key(watch)
            group = due.get(key)
            rides = key == _BATCH or not watch.singly
            if group is not None and rides and watch.next_at - now <= watch.interval / 3:
                group.append(watch)
            else:
                waits.append(watch.next_at - now)
        for group in due.values():
            for watch in group:
                watch.reading = True
                watch.launched = now
        return due, waits

    def _learnt(self, now: float) -> float | None:
        """The revert delay learnt: from the trades seen final, and the young ones still open."""
        open_ages = [
            w.launched - w.start
            for w in self._watches.values()
            if w.plannable
            and not (w.reading or w.observed or w.last is None)
            and now - w.start <= YOUNG
        ]
        return self.learner.delay(open_ages)

    def _postponed(self, watch: Watch, now: float, learnt: float | None) -> bool:
        """Move a due read to the learnt revert delay after the watch's start (``_follow_plan``)."""
        if not watch.plannable:
            return False
        plan = postpone(watch.start, now, learnt, watch.first_poll, watch.max_interval)
        if plan is None:
            return False
        watch.postponed = True
        watch.next_at, watch.interval, watch.after = plan.read_at, plan.then, plan.after
        return True

    def _key(self, watch: Watch) -> str:
        """Its group of a round: the merchant scope's batch route, or its client token."""
        if self.batch is not None and self.batch.serves(self.merchant_id, watch.trade_id):
            return _BATCH
        return watch.client.token_fingerprint

    async def _read_batch(self, group: list[Watch]) -> None:
        """Read the due trades 100 a request in the merchant scope; the rest in the client scope."""
        assert self.batch is not None  # noqa: S101 - only then is a group keyed _BATCH
        assert self.batch_pace is not None  # noqa: S101
        pending: dict[str, list[Watch]] = {}
        for watch in group:
            pending.setdefault(watch.trade_id, []).append(watch)

        def on_read(trade_id: str, trade: Trade) -> None:
            for watch in pending.pop(trade_id, ()):
                self._done(watch, trade)

        try:
            await self.batch.read(list(pending), on_read, pace=self.batch_pace.wait)
        except BaseException:  # cancelled: poll them again later
            for watch in (w for ws in pending.values() for w in ws):
                self._schedule(watch)
            raise
        by_token: dict[str, list[Watch]] = {}
        for watch in (w for ws in pending.values() for w in ws):
            by_token.setdefault(watch.client.token_fingerprint, []).append(watch)
        await asyncio.gather(*(self._read(rest) for rest in by_token.values()))

    async def _read(self, group: list[Watch]) -> None:
        """Read the due trades of one client token together; each watch is settled as its result comes."""
        pending = {watch.trade_id: watch for watch in group}

        def on_read(trade_id: str, result: Trade | Exception) -> None:
            watch = pending.pop(trade_id, None)
            if watch is not None:
                self._done(watch, result)

        singly = [watch.trade_id for watch in group if watch.singly]

        async def pace() -> None:  # no read of the group is sent before its first request
            await self.pace.wait()
            if not sent:
                sent.append(self.loop.time())
                for watch in group:
                    watch.launched = sent[0]

        sent: list[float] = []
        try:
            unlisted = await group[0].client._read_trades(
                list(pending), on_read, pace=pace, singly=singly
            )
            for watch in group:
                watch.singly = watch.singly or watch.trade_id in unlisted
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every waiter must end, even on a bug
            for watch in list(pending.values()):
                on_read(watch.trade_id, exc)
        finally:
            for watch in pending.values():  # cancelled before its answer: poll it again later
                self._schedule(watch)

    def _done(self, watch: Watch, result: Trade | Exception) -> None:
        try:
            if isinstance(result, Trade):
                self.reads += 1
                self._settle(watch, result)
            elif isinstance(result, _TRANSIENT):  # InvalidResponseError: no envelope
                logger.debug("reading trade %s failed, polling again: %s", watch.trade_id, result)
            else:  # a definite answer about this trade (or a closed session), or a bug
                fail(watch, result)
        finally:
            self._schedule(watch)

    def _schedule(self, watch: Watch) -> None:
        watch.reading = False
        watch.next_at = self.loop.time() + watch.next_gap()
        self._wakeup.set()

    def _settle(self, watch: Watch, trade: Trade) -> None:
        # A revert delay: seen not final before (or read at the learnt delay), now final; from the send.
        seen = watch.last is not None or watch.postponed
        if seen and watch.plannable and not watch.observed and settles(watch, trade):
            watch.observed = True
            self.learner.observe(watch.launched - watch.start)
        settle(watch, trade)


class SessionPollers:
    """The pollers of one session, one per merchant and event loop; the session owns it and closes it.

    Args:
        read_share: the share of each read quota the pollers may spend (0 < share <= 1).
        merchant: the session's merchant scope when it has an API key: following then reads through
            ``GET /secure/trades/{refs}`` first (what the route has shown is remembered for the session).
    """

    def __init__(
        self, read_share: float = DEFAULT_READ_SHARE, merchant: BatchReader | None = None
    ) -> None:
        self.read_share = read_share
        self.batch = None if merchant is None else BatchRoute(merchant)
        self._by_merchant: dict[str, TradePoller] = {}
        self._closed: BaseException | None = None

    def get(self, merchant_id: str, quota: Quota, batch_quota: Quota | None = None) -> TradePoller:
        """The poller of ``merchant_id`` on the running loop (created on first use), within ``read_share``
        of ``quota`` (the trades-read quota) and of ``batch_quota`` (the merchant read quota)."""
        poller = self._by_merchant.get(merchant_id)
        if poller is None or poller.loop is not asyncio.get_running_loop():
            pace = ReadPace(quota, self.read_share)
            batch_pace = None if batch_quota is None else ReadPace(batch_quota, self.read_share)
            poller = TradePoller(merchant_id, pace, self.batch, batch_pace)
            self._by_merchant[merchant_id] = poller
            if self._closed is not None:
                poller.close_now(self._closed)
        return poller

    def observe(self, trade: Trade) -> int:
        """Settle the waiters whose item ``trade`` shows final (a verified callback); how many."""
        settled = 0
        for merchant_id, poller in list(self._by_merchant.items()):
            if trade.merchant_id is None or trade.merchant_id == merchant_id:
                settled += poller.observe(trade)
        return settled

    async def aclose(self, error: BaseException) -> None:
        """End every waiter at once with ``error`` and stop the polling (the session is closing)."""
        self._closed = error
        for poller in list(self._by_merchant.values()):
            await poller.aclose(error)


def _pollers_of(session: SessionView) -> SessionPollers:
    pollers = getattr(session, "_trade_pollers", None)  # an AssetPaySession's
    if not isinstance(pollers, SessionPollers):
        raise TypeError(f"{type(session).__name__} holds no trade pollers")
    return pollers


def poller_for(session: SessionView, merchant_id: str) -> TradePoller:
    """The poller of ``merchant_id`` in ``session`` on the running loop (created on first use)."""
    return _pollers_of(session).get(
        merchant_id,
        session.quota(RouteGroup.TRADES_READ),
        session.quota(RouteGroup.MERCHANT_READ),
    )


def observe(session: SessionView, trade: Trade) -> int:
    """Feed a verified callback's trade to the session's pollers; how many waiters it settled."""
    return _pollers_of(session).observe(trade)
