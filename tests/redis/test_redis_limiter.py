"""RedisLimiter on fakeredis[lua] and a virtual clock: order, cancellation, pauses, fallback, closing.

The limiter passes the event loop's clock to the script (its test seam for Redis ``TIME``), and the loop is
a [`VirtualTimeLoop`][assetpay_async.testing.VirtualTimeLoop]: schedules are exact and a minute takes milliseconds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from assetpay_async import (
    AssetPaySession,
    ConfigurationError,
    LimiterBackendError,
    QueueTimeoutError,
    SessionClosedError,
)
from assetpay_async._limiting import RateLimiter
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.redis_limiter import RedisLimiter, RedisLimiterRegistry
from assetpay_async.testing import run_virtual

QUOTA = Quota(10, 9.0)
"""With no latency margin: one grant every (9 + 0) / (10 - 1) = 1 s (plus the pacing's float guard)."""
G = 1.0
EPS = 1e-4


def limiter(client: aioredis.Redis, **options: Any) -> RedisLimiter:
    options.setdefault("latency_margin", 0.0)
    options.setdefault("clock", asyncio.get_running_loop().time)
    return RedisLimiter(client, "merchant-1", RouteGroup.CANCEL_ITEM, QUOTA, **options)


def virtual(test: Callable[[fakeredis.FakeServer], Coroutine[Any, Any, None]]) -> None:
    """Run ``test`` on a virtual-time loop with a fresh fake Redis server."""
    run_virtual(test(fakeredis.FakeServer()))


async def grant_times(lim: RedisLimiter, count: int) -> list[float]:
    loop = asyncio.get_running_loop()

    async def one() -> float:
        await lim.acquire()
        return loop.time()

    return list(await asyncio.gather(*(one() for _ in range(count))))


def test_grants_go_in_arrival_order_one_interval_apart() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        client = fakeredis.FakeAsyncRedis(server=server)
        lim = limiter(client)
        loop = asyncio.get_running_loop()
        order: list[int] = []

        async def call(index: int) -> float:
            await lim.acquire()
            order.append(index)
            return loop.time()

        times = await asyncio.gather(*(call(i) for i in range(6)))

        assert order == list(range(6))
        assert times[0] == pytest.approx(0.0, abs=EPS)
        assert all(later - earlier >= G for earlier, later in itertools.pairwise(times))
        assert times[-1] == pytest.approx(5 * G, abs=1e-3)
        assert lim.stats().granted == 6
        await lim.aclose()
        await client.aclose()

    virtual(main)


def test_two_processes_share_one_schedule_and_both_get_their_turn() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        clients = [fakeredis.FakeAsyncRedis(server=server) for _ in range(2)]
        first, second = (limiter(client) for client in clients)

        a, b = await asyncio.gather(grant_times(first, 5), grant_times(second, 5))

        combined = sorted(a + b)
        assert all(later - earlier >= G for earlier, later in itertools.pairwise(combined))
        assert combined[-1] == pytest.approx(9 * G, abs=1e-3)  # no slot lost between the two
        assert min(b) < max(a)
        assert min(a) < max(b)  # interleaved: neither waited for the other to finish
        for lim in (first, second):
            await lim.aclose()
        for client in clients:
            await client.aclose()

    virtual(main)


def test_a_cancelled_waiter_spends_nothing() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        client = fakeredis.FakeAsyncRedis(server=server)
        lim = limiter(client)
        loop = asyncio.get_running_loop()
        await lim.acquire()
        doomed = asyncio.create_task(lim.acquire())
        last = asyncio.create_task(lim.acquire())
        await asyncio.sleep(G / 2)

        doomed.cancel()
        await asyncio.gather(doomed, return_exceptions=True)
        await last

        assert doomed.cancelled()
        assert loop.time() == pytest.approx(
            G, abs=1e-3
        )  # the cancelled waiter's turn went to the next
        assert lim.stats().granted == 2
        await lim.aclose()
        await client.aclose()

    virtual(main)


def test_a_lone_cancelled_waiter_gives_its_reserved_slot_back() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        mine, theirs = (limiter(fakeredis.FakeAsyncRedis(server=server)) for _ in range(2))
        loop = asyncio.get_running_loop()
        await mine.acquire()
        doomed = asyncio.create_task(mine.acquire())  # reserves the slot at 1 s
        await asyncio.sleep(G / 2)
        doomed.cancel()
        await asyncio.gather(doomed, return_exceptions=True)
        await asyncio.sleep(0.01)

        await theirs.acquire()

        assert loop.time() == pytest.approx(G, abs=1e-3)  # not 2 s: the slot came back
        await mine.aclose()
        await theirs.aclose()

    virtual(main)


def test_max_wait_fails_at_once_and_reserves_nothing() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        lim = limiter(fakeredis.FakeAsyncRedis(server=server))
        other = limiter(fakeredis.FakeAsyncRedis(server=server))
        loop = asyncio.get_running_loop()
        await lim.acquire()

        with pytest.raises(QueueTimeoutError) as caught:
            await lim.acquire(max_wait=G / 2)
        failed_at = loop.time()
        await other.acquire()

        assert failed_at < 0.01
        assert caught.value.waited == 0.0
        assert loop.time() == pytest.approx(G, abs=1e-3)
        await lim.aclose()
        await other.aclose()

    virtual(main)


def test_a_waiter_whose_budget_ends_behind_others_fails_and_the_queue_moves_on() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        lim = limiter(fakeredis.FakeAsyncRedis(server=server))
        loop = asyncio.get_running_loop()
        await lim.acquire()
        patient = asyncio.create_task(lim.acquire())
        hasty = asyncio.create_task(lim.acquire(max_wait=1.5 * G))
        after = asyncio.create_task(lim.acquire())

        await patient
        with pytest.raises(QueueTimeoutError):
            await hasty
        await after

        assert loop.time() == pytest.approx(2 * G, abs=1e-3)
        await lim.aclose()

    virtual(main)


def test_a_429_in_one_process_pauses_the_other() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        seen, other = (limiter(fakeredis.FakeAsyncRedis(server=server)) for _ in range(2))
        loop = asyncio.get_running_loop()
        await other.acquire()
        queued = asyncio.create_task(
            grant_times(other, 3)
        )  # the first of them holds the slot at 1 s
        await asyncio.sleep(G / 2)

        seen.rate_limited(5.0)
        paused = seen.stats()
        times = await queued

        assert min(times) >= G / 2 + 5.0 - EPS
        assert (paused.paused_for, paused.rate_limited, paused.pauses) == (5.0, 1, 1)
        assert loop.time() == pytest.approx(G / 2 + 5.0 + 2 * G, abs=1e-3)
        await seen.aclose()
        await other.aclose()

    virtual(main)


def test_a_429_pauses_the_own_process_at_once_even_before_redis_hears_of_it() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        lim = limiter(fakeredis.FakeAsyncRedis(server=server))
        await lim.acquire()
        queued = asyncio.create_task(grant_times(lim, 2))
        await asyncio.sleep(G / 2)

        lim.rate_limited(None)  # no Retry-After: one whole window
        times = await queued

        assert min(times) >= G / 2 + QUOTA.period_seconds - EPS
        await lim.aclose()

    virtual(main)


def test_redis_down_falls_back_to_local_pacing_with_one_warning_then_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="assetpay_async.redis_limiter")

    async def main(server: fakeredis.FakeServer) -> None:
        client = fakeredis.FakeAsyncRedis(server=server)
        # Started during the outage: only a configured bound on the processes gives it a share.
        lim = limiter(client, recheck_after=3.0, max_processes=1)
        server.connected = False

        times = await grant_times(lim, 3)
        fell_back = lim.degraded

        assert fell_back
        # Alone, its share is the whole quota; the first local grant waits one interval (P * g).
        assert times[0] == pytest.approx(G, abs=1e-3)
        assert all(later - earlier >= G - EPS for earlier, later in itertools.pairwise(times))
        assert lim.local_granted == 3
        server.connected = True
        await asyncio.sleep(3.0)
        await lim.acquire()
        assert not lim.degraded
        assert await client.exists(lim.redis_key) == 1
        await lim.aclose()
        await client.aclose()

    virtual(main)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(warnings) == 1
    assert "share of the quota" in warnings[0].getMessage()
    assert len(infos) == 1
    assert "back" in infos[0].getMessage()


