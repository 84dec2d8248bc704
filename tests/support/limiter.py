"""Builders shared by the limiter tests: limiters on virtual time and a recorder of grant times."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import attrs

from assetpay_async._limiting import LimiterKey, LimiterPolicy, MemoryLimiter, RateLimiter
from assetpay_async._quota import Quota, RouteGroup

KEY = LimiterKey("merchant-1", RouteGroup.CANCEL_ITEM)


def make_limiter(
    limit: int = 60,
    period: float = 60.0,
    *,
    policy: LimiterPolicy = LimiterPolicy.EVEN,
    latency_margin: float = 1.0,
) -> MemoryLimiter:
    """A limiter for ``limit`` per ``period`` seconds, reading the running loop's clock."""
    return MemoryLimiter(KEY, Quota(limit, period), policy=policy, latency_margin=latency_margin)


@attrs.define
class Grants:
    """Grant times and names in the order the calls got them."""

    times: list[float] = attrs.field(factory=list)
    names: list[str] = attrs.field(factory=list)


async def acquire_as(limiter: RateLimiter, name: str, grants: Grants, **kwargs: float) -> float:
    """Acquire and record ``name`` with the loop time of the grant."""
    waited = await limiter.acquire(**kwargs)
    grants.times.append(asyncio.get_running_loop().time())
    grants.names.append(name)
    return waited


def max_in_window(times: Sequence[float], width: float) -> int:
    """The largest number of ``times`` in any half-open window ``[a, a + width)``."""
    ordered = sorted(times)
    best = 0
    j = 0
    for i, start in enumerate(ordered):
        j = max(j, i)
        while j < len(ordered) and ordered[j] < start + width:
            j += 1
        best = max(best, j - i)
    return best


def gaps(times: Sequence[float]) -> list[float]:
    """Seconds between consecutive times."""
    return [b - a for a, b in itertools.pairwise(times)]


def pending_timers(loop: asyncio.AbstractEventLoop) -> int:
    """Timers the loop holds (asyncio keeps them in ``_scheduled``; cancelled ones leave lazily)."""
    return sum(not handle.cancelled() for handle in loop._scheduled)  # type: ignore[attr-defined]
