"""The in-memory limiter: one schedule per (merchant, route group), a first-in-first-out queue per event loop.

The schedule (next grant due, pause, slowdown, margin) is shared by every event loop of the process and guarded
by a lock. Each loop has its own queue: a deque of futures in arrival order and one timer armed for when the
head is due; only the head is woken. Cancelled or timed-out waiters stay in the deque, marked done, and are
skipped at the head (leaving is O(1)). A call that finds its loop's queue empty and the schedule due is granted
at once, without the lock while one loop alone uses the limiter (``_limiter_loops``).

Several loops at once (one per thread): never more than the schedule allows in all, FIFO within each loop; a
grant handed back wakes the other loops' queues with ``call_soon_threadsafe``; a finished loop leaves nothing.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import threading
import time
from collections.abc import Callable

from ._errors import ConfigurationError, QueueTimeoutError
from ._limiter_loops import (
    EXPIRED,
    LoopQueue,
    LoopWaker,
    Queued,
    handshake,
    may_go_solo,
    queue_for,
)
from ._limiter_types import LimiterKey, LimiterPolicy, LimiterStats, ServerModel
from ._pacing import (
    MEASURED,
    MarginEstimator,
    Pacing,
    PacingConfig,
    checked_config,
    combined,
    grant_time,
    level_at,
    percentile,
    slowed,
)
from ._quota import Quota

__all__ = ["Clock", "MemoryLimiter"]

Clock = Callable[[], float]
"""A zero-argument callable returning seconds on a clock that does not go backwards."""

_log = logging.getLogger("assetpay_async.limiter")

_RECENT_WAITS = 1024
"""How many recent waits the p50/p99 statistics look at."""


class MemoryLimiter(LoopWaker):
    """Paces one merchant's quota for one route group inside this process.

    Every [`AssetPaySession`][assetpay_async.AssetPaySession] of the merchant shares one instance through the
    [`MemoryLimiterRegistry`][assetpay_async._limiting.MemoryLimiterRegistry]; construct one yourself only to
    pace other code. It may be used from several event loops at once (one per thread).

    Args:
        key: the (merchant, route group) this limiter paces; used in statistics, logs and errors.
        quota: the server's quota, N requests per T seconds.
        policy: how grants are spaced (see [`LimiterPolicy`][assetpay_async.LimiterPolicy]).
        latency_margin: J, the seconds of spread between a grant here and the server counting the request,
            or ``"measured"`` (default): J follows the send-to-answer times told to ``observe_wire``.
        server_model: how the server counts, when known (see [`ServerModel`][assetpay_async.ServerModel]).
        clock: where time comes from; the running event loop's ``time()`` by default.

    Raises:
        ConfigurationError: a bad ``policy``, ``latency_margin`` or ``server_model``.

    Example:
        >>> from assetpay_async._limiting import LimiterKey, MemoryLimiter
        >>> from assetpay_async._quota import Quota, RouteGroup
        >>> limiter = MemoryLimiter(LimiterKey("m-1", RouteGroup.CANCEL_ITEM), Quota(60, 60.0))
        >>> round(limiter.pacing.interval, 4)  # (60 + 1) / (60 - 1) seconds between grants
        1.0339
    """

    __slots__ = (
        "_clean_since",
        "_clock",
        "_config",
        "_estimator",
        "_evidence_until",
        "_fraction",
        "_handshakes",
        "_key",
        "_last_base",
        "_last_now",
        "_lock",
        "_margin",
        "_pacing",
        "_paused_until",
        "_pauses",
        "_queues",
        "_rate_limited",
        "_recent",
        "_seq",
        "_seq_at_pause",
        "_solo",
        "_users",
        "_waits",
    )

    def __init__(
        self,
        key: LimiterKey,
        quota: Quota,
        *,
        policy: LimiterPolicy | str = LimiterPolicy.EVEN,
        latency_margin: float | str = MEASURED,
        server_model: ServerModel | str = ServerModel.UNKNOWN,
        clock: Clock | None = None,
    ) -> None:
        self._key = key
        self._config = checked_config(quota, policy, latency_margin, server_model)
        self._estimator = MarginEstimator(half_life=quota.period_seconds)
        self._margin = self._estimator.value(0.0)  # the measured J of the pacing (NaN: recompute)
        self._pacing = self._config.pacing(self._margin)
        self._last_base = -math.inf
        self._clock = clock
        self._lock = threading.Lock()
        self._queues: dict[asyncio.AbstractEventLoop, LoopQueue] = {}
        self._recent: LoopQueue | None = None
        self._solo: asyncio.AbstractEventLoop | None = None
        """The one loop that grants without the lock (see ``_limiter_loops``), if any."""
        self._handshakes = 0
        self._users: list[asyncio.AbstractEventLoop] = []
        """The loops that used this limiter and have not closed (known when none is solo)."""
        """Hand-overs under way from a solo loop: no loop becomes solo meanwhile."""
        self._tat = -math.inf
        self._paused_until = -math.inf
        self._last_now = -math.inf
        self._fraction = 1.0
        self._clean_since = -math.inf
        self._evidence_until = -math.inf
        self._seq = 0
        self._seq_at_pause: int | None = None
        self._undo_tat: float | None = None
        self._granted = 0
        self._rate_limited = 0
        self._pauses = 0
        self._waits: collections.deque[float] = collections.deque(maxlen=_RECENT_WAITS)

    # -- the RateLimiter interface ------------------------------------------------------------------

    async def acquire(self, *, max_wait: float | None = None) -> float:
        """Wait for a grant, behind every call of this event loop that arrived earlier; return the seconds waited.

        Cancelling the waiting task spends nothing; a task cancelled just after its grant hands it on.

        Args:
            max_wait: the longest this call may wait. When its place in the queue already makes that
                impossible it fails at once; otherwise it gives up when the time runs out.

        Raises:
            QueueTimeoutError: no grant within ``max_wait``; nothing was spent.
            ConfigurationError: ``max_wait`` is negative or not a number.
        """
        if max_wait is not None and not max_wait >= 0:
            raise ConfigurationError(f"max_wait must be None or >= 0 seconds, got {max_wait!r}")
        loop = asyncio.get_running_loop()
        queue = self._recent
        if self._solo is loop and queue is not None and queue.loop is loop and not queue.queued:
            # The fast path, without the lock (only this loop touches the schedule, see
            # _limiter_loops): nobody of this loop waits and the slot is free.
            now = loop.time()
            tat = self._tat
            if now >= tat and now >= self._last_now and now >= self._paused_until:
                if self._fraction >= 1.0:  # _grant(now), inlined: no slowdown in force
                    self._last_now = self._last_base = now
                    self._undo_tat, self._tat = tat, now + self._pacing.interval
                    self._seq += 1
                    self._granted += 1
                else:
                    self._last_now = now
                    self._grant(now)
                self._waits.append(0.0)
                return 0.0
        with self._lock:
            queued = self._enqueue(loop, max_wait)
        if queued is None:
            return 0.0
        return await self._wait(*queued, max_wait=max_wait)

    def _enqueue(self, loop: asyncio.AbstractEventLoop, max_wait: float | None) -> Queued | None:
        """Grant at once (None) or queue a future (and name the solo loop to hand over from); lock held."""
        queue = self._recent
        if queue is None or queue.loop is not loop:
            queue = self._recent = queue_for(self._queues, loop)
        solo = self._solo
        handover = solo if solo is not loop else None
        alone = solo is loop or may_go_solo(self._users, loop)  # records all but the solo
        if solo is None and alone and not self._handshakes and self._clock is None:
            self._solo = loop
        start = self._now()
        if handover is None and queue.queued == 0 and start >= self._head_due():
            self._grant(start)  # an idle limiter: the schedule starts afresh from now
            self._waits.append(0.0)
            return None
        if max_wait is not None:
            expected = grant_time(
                queue.queued,
                now=start,
                tat=self._tat,
                paused_until=self._paused_until,
                interval=self._pacing.interval,  # the fastest it could go: fail early only if hopeless
            )
            if expected - start > max_wait:
                raise QueueTimeoutError(
                    f"no {self._key.group} quota for merchant {self._key.merchant_id!r} within "
                    f"{max_wait:.3f}s: {queue.queued} call(s) ahead, grant expected in "
                    f"{expected - start:.3f}s at the earliest",
                    waited=0.0,
                )
        if handover is not None:
            # No lock-free grant from now on, and no grant at all until the last one is over: the caller
            # waits for the solo loop to answer, queued in its place meanwhile.
            self._solo = None
            self._handshakes += 1
        fut: asyncio.Future[int] = loop.create_future()
        queue.waiters.append(fut)
        queue.queued += 1
        expiry = None if max_wait is None else loop.call_later(max_wait, self._expire, queue, fut)
        self._arm(queue)
        return queue, fut, start, expiry, handover

    async def _wait(
        self,
        queue: LoopQueue,
        fut: asyncio.Future[int],
        start: float,
        expiry: asyncio.TimerHandle | None,
        solo: asyncio.AbstractEventLoop | None,
        *,
        max_wait: float | None,
    ) -> float:
        """Await a queued future to its grant, its expiry or a cancellation (after a hand-over)."""
        try:
            if solo is not None:
                try:
                    await handshake(solo)
                finally:
                    with self._lock:
                        self._handshakes -= 1
                        self._arm(queue)
                        self._poke_others(queue)
            seq = await fut
        except asyncio.CancelledError:
            with self._lock:
                if not fut.done():
                    fut.cancel()
                if fut.cancelled():
                    self._forget_one(queue)
                elif (seq := fut.result()) != EXPIRED:
                    self._undo_grant(seq, queue)
            raise
        finally:
            if expiry is not None:
                expiry.cancel()
        with self._lock:
            waited = self._now() - start
            if seq != EXPIRED:
                self._waits.append(waited)
        if seq == EXPIRED:
            raise QueueTimeoutError(
                f"no {self._key.group} quota for merchant {self._key.merchant_id!r} "
                f"within {max_wait:.3f}s",
                waited=waited,
            )
        return waited

    def rate_limited(self, retry_after: float | None) -> None:
        """Report a 429: pause every waiter of this key; slow down only on repeated evidence.

        The pause lasts ``retry_after`` seconds (one window T when None or not finite); its end only moves
        forward. A 429 that arrives while a pause is in force, or before any grant since the last pause
        began, belongs to that episode and changes nothing else. Any other one is evidence that someone
        else spends the quota: when it comes within one window of the end of the previous such episode,
        the rate is halved (never below 1/8); every whole window without new evidence doubles it back.
        """
        with self._lock:
            now = self._now()
            self._rate_limited += 1
            explained = now < self._paused_until or self._seq_at_pause == self._seq
            pause = retry_after if retry_after is not None and math.isfinite(retry_after) else None
            until = now + (self._pacing.window if pause is None else max(0.0, pause))
            if until > self._paused_until:
                self._paused_until = until
                self._seq_at_pause = self._seq
                self._pauses += 1
                _log.debug(
                    "limiter %s/%s: paused for %.3fs after a 429 (Retry-After %s)",
                    self._key.merchant_id,
                    self._key.group,
                    until - now,
                    "absent" if retry_after is None else f"{retry_after:g}",
                )
            if explained:
                return
            level = self._level(now)
            if now < self._evidence_until:
                level = slowed(level)
                _log.debug(
                    "limiter %s/%s: a second 429 within a window despite pacing, slowing to %.4f "
                    "grants/s (%.0f%% of configured) for a window after the pause",
                    self._key.merchant_id,
                    self._key.group,
                    level / self._pacing.interval,
                    100 * level,
                )
            self._fraction = level
            self._clean_since = max(self._paused_until, now)
            self._evidence_until = self._clean_since + self._pacing.window

    def succeeded(self) -> None:
        """Report an answer that was not a 429. Nothing to do here: a slowdown recovers with time."""

    def observe_wire(self, seconds: float) -> None:
        """Report one attempt's send-to-answer time: a measured J follows it (a fixed one ignores it).

        J grows at once (the next grant moves to one new interval after the latest, even if scheduled) and
        shrinks slowly (see [`MarginEstimator`][assetpay_async._pacing.MarginEstimator]).
        """
        if self._config.margin is not None or not seconds >= 0 or seconds == math.inf:
            return
        with self._lock:
            now = self._now()
            grew = self._estimator.observe(seconds, now)
            margin = self._estimator.value(now)
            if margin == self._margin:
                return  # the common case: J unchanged (at its floor, say)
            pacing = self._config.pacing(margin)
            self._pacing, self._margin = pacing, margin
            if grew and self._last_base > -math.inf:
                self._tat = max(self._tat, self._last_base + pacing.interval / self._level(now))

    @property
    def latency_margin(self) -> float:
        """J in force now, in seconds: the fixed ``latency_margin``, or the measured one."""
        with self._lock:
            return self._config.margin_at(self._estimator.value(self._now()))

    def stats(self) -> LimiterStats:
        """A snapshot of this limiter's counters."""
        with self._lock:
            now = self._now()
            waits = sorted(self._waits)
            return LimiterStats(
                merchant_id=self._key.merchant_id,
                group=self._key.group,
                granted=self._granted,
                queued=sum(q.queued for q in self._queues.values()),
                waited_p50=percentile(waits, 50),
                waited_p99=percentile(waits, 99),
                rate_limited=self._rate_limited,
                pauses=self._pauses,
                current_rate=self._level(now) / self._pacing.interval,
                paused_for=max(0.0, self._paused_until - now),
            )

    # -- configuration ------------------------------------------------------------------------------

    @property
    def key(self) -> LimiterKey:
        """The (merchant, route group) this limiter paces."""
        return self._key

    @property
    def pacing(self) -> Pacing:
        """The spacing of grants at the full configured rate."""
        return self._pacing

    @property
    def config(self) -> PacingConfig:
        """What this limiter was asked: quota, policy, J (None: measured) and server model."""
        return self._config

    def adopt(self, config: PacingConfig) -> bool:
        """Pace by ``config`` from the next grant on if it is slower now; queued calls keep their places.

        A fixed J beside a measured one becomes its floor ([`combined`][assetpay_async._pacing.combined]).
        Returns whether the pacing changed.
        """
        with self._lock:
            measured = self._estimator.value(self._now())
            adopted = combined(self._config, config, measured)
            if adopted is None:
                return False
            self._config, self._pacing, self._margin = adopted, adopted.pacing(measured), math.nan
            return True

    def __repr__(self) -> str:
        with self._lock:
            now = self._now()
            queued = sum(q.queued for q in self._queues.values())
            return (
                f"<MemoryLimiter {self._key.merchant_id!r}/{self._key.group} "
                f"every={self._pacing.interval / self._level(now):.4g}s queued={queued} "
                f"granted={self._granted} paused_for={max(0.0, self._paused_until - now):.3g}s>"
            )

    # -- internals: every method below runs with self._lock held -------------------------------------

    def _now(self) -> float:
        if self._clock is not None:
            now = self._clock()
        else:
            try:
                now = asyncio.get_running_loop().time()
            except RuntimeError:
                now = self._recent.loop.time() if self._recent is not None else time.monotonic()
        if now < self._last_now:
            # The clock went back (a new virtual-time loop starts at 0): count the jump as no time at all,
            # so what was due in d seconds is still due in d seconds.
            shift = now - self._last_now
            self._tat += shift
            self._last_base += shift
            self._paused_until += shift
            self._clean_since += shift
            self._evidence_until += shift
            for queue in self._queues.values():
                queue.timer_when += shift
        self._last_now = now
        return now

    def _level(self, t: float) -> float:
        """The fraction of the configured rate in force at ``t``."""
        return level_at(self._fraction, self._clean_since, self._pacing.window, t)

    def _head_due(self) -> float:
        """When the head of a queue may be granted (never while a hand-over is under way)."""
        return math.inf if self._handshakes else max(self._paused_until, self._tat)

    def _grant(self, base: float) -> int:
        """Hand out the grant due at ``base``; the next is due one interval (at the rate in force) later."""
        self._undo_tat = self._tat
        self._last_base = base
        interval = self._pacing.interval
        self._tat = base + (interval if self._fraction >= 1.0 else interval / self._level(base))
        self._seq += 1
        self._granted += 1
        return self._seq
