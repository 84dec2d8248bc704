"""The Redis URL forms of the ``limits`` library: parsed without I/O, every error typed and without secrets."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from assetpay_async import AssetPaySession, ConfigurationError
from assetpay_async._redis_urls import parse_redis_url
from assetpay_async.redis_limiter import RedisLimiterRegistry

SECRET = "pa55-w0rd-xyz"


@pytest.mark.parametrize(
    ("url", "kind", "nodes", "service"),
    [
        (f"redis://:{SECRET}@cache:6379/2", "single", (), ""),
        (f"rediss://user:{SECRET}@cache:6380", "single", (), ""),
        ("unix:///run/redis.sock?db=1", "single", (), ""),
        ("redis+unix:///run/redis.sock", "single", (), ""),
        (
            f"redis+sentinel://:{SECRET}@s1:26379,s2:26380/mymaster",
            "sentinel",
            (("s1", 26379), ("s2", 26380)),
            "mymaster",
        ),
        (
            "redis+cluster://n1:7000,n2:7001,n3:7002",
            "cluster",
            (("n1", 7000), ("n2", 7001), ("n3", 7002)),
            "",
        ),
    ],
)
def test_every_documented_form_parses(
    url: str, kind: str, nodes: tuple[tuple[str, int], ...], service: str
) -> None:
    parsed = parse_redis_url(url)

    assert parsed.kind == kind
    assert parsed.nodes == nodes
    assert parsed.service_name == service
    assert SECRET not in repr(parsed)


def test_a_sentinel_url_carries_the_password_for_the_primary() -> None:
    parsed = parse_redis_url(f"redis+sentinel://me:{SECRET}@s1:26379/mymaster/3")

    assert (parsed.username, parsed.password, parsed.db) == ("me", SECRET, 3)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@cache:notaport/0",
        f"redis://:{SECRET}@cache:99999",
        f"redis://:{SECRET}@cache:0",
        f"redis://:{SECRET}@:6379",
        f"http://:{SECRET}@cache:6379",
        f"redis://:{SECRET}@a:1,b:2",
        f"redis+sentinel://:{SECRET}@s1:26379",
        f"redis+sentinel://:{SECRET}@s1:x/mymaster",
        f"redis+sentinel://:{SECRET}@s1/mymaster",
        f"redis+cluster://:{SECRET}@n1:7000/0",
        f"redis+cluster://:{SECRET}@n1:7000?ssl=true",
        f"redis+cluster://:{SECRET}@",
        "unix://",
    ],
)
def test_a_bad_url_is_a_configuration_error_that_never_shows_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisLimiterRegistry(url)

    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    assert caught.value.__cause__ is None or SECRET not in str(caught.value.__cause__)


@pytest.mark.parametrize(
    ("url", "client_type"),
    [
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", aioredis.RedisCluster),
        ("redis+sentinel://127.0.0.1:26379/mymaster", aioredis.Redis),
        ("redis+unix:///tmp/none.sock", aioredis.Redis),
    ],
)
async def test_each_form_gives_the_client_of_its_deployment(url: str, client_type: type) -> None:
    registry = RedisLimiterRegistry(url)

    assert isinstance(registry.redis, client_type)
    await registry.aclose()


async def test_a_cluster_client_is_a_redis_limiter_not_a_limiter_registry() -> None:
    """Regression (issue 20): a RedisCluster passed as limiter= was taken for a LimiterRegistry."""
    client = aioredis.RedisCluster(host="127.0.0.1", port=7000)
    session = AssetPaySession(tier="verified", merchant_id="m", limiter=client)

    made = session._made_registry  # which registry the session built

    assert isinstance(made, RedisLimiterRegistry)
    assert made.redis is client
    await session.aclose()
    await client.aclose()
