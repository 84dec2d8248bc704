"""A server that changed under busy processes, with no call failing: the generation id (slow, real server).

``redis-server`` is SIGKILLed and restarted empty on the same socket in a few tens of milliseconds; redis-py's
retries hide it, so no limiter sees an outage. Slots reserved on the old server were confirmed on the new one
next to fresh grants (21 in a window of N = 20, measured before the generation id). Every acquire now
returns the server's ``run_id``; a limiter that meets a new one voids its slot and settles as after an
outage.
"""

from __future__ import annotations

import asyncio
import bisect
import time

import pytest

from assetpay_async import Quota, RouteGroup
from assetpay_async.redis_limiter import RedisLimiter, RedisLimiterRegistry
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]

QUOTA = Quota(20, 1.0)
MARGIN = 0.05
PROCESSES = 3


def busiest(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((bisect.bisect_right(times, t + window) - i for i, t in enumerate(times)), default=0)


async def test_a_server_restarted_empty_without_a_failed_call_keeps_every_window_under_n(
    own_redis_server: RedisServer,
) -> None:
    registries = [RedisLimiterRegistry(own_redis_server.url) for _ in range(PROCESSES)]
    got = [
        reg.get("merchant-1", RouteGroup.CANCEL_ITEM, QUOTA, latency_margin=MARGIN)
        for reg in registries
    ]
    lims = [lim for lim in got if isinstance(lim, RedisLimiter)]
    assert len(lims) == PROCESSES
    times: list[float] = []
    end = time.monotonic() + 5.0

    async def caller(lim: RedisLimiter) -> None:
        while time.monotonic() < end:
            await lim.acquire()
            times.append(time.monotonic())

    async def restart() -> None:
        await asyncio.sleep(2.0)
        await asyncio.to_thread(own_redis_server.kill)
        await asyncio.to_thread(own_redis_server.start)

    await asyncio.gather(*(caller(lim) for lim in lims for _ in range(3)), restart())

    assert busiest(times, QUOTA.period_seconds + MARGIN) <= QUOTA.limit
    assert all(lim.local_granted == 0 for lim in lims)  # no outage was seen: the generation did it
    for reg in registries:
        await reg.aclose()
