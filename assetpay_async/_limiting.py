"""The limiter interface the session talks to, and the process-wide registry of in-memory limiters.

One limiter exists per (merchant, route group) in a registry, so every session and client of a merchant in the
process shares it. The HTTP layer calls [`RateLimiter.acquire`][assetpay_async._limiting.RateLimiter.acquire]
before every attempt (retries included), ``rate_limited`` after a 429 and ``succeeded`` after any other answer.
``docs/limiter.md`` describes the guarantees.
"""

from __future__ import annotations

import logging
import threading

import attrs

from ._limiter_types import LimiterKey, LimiterPolicy, LimiterRegistry, LimiterStats, RateLimiter
from ._memory_limiter import Clock, MemoryLimiter
from ._pacing import pacing_for
from ._quota import Quota, RouteGroup

__all__ = [
    "Clock",
    "LimiterKey",
    "LimiterPolicy",
    "LimiterRegistry",
    "LimiterStats",
    "MemoryLimiter",
    "MemoryLimiterRegistry",
    "RateLimiter",
    "default_registry",
]

_log = logging.getLogger("assetpay_async.limiter")


@attrs.define
class _Entry:
    limiter: MemoryLimiter
    config: tuple[Quota, LimiterPolicy, float]
    """The configuration in force (the slowest asked for so far)."""
    warned: bool = False


class MemoryLimiterRegistry:
    """In-memory limiters by (merchant, route group), shared by every session that uses this registry.

    Implements [`LimiterRegistry`][assetpay_async._limiting.LimiterRegistry]. Safe to share between threads
    (each running its own event loop): they get the same limiter, which paces them together.

    When sessions of one merchant configure one key differently (quota, policy or latency margin), the
    slower pacing is kept: the limiter adopts it if it is slower than the one in force (queued calls keep
    their places) and ignores it otherwise, and a WARNING is logged the first time the key is asked with a
    differing configuration. Pacing at the faster one would draw 429s from the slower truth.

    Args:
        clock: the clock every limiter of this registry reads (default: the running loop's ``time()``).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, RouteGroup], _Entry] = {}

    def get(
        self,
        merchant_id: str,
        group: RouteGroup,
        quota: Quota,
        *,
        policy: LimiterPolicy = LimiterPolicy.EVEN,
        latency_margin: float = 1.0,
    ) -> RateLimiter:
        """The limiter of ``merchant_id`` for ``group``, created on first use.

        Args:
            merchant_id: the merchant whose quota is paced.
            group: the route group sharing the quota.
            quota: the quota this caller believes in.
            policy: the spacing policy this caller asks for.
            latency_margin: the J this caller asks for, in seconds.
        """
        config = (quota, policy, latency_margin)
        entry = self._entries.get((merchant_id, group))
        if entry is not None and entry.config == config:
            return entry.limiter  # the common case: a session asking again, once per attempt
        with self._lock:
            key = LimiterKey(merchant_id, RouteGroup(group))
            entry = self._entries.get((merchant_id, key.group))
            if entry is None:
                limiter = MemoryLimiter(
                    key, quota, policy=policy, latency_margin=latency_margin, clock=self._clock
                )
                entry = self._entries[(merchant_id, key.group)] = _Entry(limiter, config)
            elif entry.config != config:
                self._reconcile(entry, config)
            return entry.limiter

    def clear(self) -> None:
        """Forget every limiter (tests; a new process starts empty anyway)."""
        with self._lock:
            self._entries.clear()

    async def aclose(self) -> None:
        """Nothing to release: in-memory limiters hold no connection and no task."""

    @staticmethod
    def _reconcile(entry: _Entry, config: tuple[Quota, LimiterPolicy, float]) -> None:
        quota, policy, margin = config
        asked = pacing_for(quota, LimiterPolicy(policy), float(margin))
        current = entry.limiter.pacing
        slower = asked.interval > current.interval
        if slower:
            entry.limiter.adopt(asked)
            entry.config = config
        if entry.warned:
            return
        entry.warned = True
        key = entry.limiter.key
        _log.warning(
            "merchant %r %s: a session configured %d per %gs (policy %s, latency margin %gs: one grant "
            "every %.3fs) but the shared limiter paced one grant every %.3fs; keeping the slower one (%s); "
            "configure every session of a merchant alike",
            key.merchant_id,
            key.group,
            quota.limit,
            quota.period_seconds,
            LimiterPolicy(policy).value,
            margin,
            asked.interval,
            current.interval,
            "switching to the new one" if slower else "the current one",
        )


_DEFAULT = MemoryLimiterRegistry()


def default_registry() -> MemoryLimiterRegistry:
    """The process-wide registry every session uses unless given another."""
    return _DEFAULT
