"""The limiter interface the session talks to, and the process-wide registry of limiters.

One limiter exists per (merchant, route group) in a registry, so every session and client of a merchant in the
process shares it. The HTTP layer calls :meth:`RateLimiter.acquire` before every attempt (retries included),
:meth:`RateLimiter.rate_limited` after a 429 and :meth:`RateLimiter.succeeded` after any other answer.
"""

from __future__ import annotations

import asyncio
import enum
import time
from typing import Protocol, runtime_checkable

import attrs

from .errors import QueueTimeoutError
from .quota import Quota, RouteGroup

__all__ = [
    "LimiterKey",
    "LimiterPolicy",
    "LimiterRegistry",
    "LimiterStats",
    "RateLimiter",
    "default_registry",
]


class LimiterPolicy(enum.StrEnum):
    """How grants are spaced. See the docs' concepts page for the guarantee of each."""

    EVEN = "even"
    """Default: FIFO, no burst, one grant every (T + J) / (N - 1). Zero 429s against every windowed server."""
    STRICT = "strict"
    """One grant every T / N + J: for zero-burst policers (nginx limit_req without burst, GCRA with B = 1)."""
    BURST = "burst"
    """A token bucket of capacity N refilled at N / T: only for a server known to be such a bucket."""


@attrs.frozen
class LimiterKey:
    merchant_id: str
    group: RouteGroup


@attrs.frozen
class LimiterStats:
    """A snapshot of one (merchant, route group) limiter, for dashboards and tests."""

    merchant_id: str
    group: RouteGroup
    granted: int
    queued: int
    waited_p50: float
    waited_p99: float
    rate_limited: int
    pauses: int
    current_rate: float
    """Grants per second the limiter allows now (lower than the configured rate while slowed down)."""
    paused_for: float
    """Seconds until the current pause ends; 0 when not paused."""


@runtime_checkable
class RateLimiter(Protocol):
    """What the HTTP layer needs from a limiter."""

    async def acquire(self, *, max_wait: float | None = None) -> float:
        """Wait for a grant; return the seconds waited.

        Raises:
            QueueTimeoutError: no grant within ``max_wait`` seconds; nothing was spent.
        """
        ...

    def rate_limited(self, retry_after: float | None) -> None:
        """Report a 429: pause every waiter of this key (``retry_after`` seconds, or one window)."""
        ...

    def succeeded(self) -> None:
        """Report an answer that was not a 429 (lets a slowed-down limiter recover)."""
        ...

    def stats(self) -> LimiterStats:
        """Counters of this limiter."""
        ...


def _grant_interval(quota: Quota, policy: LimiterPolicy, latency_margin: float) -> float:
    n, t = quota.limit, quota.period_seconds
    if policy is LimiterPolicy.STRICT or n == 1:
        return t / n + latency_margin
    if policy is LimiterPolicy.BURST:
        return t / n
    return (t + latency_margin) / (n - 1)


class _SimpleLimiter:
    """Even spacing in arrival order. Placeholder until the full limiter lands."""

    def __init__(self, key: LimiterKey, quota: Quota, interval: float) -> None:
        self._key = key
        self._quota = quota
        self._interval = interval
        self._next = 0.0
        self._paused_until = 0.0
        self._granted = 0
        self._queued = 0
        self._rate_limited = 0
        self._pauses = 0

    async def acquire(self, *, max_wait: float | None = None) -> float:
        now = time.monotonic()
        slot = max(now, self._next, self._paused_until)
        wait = slot - now
        if max_wait is not None and wait > max_wait:
            raise QueueTimeoutError(
                f"no quota within {max_wait:.3f}s (next grant in {wait:.3f}s)", waited=0.0
            )
        self._next = slot + self._interval
        self._queued += 1
        try:
            await asyncio.sleep(wait)
        finally:
            self._queued -= 1
        self._granted += 1
        return wait

    def rate_limited(self, retry_after: float | None) -> None:
        self._rate_limited += 1
        pause = retry_after if retry_after is not None else self._quota.period_seconds
        until = time.monotonic() + pause
        if until > self._paused_until:
            self._paused_until = until
            self._pauses += 1

    def succeeded(self) -> None:
        pass

    def stats(self) -> LimiterStats:
        return LimiterStats(
            merchant_id=self._key.merchant_id,
            group=self._key.group,
            granted=self._granted,
            queued=self._queued,
            waited_p50=0.0,
            waited_p99=0.0,
            rate_limited=self._rate_limited,
            pauses=self._pauses,
            current_rate=1 / self._interval,
            paused_for=max(0.0, self._paused_until - time.monotonic()),
        )


class LimiterRegistry:
    """Limiters by (merchant, route group); the first configuration of a key wins."""

    def __init__(self) -> None:
        self._limiters: dict[LimiterKey, RateLimiter] = {}

    def get(
        self,
        merchant_id: str,
        group: RouteGroup,
        quota: Quota,
        *,
        policy: LimiterPolicy = LimiterPolicy.EVEN,
        latency_margin: float = 1.0,
    ) -> RateLimiter:
        key = LimiterKey(merchant_id, group)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = _SimpleLimiter(key, quota, _grant_interval(quota, policy, latency_margin))
            self._limiters[key] = limiter
        return limiter

    def clear(self) -> None:
        """Forget every limiter (tests; a new process starts empty anyway)."""
        self._limiters.clear()


_DEFAULT = LimiterRegistry()


def default_registry() -> LimiterRegistry:
    """The process-wide registry every session uses unless given another."""
    return _DEFAULT
