"""The Redis limiter through outages on fakeredis[lua] and virtual time: never more than N in a window.

Each "process" is a [`RedisLimiter`][assetpay_async.redis_limiter.RedisLimiter] with its own client on one
fake server; the limiters pass the loop's (virtual) clock to the scripts, so Redis time and the loop agree
and schedules are exact. Redis goes away by refusing connections (``server.connected = False``), by losing
its data on the way back (``flushall``), or by hanging (a client whose calls never answer while frozen).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import fakeredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from assetpay_async import LimiterBackendError, QueueTimeoutError
from assetpay_async._limiting import MemoryLimiterRegistry
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async._redis_scripts import FIRST_CALL_TIMEOUTS, GcraScript
from assetpay_async.redis_limiter import (
    DEFAULT_MAX_PAUSE_PERIODS,
    RedisLimiter,
    RedisLimiterRegistry,
)
from assetpay_async.testing import run_virtual

QUOTA = Quota(10, 9.0)
"""With no latency margin: one grant every 1 s; alone in a window of 9 s, 10 grants."""


class FreezableRedis(fakeredis.FakeAsyncRedis):
    """A fake client whose commands hang, answering nothing, until ``thawed`` is set (like SIGSTOP)."""

    thawed: asyncio.Event | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if FreezableRedis.thawed is not None:
            await FreezableRedis.thawed.wait()
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


class FlakyRedis(fakeredis.FakeAsyncRedis):
    """A fake client of its own process: its connection can fail while other processes' do not."""

    down = False

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.down:
            raise RedisConnectionError("connection refused (test)")
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


def limiter(client: fakeredis.FakeAsyncRedis, quota: Quota = QUOTA, **options: Any) -> RedisLimiter:
    options.setdefault("latency_margin", 0.0)
    options.setdefault("clock", asyncio.get_running_loop().time)
    return RedisLimiter(client, "merchant-1", RouteGroup.CANCEL_ITEM, quota, **options)


def most_in_window(times: list[float], window: float = QUOTA.period_seconds) -> int:
    times = sorted(times)
    return max((bisect.bisect_right(times, t + window) - i for i, t in enumerate(times)), default=0)


async def busy(lim: RedisLimiter, until: float, times: list[float]) -> None:
    """Keep ``lim`` busy (a queue of five) until ``until``; record every grant's time."""
    loop = asyncio.get_running_loop()

    async def caller() -> None:
        while loop.time() < until:
            await lim.acquire()
            times.append(loop.time())

    await asyncio.gather(*(caller() for _ in range(5)))


def virtual(test: Callable[[fakeredis.FakeServer], Coroutine[Any, Any, None]]) -> None:
    try:
        run_virtual(test(fakeredis.FakeServer()))
    finally:
        FreezableRedis.thawed = None


async def outage(
    server: fakeredis.FakeServer, *, down_at: float, up_at: float, lose_data: bool
) -> None:
    await asyncio.sleep(down_at - asyncio.get_running_loop().time())
    server.connected = False
    await asyncio.sleep(up_at - down_at)
    server.connected = True
    if lose_data:
        await fakeredis.FakeAsyncRedis(server=server).flushall()


def test_processes_that_get_redis_back_one_after_the_other_keep_to_their_shares_meanwhile() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        # N = 30 per 9 s: a process back on Redis alone would take a grant every 0.31 s, next to the
        # other's local grants every 0.64 s; 3 s of that put 31 into a window (measured without the settle).
        quota = Quota(30, 9.0)
        clients = [FlakyRedis(server=server) for _ in range(2)]
        first, second = (limiter(client, quota) for client in clients)
        times: list[float] = []

        async def outage() -> None:
            await asyncio.sleep(15.0)
            for client in clients:
                client.down = True
            await asyncio.sleep(15.0)
            await fakeredis.FakeAsyncRedis(server=server).flushall()  # restarted empty
            clients[0].down = False
            await asyncio.sleep(3.0)  # the second process finds its way back 3 s later
            clients[1].down = False

        await asyncio.gather(busy(first, 60.0, times), busy(second, 60.0, times), outage())

        assert most_in_window(times) <= quota.limit
        assert first.local_granted > 0
        assert second.local_granted > 0
        for lim in (first, second):
            await lim.aclose()

    virtual(main)


