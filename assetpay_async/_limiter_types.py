"""The limiter's value types and interface, shared by the in-memory and the shared (Redis) limiters.

Re-exported by `assetpay_async._limiting`; import them from there.
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

import attrs

from ._quota import Quota, RouteGroup

__all__ = [
    "LimiterKey",
    "LimiterPolicy",
    "LimiterRegistry",
    "LimiterStats",
    "RateLimiter",
    "ServerModel",
]


class LimiterPolicy(enum.StrEnum):
    """How grants are spaced. ``docs/limiter.md`` states the guarantee of each."""

    EVEN = "even"
    """Default: FIFO, no burst, one grant every (T + J) / (N - 1). Zero 429s against every windowed server."""
    STRICT = "strict"
    """One grant every T / N + J: for zero-burst policers (nginx limit_req without burst, GCRA with B = 1)."""


class ServerModel(enum.StrEnum):
    """How the server counts requests, when the user knows it. ``docs/limiter.md`` states what each risks.

    Declaring a model lets the even policy space grants (T + J) / N apart instead of (T + J) / (N - 1).
    """

    UNKNOWN = "unknown"
    """Default: any windowed server, the sliding window counter included; one grant in N is kept in reserve."""
    SLIDING_LOG = "sliding-log"
    """At most N counted requests in any window of T (``limits`` moving window, @nestjs/throttler)."""
    FIXED_WINDOW = "fixed-window"
    """At most N per window of T, windows aligned on the clock or anchored at a first hit."""
    BUCKET = "bucket"
    """A bucket of N tokens refilled at N per T (GCRA with burst N). Not a bucket of fewer tokens."""


@attrs.frozen
class LimiterKey:
    """What one limiter is shared by: a merchant's quota for one route group."""

    merchant_id: str
    group: RouteGroup


@attrs.frozen
class LimiterStats:
    """A snapshot of one (merchant, route group) limiter, for dashboards and tests."""

    merchant_id: str
    group: RouteGroup
    granted: int
    """Grants handed out since the limiter was created."""
    queued: int
    """Calls waiting for a grant now."""
    waited_p50: float
    """Median seconds a call waited for its grant, over the recent grants (the last 1,024)."""
    waited_p99: float
    """99th percentile of the same."""
    rate_limited: int
    """429s reported through `RateLimiter.rate_limited`."""
    pauses: int
    """Times a 429 started or extended a pause."""
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
        """Report a 429: pause every waiter of this key (``retry_after`` seconds, or one window T)."""
        ...

    def succeeded(self) -> None:
        """Report an answer that was not a 429 (a limiter may use it; the in-memory one recovers by time)."""
        ...

    def observe_wire(self, seconds: float) -> None:
        """Report the seconds from sending an attempt to its answer (a limiter may size its margin on it)."""
        ...

    def stats(self) -> LimiterStats:
        """Counters of this limiter."""
        ...


@runtime_checkable
class LimiterRegistry(Protocol):
    """Where a session gets its limiters: one per (merchant, route group), shared by whoever shares the registry.

    Implemented by [`MemoryLimiterRegistry`][assetpay_async._limiting.MemoryLimiterRegistry] (one process) and
    by the Redis registry of [`assetpay_async.redis_limiter`][assetpay_async.redis_limiter] (every process of
    a merchant).
    """

    def get(
        self,
        merchant_id: str,
        group: RouteGroup,
        quota: Quota,
        *,
        policy: LimiterPolicy,
        latency_margin: float,
    ) -> RateLimiter:
        """The limiter of ``merchant_id`` for ``group``, created on first use."""
        ...

    async def aclose(self) -> None:
        """Release what the registry holds (connections, workers). Idempotent."""
        ...
