"""More processes than N: reservations never run more than one quota period ahead, a restart keeps <= N.

Each process holds at most one reserved slot; without a bound, P > N processes push the schedule P slots
(more than a window) ahead, and a server restarted empty meets them all asleep on slots it no longer has.
The worker reserves only within the horizon (`_redis_outage.reservation_bound`).
"""

from __future__ import annotations

import asyncio

import fakeredis
import pytest
import redis.asyncio as aioredis

from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.redis_limiter import RedisLimiter
from assetpay_async.testing import run_virtual
from tests.redis.test_redis_latency import busiest
from tests.support.redis_server import RedisServer

QUOTA = Quota(4, 2.0)
PROCESSES = 8


def test_eight_processes_of_n_4_never_hold_a_slot_beyond_one_period() -> None:
    async def main() -> None:
        server = fakeredis.FakeServer()
        loop = asyncio.get_running_loop()
        lims = [
            RedisLimiter(
                fakeredis.FakeAsyncRedis(server=server),
                "m-h",
                RouteGroup.CANCEL_ITEM,
                QUOTA,
                latency_margin=0.0,
                clock=loop.time,
            )
            for _ in range(PROCESSES)
        ]
        times: list[float] = []
        furthest = 0.0

        async def one(lim: RedisLimiter) -> None:
            await lim.acquire()
            times.append(loop.time())

        async def watch() -> None:
            nonlocal furthest
            while len(times) < 3 * PROCESSES:
                held = [lim._worker.held for lim in lims if lim._worker.held is not None]
                furthest = max([furthest, *(slot.due - loop.time() for slot in held)])
                await asyncio.sleep(0.05)

        await asyncio.gather(*(one(lim) for lim in lims for _ in range(3)), watch())
        assert furthest <= QUOTA.period_seconds + 1e-3
        assert busiest(times, QUOTA.period_seconds) <= QUOTA.limit
        for lim in lims:
            await lim.aclose()

    run_virtual(main())


@pytest.mark.redis_server
@pytest.mark.slow
async def test_more_processes_than_n_through_a_restart_keep_every_window_under_n(
    own_redis_server: RedisServer, key_prefix: str
) -> None:
    clients = [
        aioredis.Redis(unix_socket_path=str(own_redis_server.socket)) for _ in range(PROCESSES)
    ]
    lims = [
        RedisLimiter(
            client,
            "m-many",
            RouteGroup.CANCEL_ITEM,
            QUOTA,
            latency_margin=0.2,
            key_prefix=key_prefix,
            timeout=0.3,
            recheck_after=0.5,
        )
        for client in clients
    ]
    loop = asyncio.get_running_loop()
    times: list[float] = []
    stop_at = loop.time() + 9.0

    async def busy(lim: RedisLimiter) -> None:
        while loop.time() < stop_at:
            await lim.acquire()
            times.append(loop.time())

    async def restart() -> None:
        await asyncio.sleep(3.0)
        await asyncio.to_thread(own_redis_server.kill)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(own_redis_server.start)

    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(busy(lim) for lim in lims), restart())
        assert busiest(times, QUOTA.period_seconds) <= QUOTA.limit
        assert len(times) >= 10  # it went on through the restart
    finally:
        for lim in lims:
            await lim.aclose()
        for client in clients:
            await client.aclose()
