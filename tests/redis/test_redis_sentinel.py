"""The Redis limiter behind Sentinel (a primary, a replica, three sentinels started by the test; slow).

A ``SENTINEL FAILOVER`` in the middle of a busy run: the limiters follow the new primary through the
``redis+sentinel://`` URL, meet a new server generation (its ``run_id``), and keep to their share until
every peer has settled, so the busiest window of grants stays under N.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Iterator

import pytest

from assetpay_async import Quota, RouteGroup
from assetpay_async.redis_limiter import RedisLimiter, RedisLimiterRegistry
from tests.support.redis_server import RedisSentinel, redis_server_binary

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]

QUOTA = Quota(20, 1.0)
MARGIN = 0.05
PROCESSES = 2


@pytest.fixture
def sentinel() -> Iterator[RedisSentinel]:
    with RedisSentinel(redis_server_binary()) as started:
        yield started


def busiest(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((bisect.bisect_right(times, t + window) - i for i, t in enumerate(times)), default=0)


async def test_a_sentinel_failover_keeps_every_window_under_n(sentinel: RedisSentinel) -> None:
    registries = [RedisLimiterRegistry(sentinel.url, timeout=0.5) for _ in range(PROCESSES)]
    got = [
        reg.get("merchant-1", RouteGroup.CANCEL_ITEM, QUOTA, latency_margin=MARGIN)
        for reg in registries
    ]
    lims = [lim for lim in got if isinstance(lim, RedisLimiter)]
    assert len(lims) == PROCESSES
    times: list[float] = []
    end = time.monotonic() + 6.0

    async def caller(lim: RedisLimiter) -> None:
        while time.monotonic() < end:
            await lim.acquire()
            times.append(time.monotonic())

    async def failover() -> float:
        await asyncio.sleep(2.0)
        await asyncio.to_thread(sentinel.failover)
        return time.monotonic()

    failing_over = asyncio.ensure_future(failover())
    await asyncio.gather(*(caller(lim) for lim in lims for _ in range(3)))
    failed_over_at = await failing_over

    assert sentinel.primary_port() == sentinel.replica
    assert any(t > failed_over_at for t in times), "no grant after the failover"
    assert busiest(times, QUOTA.period_seconds + MARGIN) <= QUOTA.limit
    for reg in registries:
        await reg.aclose()
