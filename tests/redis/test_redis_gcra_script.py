"""The GCRA Lua script's arithmetic, on fakeredis[lua] and on a real redis-server.

Times are controlled through the script's "now" argument (the clock passed to `GcraScript`), so
every expected value is exact; one test checks the Redis ``TIME`` path by relative results only.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from assetpay_async._redis_scripts import GCRA_SCRIPT, GcraScript

START_US = 1_700_000_000_123_456
"""A realistic epoch in microseconds: 16 digits, more than Lua 5.1 prints by default."""
G = 1_000_000
KEY = "test:limiter:m:cancel-item"


class FakeClock:
    """Seconds for the script's "now", moved by hand."""

    def __init__(self) -> None:
        self.us = START_US

    def __call__(self) -> float:
        return self.us / 1_000_000

    def advance(self, us: int) -> None:
        self.us += us


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def script(
    client: aioredis.Redis, clock: FakeClock, *, burst: int = 1, interval: float = 1.0
) -> GcraScript:
    return GcraScript(client, interval=interval, burst=burst, clock=clock)


async def test_an_idle_key_grants_at_once_and_stores_exact_microseconds(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)

    reply = await gcra.acquire(KEY)

    assert (reply.confirmed, reply.reserved, reply.wait_us) == (None, True, 0)
    assert reply.slot_us == START_US
    assert reply.tat_us == START_US + G
    assert await any_redis.hget(KEY, "tat") == str(START_US + G).encode()


async def test_reservations_stack_one_interval_apart(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)

    waits = [(await gcra.acquire(KEY)).wait_us for _ in range(4)]

    assert waits == [0, G, 2 * G, 3 * G]


async def test_an_interval_later_the_next_slot_is_due_at_once(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)
    await gcra.acquire(KEY)

    clock.advance(G - 1)
    early = await gcra.acquire(KEY, reserve_within_us=0)
    clock.advance(1)
    on_time = await gcra.acquire(KEY, reserve_within_us=0)

    assert (early.reserved, early.wait_us) == (False, 1)
    assert (on_time.reserved, on_time.wait_us) == (True, 0)


async def test_a_refused_reservation_changes_nothing(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)
    first = await gcra.acquire(KEY)

    refused = await gcra.acquire(KEY, reserve_within_us=G - 1)
    nothing = await gcra.acquire(KEY, reserve_within_us=None)
    accepted = await gcra.acquire(KEY, reserve_within_us=G)

    assert (refused.reserved, refused.wait_us, refused.tat_us) == (False, G, first.tat_us)
    assert (nothing.reserved, nothing.tat_us) == (False, first.tat_us)
    assert (accepted.reserved, accepted.wait_us) == (True, G)


async def test_burst_lets_b_through_at_once_then_one_per_interval(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock, burst=3)

    waits = [(await gcra.acquire(KEY)).wait_us for _ in range(5)]
    clock.advance(10 * G)
    refilled = [(await gcra.acquire(KEY)).wait_us for _ in range(4)]

    assert waits == [0, 0, 0, G, 2 * G]
    assert refilled == [0, 0, 0, G]


