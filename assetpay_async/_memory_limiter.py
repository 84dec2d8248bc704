"""The in-memory limiter: one first-in-first-out queue per (merchant, route group), one timer, no burst.

How it works: a deque of futures, one per waiting call, in arrival order. A single timer is armed for the moment
the head of the queue is due (the pacing schedule of :mod:`._pacing`, pushed back by any pause); when it fires,
only the head is woken (no thundering herd). A call that finds the queue empty and the schedule due is granted
without waiting. Cancelled or timed-out waiters are left in the deque, marked done, and skipped when they reach
the head, so leaving the queue is O(1) and never strands the waiters behind.

The limiter belongs to no event loop: it binds to the loop of the call in progress and rebinds when a later
``asyncio.run`` uses it, so a process-wide registry survives several runs. It is not thread-safe: one running
loop at a time.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable

from ._errors import InvalidRequestError, QueueTimeoutError
from ._limiter_types import LimiterKey, LimiterPolicy, LimiterStats
from ._pacing import Pacing, grant_time, pacing_for, percentile, recovered, slowed
from ._quota import Quota

__all__ = ["Clock", "MemoryLimiter"]

Clock = Callable[[], float]
"""A zero-argument callable returning seconds on a clock that does not go backwards."""

_log = logging.getLogger("assetpay_async.limiter")

_RECENT_WAITS = 1024
"""How many recent waits the p50/p99 statistics look at."""
_EXPIRED = -1
"""The result a waiter's future gets when its ``max_wait`` ran out (grants are numbered from 1)."""


