"""The grant worker of one Redis limiter key: a FIFO queue of waiting calls, granted one at a time, in order.

While Redis answers, the worker *reserves* the next slot with one Lua call (the key's theoretical arrival time
moves on by one grant interval, on Redis ``TIME``), sleeps until the slot is due, and hands it to the head of
the queue. A slot that had to be waited for is confirmed before use, in the same call that reserves the next
one, so a 429 seen by any process voids slots reserved before it. When Redis fails, the same worker grants
from this process's share, as the outage state (`_redis_outage.OutageState`) says.

Before its first Redis grant the worker checks the connection (a ping, both scripts run once): a wrong
password, a missing ACL permission, a TLS or URL error end every waiting call with a
[`ConfigurationError`][assetpay_async.ConfigurationError] and are never taken for an outage. Any other
exception ends every waiting call with a [`LimiterBackendError`][assetpay_async.LimiterBackendError]: a queued
call never waits for a worker that died.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable

import attrs
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._errors import LimiterBackendError, QueueTimeoutError
from ._redis_faults import configuration_error, is_outage
from ._redis_outage import OutageState, horizon_retry, reservation_bound
from ._redis_scripts import ANY_WAIT, GcraScript, us

__all__ = ["GrantWorker", "Waiter"]

logger = logging.getLogger("assetpay_async.redis_limiter")


@attrs.define
class Waiter:
    """One call waiting for a grant."""

    future: asyncio.Future[None]
    deadline: float | None

    def budget_us(self, now: float) -> int:
        return ANY_WAIT if self.deadline is None else max(0, int((self.deadline - now) * 1e6))


@attrs.frozen
class _Slot:
    """A slot this process reserved and has not used yet."""

    slot_us: int
    tat_us: int
    due: float
    """Event-loop time when it is due."""
    confirmed: bool
    """True when it was due at once when reserved: nothing can have paused the key since."""


def _resolve(future: asyncio.Future[bool] | None, value: bool) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def granted(future: asyncio.Future[None]) -> bool:
    """Whether ``future`` carries a grant; retrieves an exception so that asyncio does not log it."""
    if not future.done() or future.cancelled():
        return False
    return future.exception() is None


class GrantWorker:
    """The queue and the one grant stream of this process for one key (see the module docstring).

    Args:
        script: the GCRA script of the key.
        redis_key: the key of the schedule.
        outage: the outage state machine of the key.
        fallback: grant from the share when Redis fails (False: fail the waiting calls).
        check: the connection check run before the first Redis grant (raises what Redis raised).
        horizon: how far ahead of now a slot may be reserved, in seconds (see
            `_redis_outage.reservation_bound`).
    """

    def __init__(
        self,
        script: GcraScript,
        redis_key: str,
        outage: OutageState,
        *,
        fallback: bool,
        check: Callable[[], Awaitable[None]],
        horizon: float,
    ) -> None:
        self.horizon_us = us(horizon)
        self._script = script
        self._key = redis_key
        self._outage = outage
        self._fallback = fallback
        self._check = check
        self.checked = False
        self.queue: collections.deque[Waiter] = collections.deque()
        self.held: _Slot | None = None
        self.pause_until = 0.0
        self.local_granted = 0
        self.task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[bool] | None = None

    # -- the queue --------------------------------------------------------------------------------------------

    def enqueue(self, waiter: Waiter, loop: asyncio.AbstractEventLoop) -> None:
        """Queue ``waiter`` and make sure a worker serves the queue on ``loop``."""
        task = self.task
        if task is not None and task.get_loop() is not loop:
            # Left behind by an event loop that has since been closed: its waiters died with it.
            self.queue = collections.deque(w for w in self.queue if w.future.get_loop() is loop)
            self.held = None
            task = self.task = None
        self.queue.append(waiter)
        if task is None:
            self.task = loop.create_task(self._run(), name=f"assetpay limiter {self._key}")

    def queued(self) -> int:
        return sum(1 for waiter in self.queue if not waiter.future.done())

    def nudge(self) -> None:
        """Wake the worker: a waiter left the queue (a held slot may go back), or Redis answers again."""
        _resolve(self._wake, True)

    def pass_on(self) -> None:
        """A waiter was cancelled just after its grant: the next one in line takes it (no new grant)."""
        head = self._head()
        if head is not None:
            self.queue.popleft()
            head.future.set_result(None)

    def fail_all(self, error: Exception) -> None:
        """End every waiting call with ``error``."""
        self.held = None
        for waiter in self.queue:
            if not waiter.future.done() and not waiter.future.get_loop().is_closed():
                waiter.future.set_exception(error)
        self.queue.clear()

    def _head(self) -> Waiter | None:
        """The first waiter still waiting (cancelled and timed-out ones are dropped: they spent nothing)."""
        while self.queue and self.queue[0].future.done():
            self.queue.popleft()
        return self.queue[0] if self.queue else None

    def _more_than_one_waiting(self) -> bool:
        # Stops at the second live waiter: on every grant, so it must not walk a queue of 100,000.
        live = (waiter for waiter in self.queue if not waiter.future.done())
        return next(live, None) is not None and next(live, None) is not None

    def _grant_head(self, loop: asyncio.AbstractEventLoop) -> bool:
        head = self._head()
        if head is None:
            logger.debug("slot of %s unused: its waiter left during the round trip", self._key)
            return False
        self.queue.popleft()
        head.future.set_result(None)
        self._outage.granted(loop.time())
        return True

    # -- the stream ---------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Serve the queue; whatever ends the worker, no waiting call is left behind."""
        try:
            await self._serve()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("the Redis limiter's grant worker for %s failed", self._key)
            self.fail_all(
                LimiterBackendError(
                    f"the Redis limiter failed for {self._key!r} ({type(exc).__name__}); "
                    "nothing was sent"
                )
            )
        finally:
            if self.task is asyncio.current_task():
                self.task = None

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        outage = self._outage
        while True:
            now = loop.time()
            if self.pause_until > now:
                # Our own 429: whatever Redis says, nothing goes out before the pause ends here.
                await asyncio.sleep(self.pause_until - now)
                continue
            head = self._head()
            if head is None:
                if self.held is None:
                    return
                await self._refund()
                continue
            share_due = outage.share_wait(now) if self.held is None else None
            if share_due is not None:
                # Keeping to this process's share: the next grant, from Redis or not, waits its turn.
                self._expire_before(share_due, loop)
                if self._head() is not None:
                    await self._sleep_until(loop, share_due)
                continue
            if outage.degraded and now < outage.recheck_at:
                if not outage.may_share():
                    # Started during an outage: the share is unknown, so nothing is granted without
                    # Redis. Waiters time out within their max_wait.
                    await self._sleep_until(loop, outage.recheck_at)
                elif self._grant_head(loop):
                    self.local_granted += 1
                continue
            try:
                if not self.checked:
                    await self._check()
                    self.checked = True
                await self._step(loop, head)
            except Exception as exc:  # classified in _failed; anything unknown ends the worker
                self.held = None
                self._failed(loop, exc)
            else:
                if outage.answered(loop.time()):
                    logger.info(
                        "Redis limiter store is back for %s: shared limiting resumed", self._key
                    )

    def _failed(self, loop: asyncio.AbstractEventLoop, exc: Exception) -> None:
        config = configuration_error(exc)
        if config is not None:
            # Not an outage: waiting would not heal it. The next call checks the connection again.
            self.checked = False
            # Raised to every waiting call: logging it at a higher level too would say it twice.
            logger.debug("Redis limiter for %s: %s", self._key, config)
            self.fail_all(config)
            return
        if not is_outage(exc):
            raise exc
        if not self._fallback:
            self.fail_all(
                LimiterBackendError(
                    f"the Redis limiter store failed for {self._key!r} ({type(exc).__name__}: "
                    f"{exc}); nothing was sent (RedisLimiterRegistry(fallback=False))"
                )
            )
            return
        hung = isinstance(exc, RedisTimeoutError | TimeoutError)
        if self._outage.failed(loop.time(), hung=hung):
            logger.warning(
                "Redis limiter store failed for %s (%s: %s): granting from this process's share of "
                "the quota (1/%d) until it is back",
                self._key,
                type(exc).__name__,
                exc,
                self._outage.peers,
            )

    async def _step(self, loop: asyncio.AbstractEventLoop, head: Waiter) -> None:
        """Reserve a slot if none is held, wait for it, confirm it, grant it to the head of the queue."""
        held = self.held
        if held is None:
            budget = head.budget_us(loop.time())
            reply = await self._script.acquire(
                self._key, reserve_within_us=reservation_bound(budget, self.horizon_us)
            )
            if self._new_generation(loop, reply.generation):
                return  # the slot stays with the server; the share decides when to ask again
            if not reply.reserved:
                retry = horizon_retry(reply.wait_us, budget, self.horizon_us)
                if retry is not None:
                    await self._sleep_until(loop, loop.time() + retry)  # beyond the horizon
                elif not head.future.done():
                    head.future.set_exception(self._queue_timeout(head, reply.wait_us, loop))
                return
            held = self.held = _Slot(
                reply.slot_us,
                reply.tat_us,
                due=loop.time() + reply.wait_us / 1e6,
                confirmed=reply.wait_us == 0,
            )
        self._expire_before(held.due, loop)
        if self._head() is None:
            return  # the caller refunds the slot
        if held.confirmed:
            self.held = None
            if self.pause_until <= loop.time():
                self._grant_head(loop)
            return
        if await self._sleep_until(loop, held.due) or self._head() is None:
            return  # a waiter left: look again (and give the slot back if nobody is left)
        await self._confirm(loop, held)

    async def _confirm(self, loop: asyncio.AbstractEventLoop, held: _Slot) -> None:
        """Confirm a slot that was waited for, reserving the next one in the same call if worth it."""
        # While keeping to a share, the next slot is reserved only when the share allows it.
        pipeline = self._more_than_one_waiting() and not self._outage.sharing_at(loop.time())
        reply = await self._script.acquire(
            self._key,
            confirm_slot_us=held.slot_us,
            reserve_within_us=self.horizon_us if pipeline else None,
        )
        self.held = (
            _Slot(
                reply.slot_us, reply.tat_us, due=loop.time() + reply.wait_us / 1e6, confirmed=False
            )
            if reply.reserved
            else None
        )
        if self._new_generation(loop, reply.generation):
            self.held = None  # reserved on the new server before the settle: not used
            return
        if reply.confirmed and self.pause_until <= loop.time():
            self._grant_head(loop)
        else:
            logger.debug(
                "slot of %s void: the key was paused or lost after it was reserved", self._key
            )

    def _new_generation(self, loop: asyncio.AbstractEventLoop, generation: str) -> bool:
        """Whether Redis is now another server (a restart, a failover) than the one of the last call."""
        after_outage = self._outage.degraded or self._outage.outage_seen
        if not self._outage.generation_seen(loop.time(), generation):
            return False
        # After an outage a new server is expected (its warning was logged); otherwise it is news.
        logger.log(
            logging.DEBUG if after_outage else logging.WARNING,
            "Redis limiter store for %s changed (restart or failover): keeping to this process's "
            "share until every peer has settled",
            self._key,
        )
        return True

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, when: float) -> bool:
        """Sleep until ``when``; return True if woken earlier by `nudge`."""
        wake: asyncio.Future[bool] = loop.create_future()
        self._wake = wake
        timer = loop.call_at(when, _resolve, wake, False)
        try:
            return await wake
        finally:
            timer.cancel()
            self._wake = None

    def _expire_before(self, due: float, loop: asyncio.AbstractEventLoop) -> None:
        """Fail, now, the waiters at the head whose ``max_wait`` ends before the next slot is due."""
        while (
            (head := self._head()) is not None and head.deadline is not None and head.deadline < due
        ):
            self.queue.popleft()
            head.future.set_exception(self._queue_timeout(head, us(due - loop.time()), loop))

    @staticmethod
    def _queue_timeout(
        waiter: Waiter, wait_us: int, loop: asyncio.AbstractEventLoop
    ) -> QueueTimeoutError:
        budget = 0.0 if waiter.deadline is None else max(0.0, waiter.deadline - loop.time())
        return QueueTimeoutError(
            f"no quota within the {budget:.3f}s left (next grant in {wait_us / 1e6:.3f}s)",
            waited=0.0,
        )

    async def _refund(self) -> None:
        held, self.held = self.held, None
        if held is None:
            return
        try:
            await self._script.refund(self._key, held.tat_us)
        except Exception as exc:  # best effort: the slot expires anyway
            logger.debug("could not give back a slot of %s: %r", self._key, exc)
