"""RedisLimiter against a real redis-server: restarts, a dead server, two processes' pause, closing.

Redis ``TIME`` is wall-clock time here, so quotas are scaled down to milliseconds between grants and the
assertions count grants rather than time them.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis
import redis.asyncio as aioredis

from assetpay_async import AssetPaySession, LimiterBackendError
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.redis_limiter import RedisLimiter, RedisLimiterRegistry
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis_server

FAST = Quota(100, 0.5)
"""With no latency margin: one grant every 0.5 / 99 s, about 5 ms."""


def limiter(client: aioredis.Redis, prefix: str, **options: object) -> RedisLimiter:
    return RedisLimiter(
        client,
        "merchant-1",
        RouteGroup.CANCEL_ITEM,
        FAST,
        latency_margin=0.0,
        key_prefix=prefix,
        **options,  # type: ignore[arg-type]
    )


async def test_a_redis_restart_mid_batch_loses_no_grant(
    own_redis_server: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="assetpay_async.redis_limiter")
    client = aioredis.Redis.from_url(own_redis_server.url, socket_connect_timeout=0.5)
    lim = limiter(client, key_prefix, recheck_after=0.05)
    granted = 0
    reached = {10: asyncio.Event(), 30: asyncio.Event()}

    async def call() -> None:
        nonlocal granted
        await lim.acquire()
        granted += 1
        if granted in reached:
            reached[granted].set()

    batch = [asyncio.create_task(call()) for _ in range(60)]
    await reached[10].wait()
    await asyncio.to_thread(own_redis_server.stop)
    await reached[30].wait()
    degraded_mid_batch = lim.degraded
    await asyncio.to_thread(own_redis_server.start)
    await asyncio.gather(*batch)
    await asyncio.sleep(0.06)
    await lim.acquire()

    assert granted == 60
    assert degraded_mid_batch
    assert not lim.degraded
    assert await client.exists(lim.redis_key) == 1  # back on the restarted server
    levels = [record.levelname for record in caplog.records]
    assert levels.count("WARNING") == 1
    assert levels.count("INFO") == 1
    await lim.aclose()
    await client.aclose()


async def test_a_dead_server_without_fallback_raises_backend_errors(
    own_redis_server: RedisServer, key_prefix: str
) -> None:
    client = aioredis.Redis.from_url(own_redis_server.url, socket_connect_timeout=0.5)
    lim = limiter(client, key_prefix, fallback=False)
    await lim.acquire()
    own_redis_server.stop()

    with pytest.raises(LimiterBackendError, match=r"fallback=False"):
        await lim.acquire()
    own_redis_server.start()
    waited = await lim.acquire()

    assert waited < 0.1
    await lim.aclose()
    await client.aclose()


async def test_a_pause_sent_by_one_client_holds_back_another(
    redis_server: RedisServer, key_prefix: str
) -> None:
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    seen, other = (limiter(client, key_prefix) for client in clients)
    loop = asyncio.get_running_loop()
    await other.acquire()

    seen.rate_limited(0.2)
    await asyncio.sleep(0.01)  # the pause travels through Redis
    start = loop.time()
    await other.acquire()

    assert loop.time() - start >= 0.15
    for lim in (seen, other):
        await lim.aclose()
    for client in clients:
        await client.aclose()


def client_ids(server: RedisServer) -> set[int]:
    """The ids of the connections the server has now, the probe's own left out."""
    with redis.Redis(unix_socket_path=str(server.socket)) as probe:
        own = probe.client_id()
        return {int(client["id"]) for client in probe.client_list()} - {own}


async def test_a_session_closes_the_client_it_made_from_a_url(
    redis_server: RedisServer, key_prefix: str
) -> None:
    merchant = f"m-{key_prefix}"  # the shorthand uses the default key prefix: a merchant of its own
    session = AssetPaySession(cancel_quota=FAST, merchant_id=merchant, limiter=redis_server.url)
    others = client_ids(redis_server)
    await session._requester.limiter(merchant, RouteGroup.CANCEL_ITEM).acquire()
    mine = client_ids(redis_server) - others

    await session.aclose()

    assert mine  # the limiter and its heartbeat talk to Redis through the session's client
    assert not mine & client_ids(redis_server)  # and every one of its connections is closed


async def test_the_registry_from_a_url_takes_url_options(redis_server: RedisServer) -> None:
    registry = RedisLimiterRegistry(f"{redis_server.url}?socket_timeout=3")

    client = registry.redis
    assert isinstance(client, aioredis.Redis)
    kwargs = client.connection_pool.connection_kwargs

    assert kwargs["socket_timeout"] == 3.0
    # Not in the URL: the limiter's own, a first call's allowance (FIRST_CALL_TIMEOUTS x the 1 s timeout).
    assert kwargs["socket_connect_timeout"] == 3.0
    await registry.aclose()
