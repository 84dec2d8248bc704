"""One process cut off from Redis while its peer keeps it (``outage_policy="wait"``): never over N.

Two limiters of one key, each on its own client (two processes, as far as Redis and the limiter can tell):
one talks to a real ``redis-server`` directly, the other through a TCP proxy in the test that drops all its
traffic for a while. The cut-off process may not grant from its share (the other one keeps the full N from
Redis): its calls wait for Redis and end with QueueTimeoutError within their ``max_wait``.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from assetpay_async import QueueTimeoutError
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.redis_limiter import RedisLimiter
from tests.redis.proxy import DelayProxy
from tests.redis.test_redis_latency import busiest
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]

QUOTA = Quota(20, 2.0)


async def test_a_process_cut_off_alone_waits_instead_of_granting_its_share(
    own_redis_server: RedisServer, key_prefix: str
) -> None:
    proxy = DelayProxy(own_redis_server.socket, 0.0)
    await proxy.start()
    direct = aioredis.Redis(unix_socket_path=str(own_redis_server.socket))
    proxied = aioredis.from_url(proxy.url)
    kept, cut = (
        RedisLimiter(
            client,
            "m-cut",
            RouteGroup.CANCEL_ITEM,
            QUOTA,
            latency_margin=0.2,
            key_prefix=key_prefix,
            outage_policy="wait",
            timeout=0.3,
            recheck_after=0.5,
        )
        for client in (direct, proxied)
    )
    loop = asyncio.get_running_loop()
    times: list[float] = []
    timeouts = {"kept": 0, "cut": 0}
    stop_at = loop.time() + 8.0

    async def busy(limiter: RedisLimiter, name: str) -> None:
        while loop.time() < stop_at:
            try:
                await limiter.acquire(max_wait=1.0)
            except QueueTimeoutError:
                timeouts[name] += 1
            else:
                times.append(loop.time())

    async def partition() -> None:
        await asyncio.sleep(2.5)  # both counted each other (1 s heartbeat)
        proxy.cut()
        await asyncio.sleep(3.0)
        proxy.restore()

    try:
        async with asyncio.timeout(40):
            await asyncio.gather(
                *(busy(kept, "kept") for _ in range(3)),
                *(busy(cut, "cut") for _ in range(3)),
                partition(),
            )
        assert cut.peers == 2
        assert cut.local_granted == 0  # nothing granted without Redis
        assert timeouts["cut"] > 0  # its calls ended typed within max_wait while cut off
        assert busiest(times, QUOTA.period_seconds) <= QUOTA.limit
        assert len(times) > 40  # the kept process went on at the full rate
    finally:
        for lim in (kept, cut):
            await lim.aclose()
        for client in (direct, proxied):
            await client.aclose()
        await proxy.aclose()