@pytest.mark.parametrize("lose_data", [True, False], ids=["restarted-empty", "state-kept"])
def test_two_processes_through_an_outage_never_put_more_than_n_in_a_window(
    lose_data: bool,
) -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        first, second = (limiter(fakeredis.FakeAsyncRedis(server=server)) for _ in range(2))
        times: list[list[float]] = [[], []]

        await asyncio.gather(
            busy(first, 60.0, times[0]),
            busy(second, 60.0, times[1]),
            outage(server, down_at=15.0, up_at=30.0, lose_data=lose_data),
        )

        everything = times[0] + times[1]
        assert most_in_window(everything) <= QUOTA.limit
        assert (first.peers, second.peers) == (2, 2)
        assert first.local_granted > 0
        assert second.local_granted > 0
        outage_grants = [t for t in everything if 15.0 <= t < 30.0]
        assert len(outage_grants) >= 10  # the shares kept cancelling: 5 per 9 s each
        assert not first.degraded
        assert not second.degraded
        for lim in (first, second):
            await lim.aclose()

    virtual(main)


@pytest.mark.parametrize("lose_data", [True, False], ids=["restarted-empty", "thawed"])
def test_two_processes_through_a_hanging_redis_never_put_more_than_n_in_a_window(
    lose_data: bool,
) -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        first, second = (limiter(FreezableRedis(server=server)) for _ in range(2))
        times: list[float] = []

        async def hang() -> None:
            await asyncio.sleep(15.0)
            thawed = FreezableRedis.thawed = asyncio.Event()
            await asyncio.sleep(15.0)
            if lose_data:
                await fakeredis.FakeAsyncRedis(server=server).flushall()
            thawed.set()
            FreezableRedis.thawed = None

        await asyncio.gather(busy(first, 60.0, times), busy(second, 60.0, times), hang())

        assert most_in_window(times) <= QUOTA.limit
        assert first.local_granted > 0
        assert second.local_granted > 0
        assert len([t for t in times if 15.0 <= t < 30.0]) >= 8
        for lim in (first, second):
            await lim.aclose()

    virtual(main)


def test_one_process_hands_its_queue_back_to_redis_without_a_second_stream() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        lim = limiter(fakeredis.FakeAsyncRedis(server=server))
        loop = asyncio.get_running_loop()
        times: list[float] = []

        async def one() -> None:
            await lim.acquire()
            times.append(loop.time())

        calls = [asyncio.create_task(one()) for _ in range(60)]
        await outage(server, down_at=5.0, up_at=12.0, lose_data=True)
        await asyncio.gather(*calls)

        assert most_in_window(times) <= QUOTA.limit
        assert lim.local_granted > 0
        assert all(later > earlier for earlier, later in itertools.pairwise(times))
        await lim.aclose()

    virtual(main)


def test_a_hanging_redis_is_given_up_on_after_the_timeout_and_the_share_takes_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="assetpay_async.redis_limiter")

    async def main(server: fakeredis.FakeServer) -> None:
        lim = limiter(FreezableRedis(server=server), timeout=0.5)
        loop = asyncio.get_running_loop()
        await lim.acquire()
        FreezableRedis.thawed = asyncio.Event()

        await lim.acquire()
        granted_at = loop.time()
        FreezableRedis.thawed.set()

        assert lim.degraded
        # 1 s after the first grant the slot was due; the call hung 0.5 s; then one interval (P = 1).
        assert granted_at == pytest.approx(0.5 + 1.0, abs=1e-3)
        await lim.aclose()

    virtual(main)
    assert any("TimeoutError" in record.getMessage() for record in caplog.records)


