"""Share one merchant's quota across processes and hosts: a GCRA in Redis behind a local FIFO queue.

Every process keeps, per (merchant, route group), a first-in-first-out queue of waiting calls and one worker
coroutine that grants them, one at a time and in order. While Redis answers, the worker *reserves* the next
slot with one Lua call (the key's theoretical arrival time moves on by one grant interval, measured on Redis
``TIME``), sleeps until the slot is due, and hands it to the head of the queue. A slot that had to be waited
for is confirmed before use, in the same call that reserves the next one, so a 429 seen by any process voids
slots reserved before it.

When Redis fails (an error, or no answer within ``timeout``), the same worker goes on granting the same queue
from this process's *share* of the quota: N divided by the live processes of the key, which every process
announces in Redis (a heartbeat with expiry). Its first local grant waits a few intervals, and after Redis is
back it keeps to its share until every peer is back too and a window has passed, so no window of the
server holds more than N: before, during or after the outage. ``docs/redis.md`` has the details.

Select it with ``AssetPaySession(limiter="redis://...")`` (the ``[redis]`` extra).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import uuid
from collections.abc import Callable
from typing import Final

import attrs
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._errors import LimiterBackendError, QueueTimeoutError, SessionClosedError
from ._limiter_types import LimiterKey, LimiterPolicy, LimiterStats, RateLimiter
from ._pacing import pacing_for, percentile
from ._quota import Quota, RouteGroup
from ._redis_scripts import ANY_WAIT, GcraScript, PeersScript, us
from ._redis_share import local_start_delay, settle_period, share_interval

__all__ = ["DEFAULT_MAX_PAUSE_PERIODS", "RedisLimiter", "RedisLimiterRegistry"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_PAUSE_PERIODS: Final = 5
"""Without ``max_pause``, a pause after a 429 (here and in Redis) lasts at most this many quota periods."""

_BACKEND_ERRORS: Final = (RedisError, OSError)
_MAX_SAMPLES: Final = 1024
_PEER_LIFETIME_BEATS: Final = 3
"""An announcement outlives this many missed heartbeats (plus one ``timeout``) before a peer is dropped."""


# -- the limiter --------------------------------------------------------------------------------------


@attrs.define
class _Waiter:
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


class RedisLimiter:
    """A rate limiter (the `RateLimiter` protocol) whose schedule lives in Redis, shared by every process.

    Get one from [`RedisLimiterRegistry`][assetpay_async.redis_limiter.RedisLimiterRegistry] (what
    ``AssetPaySession(limiter=url_or_client)`` does).

    Args:
        redis: the client (not closed by the limiter).
        merchant_id: the merchant.
        group: the route group.
        quota: the quota to keep under.
        policy: how grants are spaced (the same policies as the in-memory limiter).
        latency_margin: J in seconds, as for the in-memory limiter.
        key_prefix: prefix of the Redis keys.
        fallback: when Redis fails, grant from this process's share of the quota (True) or raise
            [`LimiterBackendError`][assetpay_async.LimiterBackendError] from
            [`acquire`][assetpay_async.redis_limiter.RedisLimiter.acquire] (False).
        recheck_after: while Redis is failing, the longest time between tries to get it back (the
            heartbeat tries every ``heartbeat`` seconds and calls the worker back as soon as Redis answers).
        timeout: seconds one Redis call may take before it counts as a failure (a stopped server answers
            nothing and raises nothing).
        heartbeat: seconds between the announcements of this process to its peers (fallback only).
        max_pause: the longest pause a 429 may cause, here and in Redis (default:
            [`DEFAULT_MAX_PAUSE_PERIODS`][assetpay_async.redis_limiter.DEFAULT_MAX_PAUSE_PERIODS] periods).
        clock: seconds passed to the scripts instead of Redis ``TIME`` (tests on virtual time only).
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
        timeout: float = 1.0,
        heartbeat: float = 1.0,
        max_pause: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        for name, value in (
            ("recheck_after", recheck_after),
            ("timeout", timeout),
            ("heartbeat", heartbeat),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if max_pause is None:
            max_pause = DEFAULT_MAX_PAUSE_PERIODS * quota.period_seconds
        elif not (max_pause >= 0 and math.isfinite(max_pause)):
            raise ValueError(
                f"max_pause must be a finite number of seconds >= 0, got {max_pause!r}"
            )
        self._key = LimiterKey(merchant_id, RouteGroup(group))
        self._quota = quota
        self._policy = LimiterPolicy(policy)
        self._latency_margin = latency_margin
        pacing = pacing_for(quota, self._policy, latency_margin)
        self._interval = pacing.interval
        self._script = GcraScript(
            redis,
            interval=pacing.interval,
            burst=pacing.burst,
            clock=clock,
            timeout=timeout,
            max_pause=max_pause,
        )
        self._peers_script = PeersScript(
            redis,
            lifetime=_PEER_LIFETIME_BEATS * heartbeat + timeout,
            clock=clock,
            timeout=timeout,
        )
        group_name = self._key.group.value
        self._redis_key = f"{key_prefix}:limiter:{merchant_id}:{group_name}"
        self._peers_key = f"{key_prefix}:peers:{merchant_id}:{group_name}"
        self._member = uuid.uuid4().hex
        self._fallback_enabled = fallback
        self._recheck_after = recheck_after
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._max_pause = max_pause
        self._queue: collections.deque[_Waiter] = collections.deque()
        self._held: _Slot | None = None
        self._worker: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._announced = False
        self._wake: asyncio.Future[bool] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pause_until = 0.0
        self._closed = False
        # The outage mode (see _redis_share): local grants from this process's share of the quota.
        self._peers = 1
        self._degraded = False
        self._outage_seen = False
        self._recheck_at = 0.0
        self._share_due = -math.inf
        self._share_until = -math.inf
        self._granted = 0
        self._local_granted = 0
        self._rate_limited = 0
        self._pauses = 0
        self._waits: collections.deque[float] = collections.deque(maxlen=_MAX_SAMPLES)

    @property
    def redis_key(self) -> str:
        """The Redis key holding this limiter's schedule."""
        return self._redis_key

    @property
    def peers_key(self) -> str:
        """The Redis key where the processes of this limiter's key announce themselves."""
        return self._peers_key

    @property
    def peers(self) -> int:
        """The live processes of this key (this one included) at the last heartbeat; 1 before any."""
        return self._peers

    @property
    def degraded(self) -> bool:
        """True while Redis is unavailable and this process grants from its share of the quota."""
        return self._degraded

    @property
    def sharing(self) -> bool:
        """True while this process keeps to its share of the quota: during an outage and for a while after."""
        now = self._now()
        return self._degraded or (now is not None and now < self._share_until)

    @property
    def local_granted(self) -> int:
        """Grants made without Redis (during outages) since the limiter was created."""
        return self._local_granted

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
        waiter = _Waiter(loop.create_future(), None if max_wait is None else start + max_wait)
        self._queue.append(waiter)
        self._start_tasks(loop)
        try:
            async with asyncio.timeout(max_wait):
                await waiter.future
        except TimeoutError:
            self._nudge()
            if not _granted(waiter.future):
                raise QueueTimeoutError(
                    f"no quota within {max_wait:.3f}s", waited=loop.time() - start
                ) from None
            # granted as the time ran out: keep it rather than waste it
        except asyncio.CancelledError:
            self._nudge()
            if _granted(waiter.future):
                self._pass_on()
            raise
        waited = loop.time() - start
        self._granted += 1
        self._waits.append(waited)
        return waited

    def rate_limited(self, retry_after: float | None) -> None:
        """Pause this key in every process for ``retry_after`` seconds (default: one quota period).

        The pause is cut to ``max_pause`` (by default five quota periods), here and in Redis, so a hostile or
        broken ``Retry-After`` can never block this process or a restarted one for long.
        """
        self._rate_limited += 1
        pause = (
            retry_after
            if retry_after is not None and retry_after >= 0 and math.isfinite(retry_after)
            else self._quota.period_seconds
        )
        pause = min(pause, self._max_pause)
        loop = asyncio.get_running_loop()
        until = loop.time() + pause
        if until > self._pause_until:
            self._pause_until = until
            self._pauses += 1
        task = loop.create_task(self._push_pause(pause), name=f"assetpay pause {self._redis_key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def succeeded(self) -> None:
        """Report a non-429 answer (nothing to do: the Redis limiter does not slow down)."""

    def observe_wire(self, seconds: float) -> None:
        """Report a send-to-answer time (unused: the Redis limiter's J is the configured one)."""

    def stats(self) -> LimiterStats:
        """Counters of this process's view of the key."""
        waits = sorted(self._waits)
        now = self._now()
        rate = 1 / self._interval
        if self.sharing:
            rate = min(rate, 1 / self._share_interval())
        return LimiterStats(
            merchant_id=self._key.merchant_id,
            group=self._key.group,
            granted=self._granted,
            queued=sum(1 for waiter in self._queue if not waiter.future.done()),
            waited_p50=percentile(waits, 50),
            waited_p99=percentile(waits, 99),
            rate_limited=self._rate_limited,
            pauses=self._pauses,
            current_rate=rate,
            paused_for=max(0.0, self._pause_until - now) if now is not None else 0.0,
        )

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the worker, the heartbeat and pending pause messages; queued calls get SessionClosedError.

        The process withdraws its announcement (one Redis call, best effort), so its peers count it out at
        their next heartbeat rather than when the announcement expires.
        """
        self._closed = True
        self._drop_state(SessionClosedError("the Redis limiter was closed while this call waited"))
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
        tasks = [task for task in (self._worker, *self._tasks) if task is not None]
        self._worker = None
        if tasks:
            # A pause message in flight is worth its round trip; give it a moment, then cancel.
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._announced:
            self._announced = False
            try:
                await self._peers_script.leave(self._peers_key, self._member)
            except Exception as exc:  # best effort on the way out: it expires anyway
                logger.debug("could not withdraw from %s: %r", self._peers_key, exc)

    def abandon(self) -> None:
        """Cancel the worker and the heartbeat without waiting (for ``RedisLimiterRegistry.clear``)."""
        self._drop_state(SessionClosedError("the Redis limiter was dropped while this call waited"))
        for task in (self._worker, self._beat, *self._tasks):
            if task is not None and not task.get_loop().is_closed():
                task.cancel()
        self._worker = self._beat = None

    def __repr__(self) -> str:
        state = "degraded" if self._degraded else "sharing" if self.sharing else "redis"
        return (
            f"<RedisLimiter key={self._redis_key!r} interval={self._interval:.3f}s "
            f"queued={len(self._queue)} granted={self._granted} peers={self._peers} state={state}>"
        )

    # -- internals -----------------------------------------------------------------------------------------

    def _now(self) -> float | None:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return None

    def _start_tasks(self, loop: asyncio.AbstractEventLoop) -> None:
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
        beat = self._beat
        if self._fallback_enabled and (beat is None or beat.done() or beat.get_loop().is_closed()):
            self._beat = loop.create_task(
                self._beat_loop(), name=f"assetpay heartbeat {self._peers_key}"
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

    def _sharing_at(self, now: float) -> bool:
        return self._degraded or now < self._share_until

    def _share_interval(self) -> float:
        return share_interval(self._quota, self._policy, self._latency_margin, self._peers)

    def _grant_head(self, loop: asyncio.AbstractEventLoop) -> bool:
        head = self._head()
        if head is None:
            logger.debug(
                "slot of %s unused: its waiter left during the round trip", self._redis_key
            )
            return False
        self._queue.popleft()
        head.future.set_result(None)
        now = loop.time()
        if self._sharing_at(now):
            self._share_due = max(self._share_due, now) + self._share_interval()
        return True

    def _pass_on(self) -> None:
        """A waiter was cancelled just after its grant: the next one in line takes it (no new grant)."""
        head = self._head()
        if head is not None:
            self._queue.popleft()
            head.future.set_result(None)

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
        """The one grant stream of this process for this key: from Redis, or from its share without it."""
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
            if self._held is None and self._sharing_at(now) and self._share_due > now:
                # Keeping to this process's share: the next grant, from Redis or not, waits its turn.
                self._expire_before(self._share_due, loop)
                if self._head() is not None:
                    await self._sleep_until(loop, self._share_due)
                continue
            if self._degraded and now < self._recheck_at:
                if self._grant_head(loop):
                    self._local_granted += 1
                continue
            try:
                await self._step(loop, head)
            except _BACKEND_ERRORS as exc:
                self._held = None
                self._backend_failed(loop, exc)
            else:
                self._backend_ok(loop)

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
                self._grant_head(loop)
            return
        if await self._sleep_until(loop, held.due) or self._head() is None:
            return  # a waiter left: look again (and give the slot back if nobody is left)
        # While keeping to a share, the next slot is reserved only when the share allows it.
        pipeline = self._more_than_one_waiting() and not self._sharing_at(loop.time())
        reply = await self._script.acquire(
            self._redis_key,
            confirm_slot_us=held.slot_us,
            reserve_within_us=ANY_WAIT if pipeline else None,
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
            self._grant_head(loop)
        else:
            logger.debug(
                "slot of %s void: the key was paused or lost after it was reserved", self._redis_key
            )

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, when: float) -> bool:
        """Sleep until ``when``; return True if woken earlier by `_nudge`."""
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
            head.future.set_exception(self._queue_timeout(head, us(due - loop.time()), loop))

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

    async def _beat_loop(self) -> None:
        """Announce this process to its peers every ``heartbeat`` seconds, and learn how many they are."""
        loop = asyncio.get_running_loop()
        # Closing cancels this task, but some redis-py releases (5.x) swallow a cancellation that arrives
        # during a command: the flag ends the loop all the same, so aclose() never waits on it forever.
        while not self._stopping():
            try:
                count = await self._peers_script.beat(self._peers_key, self._member)
            except _BACKEND_ERRORS as exc:
                logger.debug("heartbeat of %s failed: %r", self._peers_key, exc)
                self._outage_seen = True
            except Exception as exc:
                # Never let the heartbeat die: it also brings the worker back to Redis.
                logger.warning("heartbeat of %s failed: %r", self._peers_key, exc)
                self._outage_seen = True
            else:
                self._announced = True
                self._peers_seen(loop.time(), count)
            if self._stopping():
                return
            await asyncio.sleep(self._heartbeat)

    def _stopping(self) -> bool:
        """Whether `aclose` began (read afresh after each await of the heartbeat)."""
        return self._closed

    def _peers_seen(self, now: float, count: int) -> None:
        if self._sharing_at(now) or self._outage_seen:
            # A Redis restarted empty has forgotten the peers that are not back yet: never count fewer
            # than before the outage until it is over.
            self._peers = max(self._peers, count)
        else:
            self._peers = max(1, count)
        if self._degraded:
            # Redis answers: try it for the next grant.
            self._recheck_at = min(self._recheck_at, now)
        elif self._outage_seen:
            self._settle(now)

    def _settle(self, now: float) -> None:
        """Redis is back after a failure: keep to the share until every peer is back and a window passed."""
        self._outage_seen = False
        period = settle_period(
            recheck=min(self._recheck_after, self._heartbeat + self._timeout),
            timeout=self._timeout,
            share_interval=self._share_interval(),
            quota=self._quota,
            latency_margin=self._latency_margin,
        )
        self._share_until = max(self._share_until, now + period)

    def _backend_failed(self, loop: asyncio.AbstractEventLoop, exc: BaseException) -> None:
        if not self._fallback_enabled:
            self._fail_all(
                LimiterBackendError(
                    f"the Redis limiter store failed for {self._redis_key!r} ({type(exc).__name__}: "
                    f"{exc}); nothing was sent (RedisLimiterRegistry(fallback=False))"
                )
            )
            return
        now = loop.time()
        if self._degraded:
            # Still failing: grant locally. The heartbeat says when Redis answers again; at the latest,
            # try again after recheck_after.
            self._recheck_at = now + self._recheck_after
            return
        self._degraded = True
        self._outage_seen = True
        # The first local grant waits P shared intervals (see _redis_share.local_start_delay). A refused
        # connection costs nothing to try again, so Redis is tried once more just before that grant (a
        # blip then costs no local grant); a call that hung for `timeout` is not repeated at once.
        self._share_due = max(self._share_due, now + local_start_delay(self._interval, self._peers))
        hung = isinstance(exc, RedisTimeoutError | TimeoutError)
        self._recheck_at = now + self._recheck_after if hung else self._share_due
        logger.warning(
            "Redis limiter store failed for %s (%s: %s): granting from this process's share of the quota "
            "(1/%d) until it is back",
            self._redis_key,
            type(exc).__name__,
            exc,
            self._peers,
        )

    def _backend_ok(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._degraded:
            self._degraded = False
            logger.info(
                "Redis limiter store is back for %s: shared limiting resumed", self._redis_key
            )
        if self._outage_seen:
            self._settle(loop.time())


def _resolve(future: asyncio.Future[bool] | None, value: bool) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def _granted(future: asyncio.Future[None]) -> bool:
    """Whether ``future`` carries a grant; retrieves an exception so that asyncio does not log it."""
    if not future.done() or future.cancelled():
        return False
    return future.exception() is None


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


class RedisLimiterRegistry:
    """Redis-backed limiters by (merchant, route group), for every process of a merchant.

    It implements the limiter registry protocol (``get`` and ``aclose``) on its own; it is not an in-memory
    registry.

    Args:
        redis: a ``redis://`` / ``rediss://`` / ``unix://`` URL (the registry creates the client and closes
            it in [`aclose`][assetpay_async.redis_limiter.RedisLimiterRegistry.aclose]), or a
            ``redis.asyncio.Redis`` you own (never closed here).
        key_prefix: prefix of every key (``<prefix>:limiter:<merchant>:<group>``,
            ``<prefix>:peers:<merchant>:<group>``).
        fallback: on a Redis failure, grant from the process's share of the quota (True) or raise
            [`LimiterBackendError`][assetpay_async.LimiterBackendError] (False).
        recheck_after: while Redis is failing, the longest time between tries to get it back (the
            heartbeat tries every ``heartbeat`` seconds and calls the worker back as soon as Redis answers).
        timeout: seconds one Redis call may take before it counts as a failure.
        heartbeat: seconds between a process's announcements to its peers.
        max_pause: the longest pause a 429 may cause, here and in Redis (default: five quota periods).
    """

    def __init__(
        self,
        redis: str | aioredis.Redis,
        *,
        key_prefix: str = "assetpay",
        fallback: bool = True,
        recheck_after: float = 5.0,
        timeout: float = 1.0,
        heartbeat: float = 1.0,
        max_pause: float | None = None,
    ) -> None:
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
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._max_pause = max_pause
        self._limiters: dict[LimiterKey, RedisLimiter] = {}
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
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = RedisLimiter(
                self._redis,
                merchant_id,
                key.group,
                quota,
                policy=policy,
                latency_margin=latency_margin,
                key_prefix=self._key_prefix,
                fallback=self._fallback,
                recheck_after=self._recheck_after,
                timeout=self._timeout,
                heartbeat=self._heartbeat,
                max_pause=self._max_pause,
            )
        return limiter

    def clear(self) -> None:
        """Forget every limiter (their workers are cancelled; Redis keeps the shared schedule)."""
        for limiter in self._limiters.values():
            limiter.abandon()
        self._limiters.clear()

    async def aclose(self) -> None:
        """Stop every limiter, then close the Redis client if this registry created it from a URL. Idempotent."""
        if self._closed:
            return
        self._closed = True
        limiters = list(self._limiters.values())
        self._limiters.clear()
        for limiter in limiters:
            await limiter.aclose()
        if self._owns_client:
            await self._redis.aclose()

    def __repr__(self) -> str:
        return (
            f"<RedisLimiterRegistry prefix={self._key_prefix!r} limiters={len(self._limiters)} "
            f"fallback={self._fallback} owns_client={self._owns_client}>"
        )
