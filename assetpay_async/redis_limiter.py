"""Share one merchant's quota across processes and hosts: a GCRA in Redis behind a local FIFO queue.

Every process keeps, per (merchant, route group), a first-in-first-out queue of waiting calls and one worker
coroutine that talks to Redis on their behalf. The worker *reserves* the next slot with one Lua call (the key's
theoretical arrival time moves on by one grant interval, measured on Redis ``TIME``), sleeps until the slot
is due, and hands it to the head of the queue. A slot that had to be waited for is confirmed before use, in
the same call that reserves the next one, so a 429 seen by any process voids slots reserved before it: one
round trip per grant under load, one for an idle key, two for a lone call that had to wait.

Select it with ``AssetPaySession(redis="redis://...")`` (the ``[redis]`` extra). See ``docs/redis.md``.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import importlib.resources
import logging
import math
from collections.abc import Callable
from typing import Any, Final

import attrs
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from ._errors import LimiterBackendError, QueueTimeoutError, SessionClosedError
from ._limiting import (
    LimiterKey,
    LimiterPolicy,
    LimiterRegistry,
    LimiterStats,
    MemoryLimiter,
    RateLimiter,
)
from ._pacing import pacing_for, percentile
from ._quota import Quota, RouteGroup

__all__ = ["RedisLimiter", "RedisLimiterRegistry"]

logger = logging.getLogger(__name__)

GCRA_SCRIPT: Final = (
    importlib.resources.files("assetpay_async").joinpath("_gcra.lua").read_text(encoding="utf-8")
)
"""The Lua source of the GCRA (see ``_gcra.lua`` for its arguments and replies)."""

_ANY_WAIT: Final = -1
_NO_RESERVATION: Final = -2
_NOTHING_TO_CONFIRM: Final = -1
_BACKEND_ERRORS: Final = (RedisError, OSError)
_MAX_SAMPLES: Final = 1024


def _us(seconds: float) -> int:
    """Whole microseconds, rounded up (a limiter errs on the slow side), ignoring float noise."""
    return math.ceil(round(seconds * 1_000_000, 3))


# -- the script ---------------------------------------------------------------------------------------


@attrs.frozen
class GcraReply:
    """What one ``acquire`` call of the script answered. Times are Redis microseconds.

    Attributes:
        confirmed: whether the slot asked about is still good (None: none was asked about).
        reserved: whether a new slot was reserved.
        wait_us: how long until that slot is due (also when it was not reserved: the wait that was refused).
        slot_us: when the slot is due.
        tat_us: the key's theoretical arrival time after this call (a refund needs it).
    """

    confirmed: bool | None
    reserved: bool
    wait_us: int
    slot_us: int
    tat_us: int


class GcraScript:
    """Typed calls of the GCRA Lua script on one Redis connection pool (one round trip each).

    Args:
        redis: the client to run it on.
        interval: the emission interval g in seconds (one grant every g).
        burst: how many grants may go out at once after an idle spell (1: none).
        clock: seconds to pass as the script's "now" instead of Redis ``TIME`` (tests only).
    """

    __slots__ = ("_burst_arg", "_clock", "_interval_us", "_script")

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        interval: float,
        burst: int = 1,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not (interval > 0 and math.isfinite(interval)) or burst < 1:
            raise ValueError("interval must be a positive number of seconds and burst >= 1")
        self._script = redis.register_script(GCRA_SCRIPT)
        self._interval_us = _us(interval)
        self._burst_arg = str(burst)
        self._clock = clock

    @property
    def interval_us(self) -> int:
        return self._interval_us

    async def acquire(
        self,
        key: str,
        *,
        confirm_slot_us: int | None = None,
        reserve_within_us: int | None = _ANY_WAIT,
    ) -> GcraReply:
        """Confirm a reserved slot and/or reserve the next one.

        Args:
            key: the limiter key.
            confirm_slot_us: a slot reserved earlier, to check before using it.
            reserve_within_us: reserve only if the slot is due within this many microseconds (``-1``: any
                wait); None reserves nothing.
        """
        within = _NO_RESERVATION if reserve_within_us is None else max(reserve_within_us, _ANY_WAIT)
        confirm = _NOTHING_TO_CONFIRM if confirm_slot_us is None else confirm_slot_us
        reply = await self._call(key, "acquire", confirm, within)
        confirmed, reserved, wait_us, slot_us, tat_us = (int(value) for value in reply)
        return GcraReply(
            confirmed=None if confirmed < 0 else bool(confirmed),
            reserved=bool(reserved),
            wait_us=wait_us,
            slot_us=slot_us,
            tat_us=tat_us,
        )

    async def pause(self, key: str, penalty: float) -> int:
        """Push the key's next slot to at least now + ``penalty`` seconds; return the pause left in us."""
        return int(await self._call(key, "pause", _us(max(0.0, penalty))))

    async def refund(self, key: str, tat_us: int) -> bool:
        """Give back the slot whose reservation left ``tat_us``, if nobody reserved after it."""
        return bool(await self._call(key, "refund", tat_us))

    async def _call(self, key: str, op: str, *args: int) -> Any:
        now = "" if self._clock is None else str(_us(self._clock()))
        return await self._script(
            keys=[key], args=[op, self._interval_us, self._burst_arg, now, *args]
        )