def test_a_hanging_redis_without_fallback_raises_after_the_timeout_and_sends_nothing() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        lim = limiter(FreezableRedis(server=server), timeout=0.5, fallback=False)
        loop = asyncio.get_running_loop()
        FreezableRedis.thawed = asyncio.Event()

        with pytest.raises(LimiterBackendError, match="nothing was sent"):
            await lim.acquire()

        # The first call (no round trip measured yet) may take FIRST_CALL_TIMEOUTS x the timeout.
        assert loop.time() == pytest.approx(FIRST_CALL_TIMEOUTS * 0.5, abs=1e-3)
        assert lim.stats().granted == 0
        FreezableRedis.thawed.set()
        await lim.aclose()

    virtual(main)


def test_a_pause_is_taken_as_given_and_redis_believes_a_stored_one_up_to_the_bound() -> None:
    """CONTRACTS C3: the requester bounds Retry-After; the limiter keeps no second cap of its own.

    What another process stores is still believed only up to ``max_pause`` by the acquire script.
    """

    async def main(server: fakeredis.FakeServer) -> None:
        client = fakeredis.FakeAsyncRedis(server=server)
        pausing, other = limiter(client), limiter(client)
        loop = asyncio.get_running_loop()
        bound = DEFAULT_MAX_PAUSE_PERIODS * QUOTA.period_seconds
        await pausing.acquire()

        pausing.rate_limited(2 * bound)
        await asyncio.sleep(0.01)
        stored = int(await client.hget(pausing.redis_key, "paused") or 0)
        await other.acquire()

        assert pausing.stats().paused_for == pytest.approx(2 * bound - loop.time(), abs=0.02)
        assert stored == pytest.approx((2 * bound + 0.01) * 1e6, abs=20_000)
        assert loop.time() == pytest.approx(bound, abs=0.02)  # the other believed the bound
        await pausing.aclose()
        await other.aclose()

    virtual(main)


def test_a_restarted_process_is_not_held_by_a_pause_stored_for_decades() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        client = fakeredis.FakeAsyncRedis(server=server)
        loop = asyncio.get_running_loop()
        lim = limiter(client)
        # What an older client wrote after a Retry-After of 31 years.
        await GcraScript(client, interval=1.0, clock=loop.time).pause(lim.redis_key, 1e9)

        await lim.acquire()

        assert loop.time() == pytest.approx(DEFAULT_MAX_PAUSE_PERIODS * QUOTA.period_seconds)
        await lim.aclose()

    virtual(main)


@pytest.mark.parametrize("retry_after", [float("inf"), float("nan"), -1.0, None])
def test_a_retry_after_that_is_no_number_of_seconds_pauses_one_period(
    retry_after: float | None,
) -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        lim = limiter(fakeredis.FakeAsyncRedis(server=server))

        lim.rate_limited(retry_after)

        assert lim.stats().paused_for == pytest.approx(QUOTA.period_seconds)
        await lim.aclose()

    virtual(main)


def test_a_configured_max_pause_bounds_what_is_believed_of_a_stored_pause() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        client = fakeredis.FakeAsyncRedis(server=server)
        pausing, other = limiter(client), limiter(client, max_pause=2.0)
        loop = asyncio.get_running_loop()

        pausing.rate_limited(3600.0)
        await asyncio.sleep(0)
        await other.acquire()

        assert pausing.stats().paused_for == pytest.approx(3600.0, abs=2.1)
        assert loop.time() == pytest.approx(2.0, abs=0.02)
        pausing.abandon()
        await other.aclose()

    virtual(main)


async def test_the_registry_is_its_own_class_and_passes_its_options_on() -> None:
    client = fakeredis.FakeAsyncRedis()
    registry = RedisLimiterRegistry(client, key_prefix="shop", max_pause=3.0, heartbeat=0.5)

    lim = registry.get("m", RouteGroup.CANCEL_ITEM, QUOTA, latency_margin=0.0)
    assert isinstance(lim, RedisLimiter)
    await lim.acquire()
    lim.rate_limited(60.0)
    await asyncio.sleep(0.05)  # the pause reaches Redis
    loop = asyncio.get_running_loop()
    start = loop.time()
    other = RedisLimiterRegistry(client, key_prefix="shop", max_pause=0.3)
    await other.get("m", RouteGroup.CANCEL_ITEM, QUOTA, latency_margin=0.0).acquire()

    # not an in-memory registry in disguise
    assert MemoryLimiterRegistry not in type(registry).__mro__
    assert lim.peers_key == "shop:peers:m:cancel-item"
    assert lim.stats().paused_for == pytest.approx(60.0, abs=0.5)  # taken as given (C3)
    assert loop.time() - start < 1.0  # max_pause passed on: the stored 60 s believed up to 0.3 s
    await other.aclose()
    await registry.aclose()
    await client.aclose()