class MemoryLimiter:
    """Paces one merchant's quota for one route group inside this process.

    Every :class:`~assetpay_async.AssetPaySession` of the merchant shares one instance through the
    :class:`~assetpay_async._limiting.LimiterRegistry`; construct one yourself only to pace other code.

    Args:
        key: the (merchant, route group) this limiter paces; used in statistics, logs and errors.
        quota: the server's quota, N requests per T seconds.
        policy: how grants are spaced (see :class:`~assetpay_async.LimiterPolicy`).
        latency_margin: J, the seconds of spread between a grant here and the server counting the request.
        clock: where time comes from; the running event loop's ``time()`` by default.

    Example:
        >>> from assetpay_async._limiting import LimiterKey, MemoryLimiter
        >>> from assetpay_async._quota import Quota, RouteGroup
        >>> limiter = MemoryLimiter(LimiterKey("m-1", RouteGroup.CANCEL_ITEM), Quota(60, 60.0))
        >>> round(limiter.pacing.interval, 4)  # (60 + 1) / (60 - 1) seconds between grants
        1.0339
    """

    __slots__ = (
        "_clock",
        "_fraction",
        "_granted",
        "_key",
        "_last_now",
        "_loop",
        "_pacing",
        "_paused_until",
        "_pauses",
        "_queued",
        "_rate_limited",
        "_seq",
        "_seq_at_pause",
        "_tat",
        "_timer",
        "_timer_when",
        "_undo_tat",
        "_waiters",
        "_waits",
    )

    def __init__(
        self,
        key: LimiterKey,
        quota: Quota,
        *,
        policy: LimiterPolicy | str = LimiterPolicy.EVEN,
        latency_margin: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        if not (isinstance(latency_margin, int | float) and 0 <= latency_margin < math.inf):
            raise InvalidRequestError("latency_margin must be a finite number of seconds >= 0")
        self._key = key
        self._pacing = pacing_for(quota, LimiterPolicy(policy), float(latency_margin))
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: collections.deque[asyncio.Future[int]] = collections.deque()
        self._queued = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = math.inf
        self._tat = -math.inf
        self._paused_until = -math.inf
        self._last_now = -math.inf
        self._fraction = 1.0
        self._seq = 0
        self._seq_at_pause: int | None = None
        self._undo_tat: float | None = None
        self._granted = 0
        self._rate_limited = 0
        self._pauses = 0
        self._waits: collections.deque[float] = collections.deque(maxlen=_RECENT_WAITS)

    # -- the RateLimiter interface ------------------------------------------------------------------

    async def acquire(self, *, max_wait: float | None = None) -> float:
        """Wait for a grant, behind every call that arrived earlier; return the seconds waited.

        Cancelling the waiting task spends nothing; a task cancelled just after its grant hands it on.

        Args:
            max_wait: the longest this call may wait. When its place in the queue already makes that
                impossible it fails at once; otherwise it gives up when the time runs out.

        Raises:
            QueueTimeoutError: no grant within ``max_wait``; nothing was spent.
            InvalidRequestError: ``max_wait`` is negative or not a number.
        """
        if max_wait is not None and not max_wait >= 0:
            raise InvalidRequestError(f"max_wait must be None or >= 0 seconds, got {max_wait!r}")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        start = self._now()
        if self._queued == 0 and start >= self._head_due():
            self._grant(start)
            self._waits.append(0.0)
            return 0.0
        if max_wait is not None:
            due = grant_time(
                self._queued,
                now=start,
                tat=self._tat,
                paused_until=self._paused_until,
                interval=self._interval(),
                burst=self._pacing.burst,
            )
            if due - start > max_wait:
                raise QueueTimeoutError(
                    f"no {self._key.group} quota for merchant {self._key.merchant_id!r} within "
                    f"{max_wait:.3f}s: {self._queued} call(s) ahead, grant expected in {due - start:.3f}s",
                    waited=0.0,
                )
        fut: asyncio.Future[int] = loop.create_future()
        self._waiters.append(fut)
        self._queued += 1
        expiry = None if max_wait is None else loop.call_later(max_wait, self._expire, fut)
        self._arm()
        try:
            seq = await fut
        except asyncio.CancelledError:
            if fut.cancelled():
                self._forget_one()
            elif (seq := fut.result()) != _EXPIRED:
                self._undo_grant(seq)
            raise
        finally:
            if expiry is not None:
                expiry.cancel()
        waited = self._now() - start
        if seq == _EXPIRED:
            raise QueueTimeoutError(
                f"no {self._key.group} quota for merchant {self._key.merchant_id!r} "
                f"within {max_wait:.3f}s",
                waited=waited,
            )
        self._waits.append(waited)
        return waited

    def rate_limited(self, retry_after: float | None) -> None:
        """Report a 429: pause every waiter of this key, and slow down if no pause explains it.

        The pause lasts ``retry_after`` seconds (one window T when None or not finite); its end only moves
        forward. A 429 that arrives while a pause is in force, or before any grant since the last pause
        began, belongs to that episode; any other one multiplies the rate by ``SLOWDOWN_FACTOR``.
        """
        now = self._now()
        self._rate_limited += 1
        explained = now < self._paused_until or self._seq_at_pause == self._seq
        if not explained:
            before = self._fraction
            self._fraction = slowed(before)
            if self._fraction != before:
                _log.debug(
                    "limiter %s/%s: 429 despite pacing, slowing to %.4f grants/s (%.0f%% of configured)",
                    self._key.merchant_id,
                    self._key.group,
                    self._current_rate(),
                    100 * self._fraction,
                )
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

    def succeeded(self) -> None:
        """Report an answer that was not a 429: a slowed-down limiter gains back ``1 / N`` of its rate."""
        if self._fraction >= 1.0:
            return
        self._fraction = recovered(self._fraction, self._pacing.limit)
        if self._fraction >= 1.0:
            _log.debug(
                "limiter %s/%s: recovered to the configured %.4f grants/s",
                self._key.merchant_id,
                self._key.group,
                self._pacing.rate,
            )
        if self._queued:
            self._arm()

    def stats(self) -> LimiterStats:
        """A snapshot of this limiter's counters."""
        waits = sorted(self._waits)
        return LimiterStats(
            merchant_id=self._key.merchant_id,
            group=self._key.group,
            granted=self._granted,
            queued=self._queued,
            waited_p50=percentile(waits, 50),
            waited_p99=percentile(waits, 99),
            rate_limited=self._rate_limited,
            pauses=self._pauses,
            current_rate=self._current_rate(),
            paused_for=max(0.0, self._paused_until - self._now()),
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

    def adopt(self, pacing: Pacing) -> None:
        """Pace to ``pacing`` from now on; queued calls keep their places."""
        self._pacing = pacing
        if self._queued:
            self._arm()

    def __repr__(self) -> str:
        paused = max(0.0, self._paused_until - self._now()) if self._loop is not None else 0.0
        return (
            f"<MemoryLimiter {self._key.merchant_id!r}/{self._key.group} "
            f"every={self._interval():.4g}s burst={self._pacing.burst} queued={self._queued} "
            f"granted={self._granted} paused_for={paused:.3g}s>"
        )

    # -- internals ----------------------------------------------------------------------------------

    def _now(self) -> float:
        if self._clock is not None:
            now = self._clock()
        else:
            try:
                now = asyncio.get_running_loop().time()
            except RuntimeError:
                now = self._loop.time() if self._loop is not None else time.monotonic()
        if now < self._last_now:
            # The clock went back (a new virtual-time loop starts at 0): count the jump as no time at all,
            # so what was due in d seconds is still due in d seconds.
            shift = now - self._last_now
            self._tat += shift
            self._paused_until += shift
            self._timer_when += shift
        self._last_now = now
        return now

    def _interval(self) -> float:
        return self._pacing.interval / self._fraction

    def _current_rate(self) -> float:
        return self._fraction / self._pacing.interval

    def _head_due(self) -> float:
        """When the head of the queue may be granted."""
        return max(self._paused_until, self._tat - (self._pacing.burst - 1) * self._interval())

    def _grant(self, now: float) -> int:
        self._undo_tat = self._tat
        self._tat = max(self._tat, now) + self._interval()
        self._seq += 1
        self._granted += 1
        return self._seq

    def _undo_grant(self, seq: int) -> None:
        """Give back a grant whose task was cancelled before it could use it, if it was the latest one."""
        if seq != self._seq or self._undo_tat is None:
            return  # a later grant was built on it: leave it spent, which only errs on the slow side
        self._tat, self._undo_tat = self._undo_tat, None
        self._granted -= 1
        if self._queued:
            self._arm()

    def _forget_one(self) -> None:
        """A queued waiter left (cancelled or timed out); its future stays in the deque, marked done."""
        self._queued -= 1
        if self._queued == 0:
            self._arm()

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        old = self._loop
        if old is not None and old.is_running():
            raise RuntimeError(
                f"limiter {self._key.merchant_id!r}/{self._key.group} is in use by another running event "
                "loop; a limiter serves one event loop at a time"
            )
        # Waiters of a finished loop can never be woken; asyncio.run has cancelled them already.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_when = math.inf
        self._waiters.clear()
        self._queued = 0
        self._loop = loop

    def _arm(self) -> None:
        """Make sure the timer fires no later than the head is due (or drop it when nobody waits)."""
        if self._queued == 0:
            self._waiters.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
                self._timer_when = math.inf
            return
        due = self._head_due()
        if self._timer is not None:
            if self._timer_when <= due:
                return  # fires early enough; _wake re-arms for the rest
            self._timer.cancel()
        assert self._loop is not None  # noqa: S101 - a queued waiter implies a bound loop
        self._timer = self._loop.call_later(max(0.0, due - self._now()), self._wake)
        self._timer_when = due

    def _wake(self) -> None:
        """Grant the head of the queue if it is due (several when a burst allows), then re-arm."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_when = math.inf
        now = self._now()
        waiters = self._waiters
        while waiters:
            head = waiters[0]
            if head.done():
                waiters.popleft()
                continue
            if now < self._head_due():
                break
            waiters.popleft()
            self._queued -= 1
            head.set_result(self._grant(now))
        self._arm()

    def _expire(self, fut: asyncio.Future[int]) -> None:
        if fut.done():
            return
        self._wake()  # a grant due at this very moment goes out first
        if not fut.done():
            fut.set_result(_EXPIRED)
            self._forget_one()