def test_redis_down_without_fallback_raises_and_spends_nothing() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        client = fakeredis.FakeAsyncRedis(server=server)
        lim = limiter(client, fallback=False)
        loop = asyncio.get_running_loop()
        server.connected = False

        results = await asyncio.gather(
            lim.acquire(), lim.acquire(max_wait=10.0), return_exceptions=True
        )
        server.connected = True
        await lim.acquire()

        assert all(isinstance(result, LimiterBackendError) for result in results)
        assert "nothing was sent" in str(results[0])
        assert loop.time() == pytest.approx(0.0, abs=EPS)  # nothing was reserved while it failed
        await lim.aclose()
        await client.aclose()

    virtual(main)


def test_closing_fails_queued_calls_and_leaves_no_task_behind() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        client = fakeredis.FakeAsyncRedis(server=server)
        lim = limiter(client)
        await lim.acquire()
        waiting = asyncio.create_task(lim.acquire())
        await asyncio.sleep(0.1)
        lim.rate_limited(1.0)

        await lim.aclose()

        with pytest.raises(SessionClosedError):
            await waiting
        with pytest.raises(SessionClosedError):
            await lim.acquire()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        assert not others
        await client.aclose()

    virtual(main)


def test_the_limiter_is_a_rate_limiter_with_a_readable_repr() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        client = fakeredis.FakeAsyncRedis(server=server)
        lim = limiter(client, key_prefix="shop")

        assert isinstance(lim, RateLimiter)
        assert lim.redis_key == "shop:limiter:merchant-1:cancel-item"
        assert "shop:limiter:merchant-1:cancel-item" in repr(lim)
        assert lim.stats().current_rate == pytest.approx(1 / G, rel=1e-5)
        await client.aclose()

    virtual(main)


