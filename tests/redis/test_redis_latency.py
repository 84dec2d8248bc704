"""A Redis 150 ms away (each way, through a TCP proxy in the test): grants come from Redis, never locally.

The deadline of a Redis call follows the measured round trips (`Deadline`), and a call past it lingers so its
connection is kept: before, every call of a process behind a 300 ms round trip timed out (the first
connection alone took longer than the fixed 1 s) and the limiter never granted from Redis.
"""

from __future__ import annotations

import asyncio
import bisect

import pytest
import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

from assetpay_async._quota import Quota, RouteGroup
from assetpay_async._redis_scripts import Deadline
from assetpay_async.redis_limiter import RedisLimiter
from assetpay_async.testing import run_virtual
from tests.redis.proxy import DelayProxy
from tests.support.redis_server import RedisServer

QUOTA = Quota(20, 2.0)


def busiest(times: list[float], period: float) -> int:
    """The most grants in any closed window of ``period`` seconds."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_right(ordered, t + period) - i for i, t in enumerate(ordered)), default=0
    )


# -- the deadline, on virtual time ------------------------------------------------------------------------


def test_deadline_allows_a_first_connection_then_follows_the_round_trips() -> None:
    deadline = Deadline(1.0)
    assert deadline.current() == 3.0  # FIRST_CALL_TIMEOUTS: connection and script load
    deadline.observe(0.3)
    assert deadline.current() == 1.0  # 4 x 0.3 = 1.2, capped
    fast = Deadline(1.0)
    for _ in range(10):
        fast.observe(0.001)
    assert fast.current() == 0.25  # the floor: a stalled event loop is no outage
    for _ in range(10):
        fast.observe(0.2)
    assert fast.current() == pytest.approx(0.8)  # the high percentile, times four


def test_a_call_past_its_deadline_raises_lingers_and_is_measured() -> None:
    async def main() -> None:
        deadline = Deadline(1.0)
        deadline.observe(0.1)
        finished: list[bool] = []

        async def slow() -> str:
            await asyncio.sleep(0.6)
            finished.append(True)
            return "late"

        with pytest.raises(RedisTimeoutError):
            await deadline.call(slow())  # deadline 0.4 s
        assert not finished
        await asyncio.sleep(0.4)
        assert finished == [True]  # not cancelled: its connection would have been dropped
        assert deadline.current() == 1.0  # 4 x the late 0.6 s, capped

    run_virtual(main())


def test_a_call_that_hangs_is_cancelled_after_the_linger() -> None:
    async def main() -> None:
        deadline = Deadline(0.1)
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        deadline.observe(0.01)
        with pytest.raises(RedisTimeoutError):
            await deadline.call(never)
        await asyncio.sleep(1.0)
        assert never.cancelled()

    run_virtual(main())


# -- a real redis-server behind the proxy -------------------------------------------------------------------


@pytest.mark.redis_server
@pytest.mark.slow
async def test_redis_150ms_away_grants_from_redis_within_the_quota(
    own_redis_server: RedisServer, key_prefix: str
) -> None:
    proxy = DelayProxy(own_redis_server.socket, 0.150)
    await proxy.start()
    clients = [aioredis.from_url(proxy.url) for _ in range(2)]
    limiters = [
        RedisLimiter(
            client,
            "m-far",
            RouteGroup.CANCEL_ITEM,
            QUOTA,
            latency_margin=0.2,
            key_prefix=key_prefix,
            max_processes=2,
        )
        for client in clients
    ]
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one(limiter: RedisLimiter) -> None:
        await limiter.acquire(max_wait=60.0)
        times.append(loop.time())

    try:
        async with asyncio.timeout(90):
            await asyncio.gather(*(one(lim) for lim in limiters for _ in range(15)))
        assert len(times) == 30
        assert busiest(times, QUOTA.period_seconds) <= QUOTA.limit
        assert [lim.local_granted for lim in limiters] == [0, 0]
        assert not any(lim.degraded for lim in limiters)
    finally:
        for lim in limiters:
            await lim.aclose()
        for client in clients:
            await client.aclose()
        await proxy.aclose()
