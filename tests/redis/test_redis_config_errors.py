"""Configuration errors are not outages: a real ``redis-server`` that refuses the limiter's configuration.

Before its first grant the limiter pings Redis and runs both scripts once. A wrong or missing password, an
ACL user without ``EVALSHA`` or the keys, or a URL option the connection rejects ends every waiting call with
a [`ConfigurationError`][assetpay_async.ConfigurationError] (no secret in its text), and nothing is granted:
no process falls back to its share because it was configured wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from assetpay_async import ConfigurationError, LimiterBackendError, Quota, RouteGroup
from assetpay_async.redis_limiter import RedisLimiter, RedisLimiterRegistry
from tests.support.redis_server import RedisServer, redis_server_binary

PASSWORD = "s3cret-admin-pw"
LIMITED_PASSWORD = "s3cret-limited-pw"
QUOTA = Quota(100, 0.5)
CALLS = 5


@pytest.fixture
def guarded_server() -> Iterator[RedisServer]:
    """A server with a password, and two ACL users: one without EVALSHA, one without the limiter's keys."""
    with RedisServer(
        redis_server_binary(), args=["--requirepass", PASSWORD], password=PASSWORD
    ) as server:
        with redis.Redis(unix_socket_path=str(server.socket), password=PASSWORD) as admin:
            admin.acl_setuser(
                "noscript",
                enabled=True,
                passwords=[f"+{LIMITED_PASSWORD}"],
                keys=["*"],
                commands=["+@all", "-evalsha", "-eval", "-evalsha_ro", "-eval_ro"],
            )
            admin.acl_setuser(
                "nokeys",
                enabled=True,
                passwords=[f"+{LIMITED_PASSWORD}"],
                keys=["other:*"],
                commands=["+@all"],
            )
        yield server


async def _acquire_all(registry: RedisLimiterRegistry) -> tuple[list[Any], RedisLimiter]:
    lim = registry.get("merchant-1", RouteGroup.CANCEL_ITEM, QUOTA, latency_margin=0.0)
    assert isinstance(lim, RedisLimiter)
    async with asyncio.timeout(10):  # nothing may hang
        results = await asyncio.gather(
            *(lim.acquire(max_wait=5.0) for _ in range(CALLS)), return_exceptions=True
        )
    return results, lim


def _keys(server: RedisServer) -> list[bytes]:
    with redis.Redis(unix_socket_path=str(server.socket), password=PASSWORD) as admin:
        return list(admin.keys("*"))


@pytest.mark.redis_server
@pytest.mark.parametrize(
    ("name", "query", "secret"),
    [
        ("wrong password", f"?password=wrong-{LIMITED_PASSWORD}", f"wrong-{LIMITED_PASSWORD}"),
        ("missing password", "", PASSWORD),
        ("ACL user without EVALSHA", f"?username=noscript&password={LIMITED_PASSWORD}", None),
        ("ACL user without the keys", f"?username=nokeys&password={LIMITED_PASSWORD}", None),
    ],
)
async def test_a_refused_configuration_fails_every_waiting_call_and_grants_nothing(
    guarded_server: RedisServer, name: str, query: str, secret: str | None
) -> None:
    registry = RedisLimiterRegistry(f"unix://{guarded_server.socket}{query}", timeout=2.0)

    results, lim = await _acquire_all(registry)

    assert all(isinstance(result, ConfigurationError) for result in results), (name, results)
    assert not lim.degraded, "a configuration error was taken for an outage"
    assert lim.local_granted == 0
    assert lim.stats().granted == 0
    assert _keys(guarded_server) == [], "quota was spent in Redis"
    for result in results:
        assert LIMITED_PASSWORD not in str(result)
        assert PASSWORD not in str(result)
        if secret is not None:
            assert secret not in str(result)
    # A call after them meets the same error (checked again, never granted from a share).
    with pytest.raises(ConfigurationError):
        await lim.acquire(max_wait=5.0)
    assert lim.local_granted == 0
    await registry.aclose()


@pytest.mark.redis_server
async def test_the_right_password_passes_the_check(guarded_server: RedisServer) -> None:
    registry = RedisLimiterRegistry(f"unix://{guarded_server.socket}?password={PASSWORD}")

    results, lim = await _acquire_all(registry)

    assert all(isinstance(result, float) for result in results), results
    assert not lim.degraded
    await registry.aclose()


@pytest.mark.redis_server
async def test_a_url_option_the_connection_rejects_fails_the_calls_instead_of_killing_the_worker(
    redis_server: RedisServer,
) -> None:
    """Regression: ``?ssl_cert_reqs=none`` on a plain URL killed the worker with TypeError; calls hung."""
    registry = RedisLimiterRegistry(f"unix://{redis_server.socket}?ssl_cert_reqs=none")

    results, lim = await _acquire_all(registry)

    assert all(isinstance(result, ConfigurationError) for result in results), results
    assert "ssl_cert_reqs" in str(results[0])
    assert lim.local_granted == 0
    await registry.aclose()


class BrokenRedis(fakeredis.FakeAsyncRedis):
    """A client whose commands raise an exception no Redis client raises (a bug, a broken plugin)."""

    broken = True

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.broken and args and args[0] in ("EVALSHA", "EVAL"):
            raise RuntimeError("unexpected failure inside the client")
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


async def test_any_exception_in_the_grant_worker_ends_every_waiting_call_with_a_typed_error() -> (
    None
):
    client = BrokenRedis()
    lim = RedisLimiter(client, "m", RouteGroup.CANCEL_ITEM, QUOTA, latency_margin=0.0)

    async with asyncio.timeout(5):
        results = await asyncio.gather(
            *(lim.acquire() for _ in range(CALLS)), return_exceptions=True
        )

    assert all(isinstance(result, LimiterBackendError) for result in results), results
    assert "RuntimeError" in str(results[0])
    client.broken = False
    async with asyncio.timeout(5):
        assert await lim.acquire() >= 0.0  # a new worker serves the next call
    await lim.aclose()
    await client.aclose()


async def test_a_plain_client_on_a_cluster_node_is_a_configuration_error() -> None:
    """MOVED to a plain client: the key lives on another node; a redis+cluster:// URL is needed."""

    class ClusterNodeRedis(fakeredis.FakeAsyncRedis):
        async def execute_command(self, *args: Any, **options: Any) -> Any:
            if args and args[0] in ("EVALSHA", "EVAL"):
                raise redis.exceptions.MovedError("3999 127.0.0.1:7001")
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    client = ClusterNodeRedis()
    lim = RedisLimiter(client, "m", RouteGroup.CANCEL_ITEM, QUOTA, latency_margin=0.0)

    with pytest.raises(ConfigurationError, match="redis\\+cluster://"):
        await lim.acquire(max_wait=5.0)
    assert not lim.degraded
    await lim.aclose()
    await client.aclose()
