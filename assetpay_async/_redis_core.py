"""The Redis limiter of one key (public as `assetpay_async.redis_limiter.RedisLimiter`).

It shares one merchant's quota across processes and hosts: a GCRA in Redis behind a local FIFO queue.

Every process keeps, per (merchant, route group), a first-in-first-out queue of waiting calls and one worker
coroutine that grants them, one at a time and in order, from a schedule kept in Redis
(`_redis_worker`). When Redis fails, the same worker goes on granting the same queue from this process's
*share* of the quota: N divided by the live processes of the key, which every process announces in Redis (a
heartbeat with expiry); `_redis_outage` says when the share applies. No window of the server holds more than
N: before, during or after the outage. A configuration error (credentials, ACL, TLS, URL) is no outage: it
raises [`ConfigurationError`][assetpay_async.ConfigurationError]. ``docs/redis.md`` has the details.

Select it with ``AssetPaySession(limiter="redis://...")`` (the ``[redis]`` extra); the registry is
[`RedisLimiterRegistry`][assetpay_async.redis_limiter.RedisLimiterRegistry].
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import uuid
from collections.abc import Callable
from typing import Final

import redis.asyncio as aioredis

from ._errors import ConfigurationError, QueueTimeoutError, SessionClosedError
from ._limiter_types import LimiterKey, LimiterPolicy, LimiterStats
from ._pacing import pacing_for, percentile
from ._quota import Quota, RouteGroup
from ._redis_faults import OUTAGE_ERRORS
from ._redis_keys import DEFAULT_MAX_PAUSE_PERIODS, limiter_keys
from ._redis_outage import OutageState
from ._redis_scripts import Deadline, GcraScript, PeersScript
from ._redis_worker import GrantWorker, Waiter, granted

__all__ = ["RedisLimiter"]

logger = logging.getLogger("assetpay_async.redis_limiter")

_MAX_SAMPLES: Final = 1024
_PEER_LIFETIME_BEATS: Final = 3
"""An announcement outlives this many missed heartbeats (plus one ``timeout``) before a peer is dropped."""


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_policy(outage_policy: str) -> None:
    if outage_policy not in ("share", "wait"):
        raise ConfigurationError(f"outage_policy must be 'share' or 'wait', got {outage_policy!r}")


def _max_pause(max_pause: float | None, quota: Quota) -> float:
    if max_pause is None:
        return DEFAULT_MAX_PAUSE_PERIODS * quota.period_seconds
    if not (max_pause >= 0 and math.isfinite(max_pause)):
        raise ConfigurationError(
            f"max_pause must be a finite number of seconds >= 0, got {max_pause!r}"
        )
    return float(max_pause)


class RedisLimiter:
    """A rate limiter (the `RateLimiter` protocol) whose schedule lives in Redis, shared by every process.

    Get one from [`RedisLimiterRegistry`][assetpay_async.redis_limiter.RedisLimiterRegistry] (what
    ``AssetPaySession(limiter=url_or_client)`` does).

    Args:
        redis: the client (a ``redis.asyncio.Redis`` or ``RedisCluster``; not closed by the limiter).
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
        max_pause: the longest pause stored in Redis that an acquire believes (a pause written by an older
            client or another bound is cut back); default
            [`DEFAULT_MAX_PAUSE_PERIODS`][assetpay_async.redis_limiter.DEFAULT_MAX_PAUSE_PERIODS] periods.
        max_processes: the most processes that share the key. A process that has never counted its peers
            (it started while Redis was down) grants from a 1/``max_processes`` share; without it, such a
            process grants nothing until Redis answers (its calls wait within their ``max_wait``).
        outage_policy: ``"share"`` (when Redis fails, grant from the share N / P) or ``"wait"`` (a process
            that counted peers grants nothing locally and waits for Redis within each call's ``max_wait``:
            a process cut off from Redis alone cannot know that its peers lost it too).
        hash_tag: put the merchant in a ``{...}`` hash tag, so both keys of a merchant live in one
            Redis Cluster slot (what the registry does for a cluster client).
        clock: seconds passed to the scripts instead of Redis ``TIME`` (tests on virtual time only).
    """

    def __init__(
        self,
        redis: aioredis.Redis | aioredis.RedisCluster,
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
        max_processes: int | None = None,
        outage_policy: str = "share",
        hash_tag: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        recheck_after = _positive("recheck_after", recheck_after)
        timeout = _positive("timeout", timeout)
        heartbeat, max_pause = _positive("heartbeat", heartbeat), _max_pause(max_pause, quota)
        _check_policy(outage_policy)
        self._key = LimiterKey(merchant_id, RouteGroup(group))
        self._quota = quota
        pacing = pacing_for(quota, LimiterPolicy(policy), latency_margin)
        self._interval = pacing.interval
        self._latency_margin = float(latency_margin)
        # No deadline below the timeout: on a loaded host a shorter one was taken for outages.
        self._deadline = deadline = Deadline(timeout, floor=timeout)
        self._script = script = GcraScript(
            redis, interval=pacing.interval, burst=pacing.burst, clock=clock, max_pause=max_pause,
            deadline=deadline,
        )  # fmt: skip
        lifetime = _PEER_LIFETIME_BEATS * heartbeat + timeout
        self._peers_script = PeersScript(redis, lifetime=lifetime, clock=clock, deadline=deadline)
        self._redis_key, self._peers_key = limiter_keys(
            key_prefix, merchant_id, self._key.group, hash_tag=hash_tag
        )
        self._redis = redis
        self._member = uuid.uuid4().hex
        self._fallback_enabled = fallback
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._outage = OutageState(
            quota, LimiterPolicy(policy), latency_margin,
            interval=pacing.interval, recheck_after=recheck_after, heartbeat=heartbeat,
            timeout=timeout, max_processes=max_processes, outage_policy=outage_policy,
        )  # fmt: skip
        self._worker = GrantWorker(
            script, self._redis_key, self._outage, fallback=fallback, check=self._check,
            horizon=quota.period_seconds,
        )  # fmt: skip
        self._beat: asyncio.Task[None] | None = None
        self._announced = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._granted = self._rate_limited = self._pauses = 0
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
        return self._outage.peers

    @property
    def degraded(self) -> bool:
        """True while Redis is unavailable and this process grants from its share of the quota."""
        return self._outage.degraded

    @property
    def sharing(self) -> bool:
        """True while this process keeps to its share of the quota: during an outage and for a while after."""
        now = self._now()
        return self._outage.degraded or (now is not None and self._outage.sharing_at(now))

    @property
    def local_granted(self) -> int:
        """Grants made without Redis (during outages) since the limiter was created."""
        return self._worker.local_granted

    # -- RateLimiter ------------------------------------------------------------------------------------

    async def acquire(self, *, max_wait: float | None = None) -> float:
        """Wait for a grant in first-in-first-out order; return the seconds waited.

        Raises:
            QueueTimeoutError: no grant within ``max_wait`` seconds; nothing was spent.
            ConfigurationError: Redis refused this configuration (credentials, ACL, TLS, URL options, a
                cluster node behind a plain client); nothing was spent.
            LimiterBackendError: Redis failed and fallback is off, or the grant worker failed; nothing
                was spent.
            SessionClosedError: the limiter's registry was closed.
        """
        if self._closed:
            raise SessionClosedError("this Redis limiter is closed")
        loop = asyncio.get_running_loop()
        start = loop.time()
        if max_wait is not None:
            max_wait = max(0.0, max_wait)
        waiter = Waiter(loop.create_future(), None if max_wait is None else start + max_wait)
        self._worker.enqueue(waiter, loop)
        self._start_heartbeat(loop)
        try:
            async with asyncio.timeout(max_wait):
                await waiter.future
        except TimeoutError:
            self._worker.nudge()
            if not granted(waiter.future):
                raise QueueTimeoutError(
                    f"no quota within {max_wait:.3f}s", waited=loop.time() - start
                ) from None
            # granted as the time ran out: keep it rather than waste it
        except asyncio.CancelledError:
            self._worker.nudge()
            if granted(waiter.future):
                self._worker.pass_on()
            raise
        waited = loop.time() - start
        self._granted += 1
        self._waits.append(waited)
        return waited

    def rate_limited(self, retry_after: float | None) -> None:
        """Pause this key in every process for ``retry_after`` seconds (default: one quota period).

        The pause is taken as given: the requester already bounded it (CONTRACTS C3, one Retry-After cap,
        ``RetryPolicy.max_retry_after``), so the limiter keeps no second cap of its own. What Redis stores
        is still believed only up to ``max_pause`` by the acquire script (a guard against pauses written
        by older clients, not a cap on this one).
        """
        self._rate_limited += 1
        pause = (
            retry_after
            if retry_after is not None and retry_after >= 0 and math.isfinite(retry_after)
            else self._quota.period_seconds
        )
        loop = asyncio.get_running_loop()
        until = loop.time() + pause
        if until > self._worker.pause_until:
            self._worker.pause_until = until
            self._pauses += 1
        task = loop.create_task(self._push_pause(pause), name=f"assetpay pause {self._redis_key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def succeeded(self) -> None:
        """Report a non-429 answer (nothing to do: the Redis limiter does not slow down)."""

    @property
    def latency_margin(self) -> float:
        """J in seconds: the configured one (Redis does not measure it)."""
        return self._latency_margin

    def observe_wire(self, seconds: float) -> None:
        """Report a send-to-answer time (unused: the Redis limiter's J is the configured one)."""

    def stats(self) -> LimiterStats:
        """Counters of this process's view of the key."""
        waits = sorted(self._waits)
        now = self._now()
        rate = 1 / self._interval
        if self.sharing:
            rate = min(rate, 1 / self._outage.share_interval())
        pause_until = self._worker.pause_until
        return LimiterStats(
            merchant_id=self._key.merchant_id,
            group=self._key.group,
            granted=self._granted,
            queued=self._worker.queued(),
            waited_p50=percentile(waits, 50),
            waited_p99=percentile(waits, 99),
            rate_limited=self._rate_limited,
            pauses=self._pauses,
            current_rate=rate,
            paused_for=max(0.0, pause_until - now) if now is not None else 0.0,
        )

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the worker, the heartbeat and pending pause messages; queued calls get SessionClosedError.

        The process withdraws its announcement (one Redis call, best effort), so its peers count it out at
        their next heartbeat rather than when the announcement expires.
        """
        self._closed = True
        self._worker.fail_all(
            SessionClosedError("the Redis limiter was closed while this call waited")
        )
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
        tasks = [task for task in (self._worker.task, *self._tasks) if task is not None]
        self._worker.task = None
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
        # Calls past their deadline still lingering on their connections: none outlives the limiter.
        await asyncio.gather(*self._deadline.cancel(), return_exceptions=True)

    def abandon(self) -> None:
        """Cancel the worker and the heartbeat without waiting (for ``RedisLimiterRegistry.clear``)."""
        self._worker.fail_all(
            SessionClosedError("the Redis limiter was dropped while this call waited")
        )
        for task in (self._worker.task, self._beat, *self._tasks):
            if task is not None and not task.get_loop().is_closed():
                task.cancel()
        self._deadline.cancel()
        self._worker.task = self._beat = None

    def __repr__(self) -> str:
        state = "degraded" if self.degraded else "sharing" if self.sharing else "redis"
        return (
            f"<RedisLimiter key={self._redis_key!r} interval={self._interval:.3f}s "
            f"queued={len(self._worker.queue)} granted={self._granted} peers={self.peers} "
            f"state={state}>"
        )

    # -- internals -----------------------------------------------------------------------------------------

    def _now(self) -> float | None:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return None

    def _start_heartbeat(self, loop: asyncio.AbstractEventLoop) -> None:
        beat = self._beat
        if self._fallback_enabled and (beat is None or beat.done() or beat.get_loop().is_closed()):
            self._beat = loop.create_task(
                self._beat_loop(), name=f"assetpay heartbeat {self._peers_key}"
            )

    async def _check(self) -> None:
        """Check the connection before the first grant: a ping, and each script run once (no grant).

        An authentication, ACL, TLS or URL error surfaces here, before any quota is spent, as what redis-py
        raised (the worker turns it into a `ConfigurationError`).
        """
        await self._deadline.call(self._redis.ping())
        await self._script.acquire(self._redis_key, reserve_within_us=None)
        if self._fallback_enabled:
            # A harmless write: withdraws a member that is not there (ACL write permission on the key).
            await self._peers_script.leave(self._peers_key, self._member)

    async def _push_pause(self, pause: float) -> None:
        try:
            await self._script.pause(self._redis_key, pause)
        except OUTAGE_ERRORS as exc:
            logger.debug("could not share a pause of %s through Redis: %r", self._redis_key, exc)

    async def _beat_loop(self) -> None:
        """Announce this process to its peers every ``heartbeat`` seconds, and learn how many they are."""
        loop = asyncio.get_running_loop()
        # Closing cancels this task, but some redis-py releases (5.x) swallow a cancellation that arrives
        # during a command: the flag ends the loop all the same, so aclose() never waits on it forever.
        while not self._stopping():
            try:
                count = await self._peers_script.beat(self._peers_key, self._member)
            except Exception as exc:  # never let the heartbeat die: it also brings the worker back
                logger.debug("heartbeat of %s failed: %r", self._peers_key, exc)
                self._outage.heartbeat_failed()
            else:
                self._announced = True
                degraded = self._outage.degraded
                self._outage.peers_seen(loop.time(), count)
                if degraded:
                    self._worker.nudge()  # Redis answers: the worker tries it now
            if self._stopping():
                return
            await asyncio.sleep(self._heartbeat)

    def _stopping(self) -> bool:
        """Whether `aclose` began (read afresh after each await of the heartbeat)."""
        return self._closed