async def test_the_rate_is_passed_on_every_call(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    unverified = script(any_redis, clock, interval=6.0)
    verified = script(any_redis, clock, interval=1.0)

    await unverified.acquire(KEY)
    after_slow = await verified.acquire(KEY)
    after_fast = await verified.acquire(KEY)

    assert after_slow.wait_us == 6 * G
    assert after_fast.wait_us == 7 * G


async def test_a_pause_delays_the_next_slot_and_only_moves_forward(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)
    await gcra.acquire(KEY)

    left = await gcra.pause(KEY, 30.0)
    shorter = await gcra.pause(KEY, 5.0)
    reply = await gcra.acquire(KEY)

    assert left == 30 * G
    assert shorter == 30 * G
    assert reply.wait_us == 30 * G
    assert await any_redis.hget(KEY, "paused") == str(START_US + 30 * G).encode()


async def test_a_pause_stored_beyond_the_bound_is_cut_back_with_the_schedule(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    unbounded = script(any_redis, clock)  # as an older client would have written it
    bounded = GcraScript(any_redis, interval=1.0, clock=clock, max_pause=60.0)
    await unbounded.acquire(KEY)
    await unbounded.pause(KEY, 1e9)  # a Retry-After of 31 years

    reply = await bounded.acquire(KEY)

    assert reply.wait_us == 60 * G
    assert await any_redis.hget(KEY, "paused") == str(START_US + 60 * G).encode()
    assert 60_000 < await any_redis.pttl(KEY) <= 62_000 + 1_000  # no longer a key for decades
    assert (await bounded.acquire(KEY)).wait_us == 61 * G


async def test_a_pause_within_the_bound_is_believed_whole(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    bounded = GcraScript(any_redis, interval=1.0, clock=clock, max_pause=60.0)
    await bounded.pause(KEY, 59.0)

    assert (await bounded.acquire(KEY)).wait_us == 59 * G


async def test_after_a_pause_a_burst_key_grants_one_at_a_time(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock, burst=3)

    await gcra.pause(KEY, 10.0)
    waits = [(await gcra.acquire(KEY)).wait_us for _ in range(3)]

    assert waits == [10 * G, 11 * G, 12 * G]


async def test_a_pause_on_an_unknown_key_creates_it(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)

    await gcra.pause(KEY, 2.0)

    assert (await gcra.acquire(KEY)).wait_us == 2 * G


async def test_a_slot_reserved_before_a_pause_is_void_when_the_pause_covers_it(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)
    await gcra.acquire(KEY)
    held = await gcra.acquire(KEY)  # due in 1 s

    await gcra.pause(KEY, 5.0)
    clock.advance(G)
    check = await gcra.acquire(KEY, confirm_slot_us=held.slot_us, reserve_within_us=None)

    assert check.confirmed is False


async def test_a_slot_after_the_end_of_a_pause_stays_good(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)
    held = [await gcra.acquire(KEY) for _ in range(4)][-1]  # due in 3 s

    await gcra.pause(KEY, 2.0)
    clock.advance(3 * G)
    check = await gcra.acquire(KEY, confirm_slot_us=held.slot_us)

    assert check.confirmed is True
    assert (check.reserved, check.wait_us) == (True, G)


async def test_a_slot_of_a_lost_key_is_void(any_redis: aioredis.Redis, clock: FakeClock) -> None:
    gcra = script(any_redis, clock)
    await gcra.acquire(KEY)
    held = await gcra.acquire(KEY)

    await any_redis.delete(KEY)  # what a restart without persistence does
    check = await gcra.acquire(KEY, confirm_slot_us=held.slot_us, reserve_within_us=None)

    assert check.confirmed is False


async def test_refund_gives_back_the_last_reservation_only(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)
    await gcra.acquire(KEY)
    mine = await gcra.acquire(KEY)
    theirs = await gcra.acquire(KEY)

    refused = await gcra.refund(KEY, mine.tat_us)
    refunded = await gcra.refund(KEY, theirs.tat_us)
    after = await gcra.acquire(KEY)

    assert (refused, refunded) == (False, True)
    assert after.wait_us == theirs.wait_us


async def test_refund_after_a_pause_changes_nothing(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)
    mine = await gcra.acquire(KEY)

    await gcra.pause(KEY, 5.0)

    assert await gcra.refund(KEY, mine.tat_us) is False
    assert (await gcra.acquire(KEY)).wait_us == 5 * G


async def test_the_key_expires_a_second_after_its_last_slot(
    any_redis: aioredis.Redis, clock: FakeClock
) -> None:
    gcra = script(any_redis, clock)

    for _ in range(3):
        await gcra.acquire(KEY)
    after_grants = await any_redis.pttl(KEY)
    await gcra.pause(KEY, 60.0)
    after_pause = await any_redis.pttl(KEY)

    assert 3_000 + 1_000 - 50 <= after_grants <= 3_000 + 1_000
    assert 60_000 + 1_000 - 50 <= after_pause <= 60_000 + 1_000


async def test_keys_are_independent(any_redis: aioredis.Redis, clock: FakeClock) -> None:
    gcra = script(any_redis, clock)

    await gcra.acquire(KEY)
    other = await gcra.acquire(KEY + ":other")

    assert other.wait_us == 0


async def test_redis_time_is_the_clock_by_default(any_redis: aioredis.Redis) -> None:
    gcra = GcraScript(any_redis, interval=60.0)

    first = await gcra.acquire(KEY)
    second = await gcra.acquire(KEY)

    assert first.wait_us == 0
    # TIME moved on by the length of one round trip between the two calls.
    assert 60 * G - 1_000_000 < second.wait_us <= 60 * G
    assert second.slot_us == first.tat_us


async def test_an_unknown_operation_is_an_error(any_redis: aioredis.Redis) -> None:
    with pytest.raises(ResponseError, match="unknown op"):
        await any_redis.eval(GCRA_SCRIPT, 1, KEY, "steal", 1000, 1, "")


def test_bad_parameters_are_refused() -> None:
    client = aioredis.Redis()
    with pytest.raises(ValueError, match="interval"):
        GcraScript(client, interval=0.0)
    with pytest.raises(ValueError, match="burst"):
        GcraScript(client, interval=1.0, burst=0)