class CancelSwallowingRedis(fakeredis.FakeAsyncRedis):
    """A client whose commands swallow a cancellation that arrives mid-command, as redis-py 5.x did."""

    slow = False

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.slow:
            with contextlib.suppress(
                asyncio.CancelledError
            ):  # the bug survived: the cancellation is lost
                await asyncio.sleep(0.5)
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


def test_aclose_ends_even_when_the_client_swallows_the_heartbeats_cancellation() -> None:
    """Regression: with redis 5.3 the heartbeat lost its cancellation and aclose() waited forever."""

    async def main(server: fakeredis.FakeServer) -> None:
        client = CancelSwallowingRedis(server=server)
        lim = limiter(client)
        await lim.acquire()  # starts the worker and the heartbeat
        client.slow = True
        await asyncio.sleep(1.2)  # the heartbeat is now inside a (slow) command
        beat = lim._beat
        assert beat is not None
        closing = asyncio.ensure_future(lim.aclose())
        done, _ = await asyncio.wait({closing}, timeout=30.0)
        client.slow = False
        while (
            not beat.done()
        ):  # without the fix, end the stuck heartbeat so the test can fail cleanly
            beat.cancel()
            await asyncio.sleep(0.1)
        await asyncio.gather(closing, return_exceptions=True)
        assert done, "aclose() was still waiting for the heartbeat after 30 s"

    virtual(main)


async def _calls_until(
    lim: RedisLimiter, until: float, times: list[float], errors: list[str]
) -> None:
    """Callers with a queue wait of 3 s (the session's ``max_queue_wait``) until ``until``."""
    loop = asyncio.get_running_loop()

    async def caller() -> None:
        while loop.time() < until:
            try:
                await lim.acquire(max_wait=3.0)
            except QueueTimeoutError:
                errors.append("timeout")
                await asyncio.sleep(0.5)  # refused at once when no slot is due within 3 s
            else:
                times.append(loop.time())

    await asyncio.gather(*(caller() for _ in range(3)))


def test_processes_that_start_during_an_outage_wait_for_redis_instead_of_granting_alone() -> None:
    """Regression (issue 20): 4 processes started while Redis was down each granted the full N."""

    async def main(server: fakeredis.FakeServer) -> None:
        server.connected = False
        lims = [limiter(fakeredis.FakeAsyncRedis(server=server)) for _ in range(4)]
        times: list[float] = []
        errors: list[str] = []

        async def back_at(when: float) -> None:
            await asyncio.sleep(when)
            server.connected = True

        await asyncio.gather(
            *(_calls_until(lim, 30.0, times, errors) for lim in lims), back_at(12.0)
        )

        assert min(times) >= 12.0  # nothing granted before Redis was there to count the peers
        assert errors  # the callers waited within their max_wait, then gave up (typed)
        assert sum(lim.local_granted for lim in lims) == 0
        assert most_in_window(times) <= QUOTA.limit
        for lim in lims:
            await lim.aclose()

    virtual(main)


def test_with_max_processes_a_process_started_during_an_outage_grants_its_share() -> None:
    async def main(server: fakeredis.FakeServer) -> None:
        server.connected = False
        lims = [limiter(fakeredis.FakeAsyncRedis(server=server), max_processes=4) for _ in range(4)]
        times: list[float] = []
        errors: list[str] = []

        await asyncio.gather(*(_calls_until(lim, 30.0, times, errors) for lim in lims))

        assert all(lim.local_granted > 0 for lim in lims)
        assert most_in_window(times) <= QUOTA.limit
        for lim in lims:
            await lim.aclose()

    virtual(main)