# -- the limiter --------------------------------------------------------------------------------------


class _Outcome(enum.Enum):
    GRANTED = "granted"
    FALLBACK = "fallback"
    """Redis is unavailable: take a grant from the in-memory limiter instead."""


@attrs.define
class _Waiter:
    future: asyncio.Future[_Outcome]
    deadline: float | None

    def budget_us(self, now: float) -> int:
        return _ANY_WAIT if self.deadline is None else max(0, int((self.deadline - now) * 1e6))


@attrs.frozen
class _Slot:
    """A slot this process reserved and has not used yet."""

    slot_us: int
    tat_us: int
    due: float
    """Event-loop time when it is due."""
    confirmed: bool
    """True when it was due at once when reserved: nothing can have paused the key since."""


class RedisLimiter:
    """A :class:`~assetpay_async._limiting.RateLimiter` whose schedule lives in Redis, shared by every process.

    Get one from :class:`RedisLimiterRegistry` (what ``AssetPaySession(redis=...)`` does).

    Args:
        redis: the client (not closed by the limiter).
        merchant_id: the merchant.
        group: the route group.
        quota: the quota to keep under.
        policy: how grants are spaced (the same policies as the in-memory limiter).
        latency_margin: J in seconds, as for the in-memory limiter.
        key_prefix: prefix of the Redis key.
        fallback: when Redis fails, use an in-memory limiter (True) or raise
            :class:`~assetpay_async.LimiterBackendError` from :meth:`acquire` (False).
        recheck_after: seconds between attempts to get back to Redis while falling back.
        clock: seconds passed to the script instead of Redis ``TIME`` (tests on virtual time only).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        merchant_id: str,
        group: RouteGroup,
        quota: Quota,
        *,
        policy: LimiterPolicy = LimiterPolicy.EVEN,
        latency_margin: float = 1.0,
        key_prefix: str = "assetpay",
        fallback: bool = True,
        recheck_after: float = 5.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._key = LimiterKey(merchant_id, RouteGroup(group))
        self._quota = quota
        self._policy = LimiterPolicy(policy)
        self._latency_margin = latency_margin
        pacing = pacing_for(quota, self._policy, latency_margin)
        self._interval = pacing.interval
        self._script = GcraScript(redis, interval=pacing.interval, burst=pacing.burst, clock=clock)
        self._redis_key = f"{key_prefix}:limiter:{merchant_id}:{self._key.group.value}"
        self._fallback_enabled = fallback
        self._recheck_after = recheck_after
        self._fallback: RateLimiter | None = None
        self._degraded = False
        self._recheck_at = 0.0
        self._queue: collections.deque[_Waiter] = collections.deque()
        self._held: _Slot | None = None
        self._worker: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[bool] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pause_until = 0.0
        self._closed = False
        self._granted = 0
        self._rate_limited = 0
        self._pauses = 0
        self._waits: collections.deque[float] = collections.deque(maxlen=_MAX_SAMPLES)

    @property
    def redis_key(self) -> str:
        """The Redis key holding this limiter's schedule."""
        return self._redis_key

    @property
    def degraded(self) -> bool:
        """True while Redis is unavailable and the in-memory fallback serves the grants."""
        return self._degraded

    # -- RateLimiter ------------------------------------------------------------------------------------

    async def acquire(self, *, max_wait: float | None = None) -> float:
        """Wait for a grant in first-in-first-out order; return the seconds waited.

        Raises:
            QueueTimeoutError: no grant within ``max_wait`` seconds; nothing was spent.
            LimiterBackendError: Redis failed and fallback is off; nothing was spent.
            SessionClosedError: the limiter's registry was closed.
        """
        if self._closed:
            raise SessionClosedError("this Redis limiter is closed")
        loop = asyncio.get_running_loop()
        start = loop.time()
        if max_wait is not None:
            max_wait = max(0.0, max_wait)
        if self._degraded and start < self._recheck_at:
            return await self._acquire_fallback(loop, start, max_wait)
        waiter = _Waiter(loop.create_future(), None if max_wait is None else start + max_wait)
        self._queue.append(waiter)
        self._start_worker(loop)
        try:
            async with asyncio.timeout(max_wait):
                outcome = await waiter.future
        except TimeoutError:
            self._nudge()
            if not _granted(waiter.future):
                raise QueueTimeoutError(
                    f"no quota within {max_wait:.3f}s", waited=loop.time() - start
                ) from None
            outcome = _Outcome.GRANTED  # granted as the time ran out: keep it rather than waste it
        except asyncio.CancelledError:
            self._nudge()
            if _granted(waiter.future):
                self._pass_on()
            raise
        if outcome is _Outcome.FALLBACK:
            return await self._acquire_fallback(loop, start, max_wait)
        waited = loop.time() - start
        self._granted += 1
        self._waits.append(waited)
        return waited

    def rate_limited(self, retry_after: float | None) -> None:
        """Pause this key in every process for ``retry_after`` seconds (default: one quota period)."""
        self._rate_limited += 1
        pause = retry_after if retry_after is not None and retry_after >= 0 else None
        pause = self._quota.period_seconds if pause is None else pause
        loop = asyncio.get_running_loop()
        until = loop.time() + pause
        if until > self._pause_until:
            self._pause_until = until
            self._pauses += 1
        if self._fallback is not None:
            self._fallback.rate_limited(retry_after)
        task = loop.create_task(self._push_pause(pause), name=f"assetpay pause {self._redis_key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def succeeded(self) -> None:
        """Report a non-429 answer (passed on to the in-memory fallback, which may be slowed down)."""
        if self._fallback is not None:
            self._fallback.succeeded()

    def stats(self) -> LimiterStats:
        """Counters of this process's view of the key."""
        waits = sorted(self._waits)
        now = self._now()
        return LimiterStats(
            merchant_id=self._key.merchant_id,
            group=self._key.group,
            granted=self._granted,
            queued=sum(1 for waiter in self._queue if not waiter.future.done()),
            waited_p50=percentile(waits, 50),
            waited_p99=percentile(waits, 99),
            rate_limited=self._rate_limited,
            pauses=self._pauses,
            current_rate=1 / self._interval,
            paused_for=max(0.0, self._pause_until - now) if now is not None else 0.0,
        )

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the worker and pending pause messages; calls still queued get :class:`SessionClosedError`."""
        self._closed = True
        self._drop_state(SessionClosedError("the Redis limiter was closed while this call waited"))
        tasks = [task for task in (self._worker, *self._tasks) if task is not None]
        self._worker = None
        if tasks:
            # A pause message in flight is worth its round trip; give it a moment, then cancel.
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def abandon(self) -> None:
        """Cancel the worker without waiting (for :meth:`RedisLimiterRegistry.clear`)."""
        self._drop_state(SessionClosedError("the Redis limiter was dropped while this call waited"))
        for task in (self._worker, *self._tasks):
            if task is not None and not task.get_loop().is_closed():
                task.cancel()
        self._worker = None

    def __repr__(self) -> str:
        state = "degraded" if self._degraded else "redis"
        return (
            f"<RedisLimiter key={self._redis_key!r} interval={self._interval:.3f}s "
            f"queued={len(self._queue)} granted={self._granted} state={state}>"
        )

    # -- internals -----------------------------------------------------------------------------------------

    def _now(self) -> float | None:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return None

    def _start_worker(self, loop: asyncio.AbstractEventLoop) -> None:
        worker = self._worker
        if worker is not None and worker.get_loop() is not loop:
            # Left behind by an event loop that has since been closed: its waiters died with it.
            self._queue = collections.deque(w for w in self._queue if w.future.get_loop() is loop)
            self._held = None
            worker = self._worker = None
        if worker is None:
            self._worker = loop.create_task(
                self._serve(), name=f"assetpay limiter {self._redis_key}"
            )

    def _head(self) -> _Waiter | None:
        """The first waiter still waiting (cancelled and timed-out ones are dropped: they spent nothing)."""
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()
        return self._queue[0] if self._queue else None

    def _more_than_one_waiting(self) -> bool:
        # Stops at the second live waiter: on every grant, so it must not walk a queue of 100,000.
        live = (waiter for waiter in self._queue if not waiter.future.done())
        return next(live, None) is not None and next(live, None) is not None

    def _grant_head(self) -> bool:
        head = self._head()
        if head is None:
            logger.debug(
                "slot of %s unused: its waiter left during the round trip", self._redis_key
            )
            return False
        self._queue.popleft()
        head.future.set_result(_Outcome.GRANTED)
        return True

    def _pass_on(self) -> None:
        """A waiter was cancelled just after its grant: the next one in line takes the slot."""
        self._grant_head()

    def _release_all(self, outcome: _Outcome) -> None:
        while (head := self._head()) is not None:
            self._queue.popleft()
            head.future.set_result(outcome)

    def _fail_all(self, error: Exception) -> None:
        while (head := self._head()) is not None:
            self._queue.popleft()
            head.future.set_exception(error)

    def _drop_state(self, error: Exception) -> None:
        self._held = None
        for waiter in self._queue:
            if not waiter.future.done() and not waiter.future.get_loop().is_closed():
                waiter.future.set_exception(error)
        self._queue.clear()

    async def _serve(self) -> None:
        """The one coroutine of this process that talks to Redis for this key."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if self._pause_until > now:
                # Our own 429: whatever Redis says, nothing goes out before the pause ends here.
                await asyncio.sleep(self._pause_until - now)
                continue
            head = self._head()
            if head is None:
                if self._held is None:
                    self._worker = None
                    return
                await self._refund()
                continue
            if self._degraded and now < self._recheck_at:
                self._release_all(_Outcome.FALLBACK)
                continue
            try:
                await self._step(loop, head)
            except _BACKEND_ERRORS as exc:
                self._held = None
                self._backend_failed(loop, exc)
            else:
                self._backend_ok()

    async def _step(self, loop: asyncio.AbstractEventLoop, head: _Waiter) -> None:
        """Reserve a slot if none is held, wait for it, confirm it, grant it to the head of the queue."""
        held = self._held
        if held is None:
            reply = await self._script.acquire(
                self._redis_key, reserve_within_us=head.budget_us(loop.time())
            )
            if not reply.reserved:
                if not head.future.done():
                    head.future.set_exception(self._queue_timeout(head, reply.wait_us, loop))
                return
            held = self._held = _Slot(
                reply.slot_us,
                reply.tat_us,
                due=loop.time() + reply.wait_us / 1e6,
                confirmed=reply.wait_us == 0,
            )
        self._expire_before(held.due, loop)
        if self._head() is None:
            return  # the caller refunds the slot
        if held.confirmed:
            self._held = None
            if self._pause_until <= loop.time():
                self._grant_head()
            return
        if await self._sleep_until(loop, held.due) or self._head() is None:
            return  # a waiter left: look again (and give the slot back if nobody is left)
        reply = await self._script.acquire(
            self._redis_key,
            confirm_slot_us=held.slot_us,
            reserve_within_us=_ANY_WAIT if self._more_than_one_waiting() else None,
        )
        self._held = (
            _Slot(
                reply.slot_us,
                reply.tat_us,
                due=loop.time() + reply.wait_us / 1e6,
                confirmed=False,
            )
            if reply.reserved
            else None
        )
        if reply.confirmed and self._pause_until <= loop.time():
            self._grant_head()
        else:
            logger.debug(
                "slot of %s void: the key was paused or lost after it was reserved", self._redis_key
            )

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, when: float) -> bool:
        """Sleep until ``when``; return True if woken earlier by :meth:`_nudge`."""
        wake: asyncio.Future[bool] = loop.create_future()
        self._wake = wake
        timer = loop.call_at(when, _resolve, wake, False)
        try:
            return await wake
        finally:
            timer.cancel()
            self._wake = None

    def _nudge(self) -> None:
        """Wake the worker: a waiter left the queue, so a held slot may have to go back."""
        _resolve(self._wake, True)

    def _expire_before(self, due: float, loop: asyncio.AbstractEventLoop) -> None:
        """Fail, now, the waiters at the head whose ``max_wait`` ends before the next slot is due."""
        while (
            (head := self._head()) is not None and head.deadline is not None and head.deadline < due
        ):
            self._queue.popleft()
            head.future.set_exception(self._queue_timeout(head, _us(due - loop.time()), loop))

    def _queue_timeout(
        self, waiter: _Waiter, wait_us: int, loop: asyncio.AbstractEventLoop
    ) -> QueueTimeoutError:
        budget = 0.0 if waiter.deadline is None else max(0.0, waiter.deadline - loop.time())
        return QueueTimeoutError(
            f"no quota within the {budget:.3f}s left (next grant in {wait_us / 1e6:.3f}s)",
            waited=0.0,
        )

    async def _refund(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        try:
            await self._script.refund(self._redis_key, held.tat_us)
        except _BACKEND_ERRORS as exc:
            logger.debug("could not give back a slot of %s: %r", self._redis_key, exc)

    async def _push_pause(self, pause: float) -> None:
        try:
            await self._script.pause(self._redis_key, pause)
        except _BACKEND_ERRORS as exc:
            logger.debug("could not share a pause of %s through Redis: %r", self._redis_key, exc)

    def _backend_failed(self, loop: asyncio.AbstractEventLoop, exc: BaseException) -> None:
        if not self._fallback_enabled:
            self._fail_all(
                LimiterBackendError(
                    f"the Redis limiter store failed for {self._redis_key!r} ({type(exc).__name__}: "
                    f"{exc}); nothing was sent (redis_fallback=False)"
                )
            )
            return
        if not self._degraded:
            logger.warning(
                "Redis limiter store failed for %s (%s: %s): using an in-memory limiter for this key "
                "(it cannot see other processes); retrying Redis every %.0fs",
                self._redis_key,
                type(exc).__name__,
                exc,
                self._recheck_after,
            )
        self._degraded = True
        self._recheck_at = loop.time() + self._recheck_after
        self._release_all(_Outcome.FALLBACK)

    def _backend_ok(self) -> None:
        if self._degraded:
            self._degraded = False
            logger.info(
                "Redis limiter store is back for %s: shared limiting resumed", self._redis_key
            )

    def _fallback_limiter(self) -> RateLimiter:
        if self._fallback is None:
            self._fallback = MemoryLimiter(
                self._key, self._quota, policy=self._policy, latency_margin=self._latency_margin
            )
            now = self._now()
            if now is not None and self._pause_until > now:
                self._fallback.rate_limited(self._pause_until - now)
        return self._fallback

    async def _acquire_fallback(
        self, loop: asyncio.AbstractEventLoop, start: float, max_wait: float | None
    ) -> float:
        left = None if max_wait is None else max(0.0, start + max_wait - loop.time())
        try:
            await self._fallback_limiter().acquire(max_wait=left)
        except QueueTimeoutError as exc:
            raise QueueTimeoutError(str(exc), waited=loop.time() - start) from None
        waited = loop.time() - start
        self._granted += 1
        self._waits.append(waited)
        return waited


def _resolve(future: asyncio.Future[bool] | None, value: bool) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def _granted(future: asyncio.Future[_Outcome]) -> bool:
    """Whether ``future`` carries a grant; retrieves an exception so that asyncio does not log it."""
    if not future.done() or future.cancelled():
        return False
    if future.exception() is not None:
        return False
    return future.result() is _Outcome.GRANTED


# -- the registry ---------------------------------------------------------------------------------------


def redis_client_from_url(url: str) -> aioredis.Redis:
    """A client for the limiter: quick to give up (so the fallback starts quickly), quick to retry.

    Options in the URL's query string (``?socket_timeout=2``) override these.
    """
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2),
    )


