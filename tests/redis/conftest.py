"""Fixtures of the Redis limiter tests: ``fakeredis`` in process, and a real ``redis-server``.

Tests that need the real server carry ``@pytest.mark.redis_server``; they skip without the binary, and fail
without it when the ``CI`` environment variable is set.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import fakeredis
import pytest
import redis.asyncio as aioredis

from tests.support.redis_server import RedisServer, redis_server_binary


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One ``redis-server`` for the whole session; tests keep apart through their own key prefix."""
    with RedisServer(redis_server_binary()) as server:
        yield server


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A ``redis-server`` of this test alone, which it may stop and start."""
    with RedisServer(redis_server_binary()) as server:
        yield server


@pytest.fixture
def key_prefix() -> str:
    """A key prefix no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["fakeredis", pytest.param("redis-server", marks=pytest.mark.redis_server)])
async def any_redis(request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    """The same test on ``fakeredis[lua]`` and on a real server (emptied first)."""
    client: aioredis.Redis
    if request.param == "fakeredis":
        client = fakeredis.FakeAsyncRedis()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        client = aioredis.Redis(unix_socket_path=str(server.socket))
        await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()