async def test_the_registry_keeps_one_limiter_per_key_and_never_closes_a_callers_client() -> None:
    client = fakeredis.FakeAsyncRedis()
    registry = RedisLimiterRegistry(client, key_prefix="shop")

    cancel = registry.get("m", RouteGroup.CANCEL_ITEM, QUOTA)
    again = registry.get("m", RouteGroup.CANCEL_ITEM, Quota(60, 60.0))
    reads = registry.get("m", RouteGroup.TRADES_READ, QUOTA)
    await cancel.acquire()
    await registry.aclose()
    await registry.aclose()

    assert cancel is again
    assert reads is not cancel
    assert isinstance(cancel, RedisLimiter)
    assert cancel.redis_key == "shop:limiter:m:cancel-item"
    assert await client.ping()  # still open: it is the caller's
    with pytest.raises(SessionClosedError):
        registry.get("m", RouteGroup.CANCEL_ITEM, QUOTA)
    await client.aclose()


def test_the_registry_refuses_what_is_not_a_redis_client() -> None:
    # Issue 18, seam 7: every bad argument is a ConfigurationError (it was a TypeError).
    with pytest.raises(ConfigurationError, match="redis"):
        RedisLimiterRegistry(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {"key_prefix": ""},
        {"timeout": 0},
        {"timeout": float("nan")},
        {"heartbeat": -1.0},
        {"recheck_after": True},
        {"max_processes": 0},
        {"max_processes": 2.5},
    ],
)
def test_every_bad_registry_argument_is_a_configuration_error(options: dict[str, Any]) -> None:
    client = fakeredis.FakeAsyncRedis()
    with pytest.raises(ConfigurationError):
        RedisLimiterRegistry(client, **options)


@pytest.mark.parametrize("options", [{"timeout": -1.0}, {"heartbeat": 0}, {"max_pause": -1.0}])
def test_every_bad_limiter_argument_is_a_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RedisLimiter(fakeredis.FakeAsyncRedis(), "m", RouteGroup.CANCEL_ITEM, QUOTA, **options)


async def test_clear_cancels_the_workers() -> None:
    client = fakeredis.FakeAsyncRedis()
    registry = RedisLimiterRegistry(client)
    lim = registry.get("m", RouteGroup.CANCEL_ITEM, QUOTA, latency_margin=0.0)
    await lim.acquire()
    waiting = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0.01)

    registry.clear()

    with pytest.raises(SessionClosedError):
        await waiting
    assert registry.get("m", RouteGroup.CANCEL_ITEM, QUOTA) is not lim
    await registry.aclose()
    await client.aclose()


async def test_a_session_with_redis_uses_it_and_leaves_the_callers_client_open() -> None:
    client = fakeredis.FakeAsyncRedis()
    session = AssetPaySession(cancel_quota=QUOTA, merchant_id="m", limiter=client)
    lim = session._requester.limiter("m", RouteGroup.CANCEL_ITEM)

    await lim.acquire()
    await session.aclose()

    assert isinstance(lim, RedisLimiter)
    assert await client.exists("assetpay:limiter:m:cancel-item") == 1
    assert await client.ping()
    await client.aclose()
