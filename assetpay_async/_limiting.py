"""The limiter interface the session talks to, and the process-wide registry of limiters.

One limiter exists per (merchant, route group) in a registry, so every session and client of a merchant in the
process shares it. The HTTP layer calls :meth:`RateLimiter.acquire` before every attempt (retries included),
:meth:`RateLimiter.rate_limited` after a 429 and :meth:`RateLimiter.succeeded` after any other answer.
``docs/limiter.md`` describes the guarantees.
"""

from __future__ import annotations

import logging

from ._limiter_types import LimiterKey, LimiterPolicy, LimiterStats, RateLimiter
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
    "RateLimiter",
    "default_registry",
]

_log = logging.getLogger("assetpay_async.limiter")

_Config = tuple[Quota, LimiterPolicy, float]


class LimiterRegistry:
    """Limiters by (merchant, route group), shared by every session that uses this registry.

    When sessions of one merchant configure one key differently (quota, policy or latency margin), the
    slower configuration wins: the limiter adopts it, queued calls keep their places, and a WARNING is
    logged once per differing configuration. The faster one would draw 429s from the slower truth.

    Args:
        clock: the clock every limiter of this registry reads (default: the running loop's ``time()``).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock
        self._limiters: dict[LimiterKey, MemoryLimiter] = {}
        self._configs: dict[LimiterKey, set[_Config]] = {}
        """Every configuration each key has been asked with (a differing one is reconciled once)."""
        self._known: dict[tuple[str, RouteGroup, Quota, LimiterPolicy, float], MemoryLimiter] = {}
        """Limiters by the exact arguments of :meth:`get`: the lookup of every attempt."""

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
        asked = (merchant_id, group, quota, policy, latency_margin)
        limiter = self._known.get(
            asked
        )  # the common case: a session asking again, once per attempt
        if limiter is None:
            key = LimiterKey(merchant_id, RouteGroup(group))
            config: _Config = (quota, LimiterPolicy(policy), float(latency_margin))
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = MemoryLimiter(
                    key, quota, policy=config[1], latency_margin=config[2], clock=self._clock
                )
                self._limiters[key] = limiter
                self._configs[key] = {config}
            elif config not in self._configs[key]:
                self._configs[key].add(config)
                self._reconcile(limiter, config)
            self._known[asked] = limiter
        return limiter

    def clear(self) -> None:
        """Forget every limiter (tests; a new process starts empty anyway)."""
        self._limiters.clear()
        self._configs.clear()
        self._known.clear()

    @staticmethod
    def _reconcile(limiter: MemoryLimiter, config: _Config) -> None:
        quota, policy, margin = config
        asked = pacing_for(quota, policy, margin)
        current = limiter.pacing
        if asked == current:
            return
        slower = asked.slower_than(current)
        if slower:
            limiter.adopt(asked)
        key = limiter.key
        _log.warning(
            "merchant %r %s: a session configured %d per %gs (policy %s, latency margin %gs: one grant "
            "every %.3fs, burst %d) but the shared limiter paces one grant every %.3fs, burst %d; "
            "the slower configuration wins: %s",
            key.merchant_id,
            key.group,
            quota.limit,
            quota.period_seconds,
            policy,
            margin,
            asked.interval,
            asked.burst,
            current.interval,
            current.burst,
            "switching to the new one" if slower else "keeping the current one",
        )


_DEFAULT = LimiterRegistry()


def default_registry() -> LimiterRegistry:
    """The process-wide registry every session uses unless given another."""
    return _DEFAULT