class RedisLimiterRegistry(LimiterRegistry):
    """Redis-backed limiters by (merchant, route group), for every process of a merchant.

    Args:
        redis: a ``redis://`` / ``rediss://`` / ``unix://`` URL (the registry creates the client and closes
            it in :meth:`aclose`), or a ``redis.asyncio.Redis`` you own (never closed here).
        key_prefix: prefix of every key (``<prefix>:limiter:<merchant>:<group>``).
        fallback: on a Redis failure, fall back to an in-memory limiter per key (True) or raise
            :class:`~assetpay_async.LimiterBackendError` (False).
        recheck_after: seconds between attempts to get back to Redis while falling back.
    """

    def __init__(
        self,
        redis: str | aioredis.Redis,
        *,
        key_prefix: str = "assetpay",
        fallback: bool = True,
        recheck_after: float = 5.0,
    ) -> None:
        super().__init__()
        if isinstance(redis, str):
            self._redis, self._owns_client = redis_client_from_url(redis), True
        elif isinstance(redis, aioredis.Redis):
            self._redis, self._owns_client = redis, False
        else:
            raise TypeError("redis must be a URL string or a redis.asyncio.Redis client")
        if not key_prefix:
            raise ValueError("key_prefix must not be empty")
        self._key_prefix = key_prefix
        self._fallback = fallback
        self._recheck_after = recheck_after
        self._redis_limiters: dict[LimiterKey, RedisLimiter] = {}
        self._closed = False

    @property
    def redis(self) -> aioredis.Redis:
        """The Redis client in use."""
        return self._redis

    def get(
        self,
        merchant_id: str,
        group: RouteGroup,
        quota: Quota,
        *,
        policy: LimiterPolicy = LimiterPolicy.EVEN,
        latency_margin: float = 1.0,
    ) -> RateLimiter:
        """The limiter of (merchant, group); the first configuration of a key in this registry wins."""
        if self._closed:
            raise SessionClosedError("this RedisLimiterRegistry is closed")
        key = LimiterKey(merchant_id, RouteGroup(group))
        limiter = self._redis_limiters.get(key)
        if limiter is None:
            limiter = self._redis_limiters[key] = RedisLimiter(
                self._redis,
                merchant_id,
                key.group,
                quota,
                policy=policy,
                latency_margin=latency_margin,
                key_prefix=self._key_prefix,
                fallback=self._fallback,
                recheck_after=self._recheck_after,
            )
        return limiter

    def clear(self) -> None:
        """Forget every limiter (their workers are cancelled; Redis keeps the shared schedule)."""
        for limiter in self._redis_limiters.values():
            limiter.abandon()
        self._redis_limiters.clear()

    async def aclose(self) -> None:
        """Stop every limiter, then close the Redis client if this registry created it from a URL. Idempotent."""
        if self._closed:
            return
        self._closed = True
        limiters = list(self._redis_limiters.values())
        self._redis_limiters.clear()
        for limiter in limiters:
            await limiter.aclose()
        if self._owns_client:
            await self._redis.aclose()

    def __repr__(self) -> str:
        return (
            f"<RedisLimiterRegistry prefix={self._key_prefix!r} limiters={len(self._redis_limiters)} "
            f"fallback={self._fallback} owns_client={self._owns_client}>"
        )
