"""The roll of live processes (``_peers.lua``) on fakeredis[lua] and on a real redis-server.

Times go through the script's "now" argument (the clock given to `PeersScript`), so expiries are exact.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from assetpay_async._redis_scripts import PEERS_SCRIPT, PeersScript

START = 1_700_000_000.25
KEY = "test:peers:m:cancel-item"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def roll(client: aioredis.Redis, clock: Clock) -> PeersScript:
    return PeersScript(client, lifetime=4.0, clock=clock)


async def test_each_member_counts_once_and_renewing_does_not_add(
    any_redis: aioredis.Redis, clock: Clock
) -> None:
    peers = roll(any_redis, clock)

    counts = [await peers.beat(KEY, "a"), await peers.beat(KEY, "b"), await peers.beat(KEY, "a")]

    assert counts == [1, 2, 2]
    assert await any_redis.zscore(KEY, "a") == pytest.approx((START + 4.0) * 1e6)


async def test_a_member_that_stops_beating_drops_out_when_its_announcement_expires(
    any_redis: aioredis.Redis, clock: Clock
) -> None:
    peers = roll(any_redis, clock)
    await peers.beat(KEY, "gone")
    clock.now += 2.0
    await peers.beat(KEY, "alive")

    clock.now += 1.999
    still = await peers.beat(KEY, "alive")
    clock.now += 0.002
    after = await peers.beat(KEY, "alive")

    assert (still, after) == (2, 1)
    assert await any_redis.zrange(KEY, 0, -1) == [b"alive"]


async def test_leaving_counts_a_member_out_at_once(any_redis: aioredis.Redis, clock: Clock) -> None:
    peers = roll(any_redis, clock)
    await peers.beat(KEY, "a")
    await peers.beat(KEY, "b")

    left = await peers.leave(KEY, "a")

    assert left == 1
    assert await peers.leave(KEY, "b") == 0
    assert await any_redis.exists(KEY) == 0


async def test_the_roll_expires_a_second_after_its_last_announcement(
    any_redis: aioredis.Redis, clock: Clock
) -> None:
    peers = roll(any_redis, clock)

    await peers.beat(KEY, "a")

    ttl_ms = await any_redis.pttl(KEY)
    assert 4_000 < ttl_ms <= 5_000


async def test_an_unknown_op_is_an_error(any_redis: aioredis.Redis) -> None:
    with pytest.raises(ResponseError, match="unknown op"):
        await any_redis.eval(PEERS_SCRIPT, 1, KEY, "shout", "a", "1000", "")


async def test_without_a_clock_the_script_reads_redis_time(any_redis: aioredis.Redis) -> None:
    peers = PeersScript(any_redis, lifetime=60.0)

    assert await peers.beat(KEY, "a") == 1
    assert await peers.beat(KEY, "b") == 2
