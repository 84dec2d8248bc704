"""The queue: FIFO under contention, cancellation, max_wait, one timer, loop independence, clock, stats."""

from __future__ import annotations

import asyncio
import threading

import pytest

from assetpay_async._errors import ConfigurationError, QueueTimeoutError
from assetpay_async._limiting import MemoryLimiter, MemoryLimiterRegistry
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.testing import run_virtual
from tests.support.limiter import (
    KEY,
    Grants,
    acquire_as,
    make_limiter,
    max_in_window,
    pending_timers,
)

G60 = 61 / 59  # the even interval of 60 per minute with J = 1 s (before the 1e-6 float guard)


def test_fifo_under_contention_with_staggered_arrivals() -> None:
    async def main() -> tuple[list[str], list[str]]:
        limiter = make_limiter(10, 60.0)
        grants = Grants()
        arrivals: list[str] = []

        async def arrive(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            arrivals.append(name)
            await acquire_as(limiter, name, grants)

        delays = [(i * 7919) % 97 / 10 for i in range(60)]  # scattered over ~10 s, many ties broken
        await asyncio.gather(*(arrive(f"c{i}", d) for i, d in enumerate(delays)))
        return arrivals, grants.names

    arrivals, granted = run_virtual(main())
    assert granted == arrivals
    assert len(granted) == 60


def test_a_newcomer_never_takes_the_slot_of_the_queued_head() -> None:
    """C arrives exactly when B (queued since 0) is due, its timer registered first: B still goes first."""

    async def main() -> list[str]:
        limiter = MemoryLimiter(KEY, Quota(2, 1.0), latency_margin=0.0)
        grants = Grants()
        interval = limiter.pacing.interval

        async def late() -> None:
            await asyncio.sleep(interval)
            await acquire_as(limiter, "C", grants)

        newcomer = asyncio.create_task(late())
        await asyncio.sleep(0)
        await asyncio.gather(
            acquire_as(limiter, "A", grants),
            acquire_as(limiter, "B", grants),
            acquire_as(limiter, "D", grants),
            newcomer,
        )
        return grants.names

    assert run_virtual(main()) == ["A", "B", "D", "C"]


def test_cancelling_a_queued_waiter_spends_nothing() -> None:
    async def main() -> tuple[Grants, int]:
        limiter = make_limiter()
        grants = Grants()
        tasks = [asyncio.create_task(acquire_as(limiter, n, grants)) for n in "ABCD"]
        await asyncio.sleep(0.5)
        tasks[2].cancel()  # C, in the middle of the queue
        await asyncio.sleep(0)
        queued = limiter.stats().queued
        await asyncio.gather(*tasks, return_exceptions=True)
        assert tasks[2].cancelled()
        return grants, queued

    grants, queued_after_cancel = run_virtual(main())
    assert queued_after_cancel == 2
    assert grants.names == ["A", "B", "D"]
    assert grants.times == pytest.approx([0.0, G60, 2 * G60], rel=1e-5)


def test_cancelling_the_head_hands_its_turn_to_the_next() -> None:
    async def main() -> Grants:
        limiter = make_limiter()
        grants = Grants()
        tasks = [asyncio.create_task(acquire_as(limiter, n, grants)) for n in "ABC"]
        await asyncio.sleep(0.5)
        tasks[1].cancel()  # B, the head of the queue
        await asyncio.gather(*tasks, return_exceptions=True)
        return grants

    grants = run_virtual(main())
    assert grants.names == ["A", "C"]
    assert grants.times == pytest.approx([0.0, G60], rel=1e-5)


def test_a_waiter_cancelled_right_after_its_grant_hands_the_slot_on() -> None:
    """B is granted, then cancelled before it runs: C gets the same instant, and B's grant is not counted."""

    async def main() -> tuple[Grants, int]:
        limiter = make_limiter()
        grants = Grants()
        interval = limiter.pacing.interval
        b: asyncio.Task[float] | None = None

        async def canceller() -> None:
            await asyncio.sleep(
                interval
            )  # its timer fires just before the limiter's at the same time
            assert b is not None
            b.cancel()

        killer = asyncio.create_task(canceller())
        await asyncio.sleep(0)
        a = asyncio.create_task(acquire_as(limiter, "A", grants))
        b = asyncio.create_task(acquire_as(limiter, "B", grants))
        c = asyncio.create_task(acquire_as(limiter, "C", grants))
        await asyncio.gather(a, b, c, killer, return_exceptions=True)
        assert b.cancelled()
        return grants, limiter.stats().granted

    grants, granted = run_virtual(main())
    assert grants.names == ["A", "C"]
    assert grants.times == pytest.approx([0.0, G60], rel=1e-5)
    assert granted == 2


def test_everyone_cancelled_leaves_a_clean_limiter() -> None:
    async def main() -> tuple[float, int]:
        limiter = make_limiter()
        loop = asyncio.get_running_loop()
        await limiter.acquire()
        tasks = [asyncio.create_task(limiter.acquire()) for _ in range(100)]
        await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert pending_timers(loop) == 0  # no timer left behind for nobody
        queued = limiter.stats().queued
        waited = await limiter.acquire()
        return waited, queued

    waited, queued = run_virtual(main())
    assert queued == 0
    assert waited == pytest.approx(G60 - 0.1, rel=1e-5)


def test_max_wait_fails_at_once_when_the_position_makes_it_impossible() -> None:
    async def main() -> Grants:
        limiter = make_limiter()
        grants = Grants()
        first = [asyncio.create_task(acquire_as(limiter, n, grants)) for n in "AB"]
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        with pytest.raises(QueueTimeoutError) as caught:
            await limiter.acquire(max_wait=1.5 * G60)  # second in line: due at 2 * G60
        assert caught.value.waited == 0.0
        assert loop.time() == 0.0
        assert "1 call(s) ahead" in str(caught.value)
        last = asyncio.create_task(acquire_as(limiter, "D", grants))
        await asyncio.gather(*first, last)
        return grants

    grants = run_virtual(main())
    assert grants.names == ["A", "B", "D"]
    assert grants.times == pytest.approx([0.0, G60, 2 * G60], rel=1e-5)


def test_max_wait_times_out_while_waiting_when_a_pause_intervenes() -> None:
    async def main() -> tuple[Grants, float, float]:
        limiter = make_limiter()
        grants = Grants()
        loop = asyncio.get_running_loop()
        await acquire_as(limiter, "A", grants)
        bounded = asyncio.create_task(acquire_as(limiter, "B", grants, max_wait=5.0))
        behind = asyncio.create_task(acquire_as(limiter, "C", grants))
        await asyncio.sleep(0.5)
        limiter.rate_limited(30.0)
        with pytest.raises(QueueTimeoutError) as caught:
            await bounded
        timed_out_at = loop.time()
        await behind
        return grants, caught.value.waited, timed_out_at

    grants, waited, timed_out_at = run_virtual(main())
    assert timed_out_at == pytest.approx(5.0)
    assert waited == pytest.approx(5.0)
    assert grants.names == ["A", "C"]
    assert grants.times == pytest.approx([0.0, 30.5])


def test_max_wait_exactly_reaching_the_grant_is_granted() -> None:
    async def main() -> float:
        limiter = make_limiter()
        await limiter.acquire()
        return await limiter.acquire(max_wait=limiter.pacing.interval)

    assert run_virtual(main()) == pytest.approx(G60, rel=1e-5)


def test_max_wait_zero_takes_only_an_immediate_grant() -> None:
    async def main() -> float:
        limiter = make_limiter()
        waited = await limiter.acquire(max_wait=0)
        with pytest.raises(QueueTimeoutError):
            await limiter.acquire(max_wait=0)
        return waited

    assert run_virtual(main()) == 0.0


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_max_wait_must_be_a_non_negative_number(bad: float) -> None:
    async def main() -> None:
        await make_limiter().acquire(max_wait=bad)

    with pytest.raises(ConfigurationError):
        run_virtual(main())


def test_one_timer_for_any_number_of_waiters() -> None:
    async def main() -> tuple[int, int]:
        limiter = make_limiter()
        loop = asyncio.get_running_loop()
        tasks = [asyncio.create_task(limiter.acquire()) for _ in range(2000)]
        await asyncio.sleep(0)
        scheduled = pending_timers(loop)
        queued = limiter.stats().queued
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return scheduled, queued

    scheduled, queued = run_virtual(main())
    assert queued == 1999
    assert scheduled == 1


def test_the_same_limiter_works_across_two_virtual_runs() -> None:
    """A new virtual loop restarts its clock at 0: the limiter treats the jump back as no time at all."""
    limiter = make_limiter()

    async def burst(calls: int) -> list[float]:
        return [await limiter.acquire() for _ in range(calls)]

    first = run_virtual(burst(3))
    second = run_virtual(burst(2))
    assert first == pytest.approx([0.0, G60, G60], rel=1e-5)
    assert second == pytest.approx([G60, G60], rel=1e-5)
    assert limiter.stats().granted == 5


def test_the_same_limiter_works_across_two_asyncio_runs() -> None:
    """Real loops, wall clock: a fast quota (one grant a millisecond) keeps the test at a few ms."""
    limiter = MemoryLimiter(KEY, Quota(1001, 1.0), latency_margin=0.0)

    async def burst() -> None:
        for _ in range(3):
            await limiter.acquire()

    asyncio.run(burst())
    asyncio.run(burst())
    assert limiter.stats().granted == 6


def test_two_threads_with_their_own_loops_share_one_schedule() -> None:
    """Issue 12: two threads, each with its own event loop, of one merchant. Real time, a scaled quota."""
    n, period, margin = 20, 0.5, 0.1  # one grant every 31.6 ms
    registry = MemoryLimiterRegistry()
    grants: dict[str, list[tuple[int, float]]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    async def main(name: str) -> None:
        limiter = registry.get(
            "m1", RouteGroup.CANCEL_ITEM, Quota(n, period), latency_margin=margin
        )
        loop = asyncio.get_running_loop()

        async def call(index: int) -> None:
            await asyncio.sleep(index * 0.001)  # arrival order = index
            await limiter.acquire()
            grants[name].append((index, loop.time()))

        await asyncio.gather(*(call(i) for i in range(12)))

    def thread(name: str) -> None:
        try:
            asyncio.run(main(name))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(name,)) for name in grants]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert errors == []
    # loop.time() is time.monotonic() in both threads. The times are taken when each task resumes, a little
    # after its grant (by how much depends on the machine's load): J = 0.1 s leaves room for that spread.
    times = sorted(t for g in grants.values() for _, t in g)
    assert len(times) == 24
    assert max_in_window(times, period) <= n  # never more than N in a window, across the threads
    for g in grants.values():  # first in, first out within each loop
        assert [index for index, _ in g] == list(range(12))
    limiter = registry.get("m1", RouteGroup.CANCEL_ITEM, Quota(n, period), latency_margin=margin)
    assert limiter.stats().granted == 24


def test_an_injected_clock_drives_the_schedule() -> None:
    """Deadlines are kept on the injected clock; here it runs a million seconds ahead of the loop."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        limiter = MemoryLimiter(
            KEY, Quota(10, 60.0), latency_margin=1.0, clock=lambda: 1e6 + loop.time()
        )
        grants = Grants()
        await asyncio.gather(*(acquire_as(limiter, str(i), grants) for i in range(3)))
        return grants.times

    assert run_virtual(main()) == pytest.approx([0.0, 61 / 9, 122 / 9], rel=1e-5)


def test_pause_is_measured_on_the_injected_clock_without_a_loop() -> None:
    now = [100.0]
    limiter = MemoryLimiter(KEY, Quota(60, 60.0), clock=lambda: now[0])
    limiter.rate_limited(30.0)
    now[0] = 110.0
    assert limiter.stats().paused_for == pytest.approx(20.0)
    now[0] = 200.0
    assert limiter.stats().paused_for == 0.0


def test_stats_count_grants_queue_and_wait_percentiles() -> None:
    async def main() -> None:
        limiter = make_limiter(10, 60.0)
        tasks = [asyncio.create_task(limiter.acquire()) for _ in range(101)]
        await asyncio.sleep(0)
        during = limiter.stats()
        assert during.queued == 100
        assert during.granted == 1
        await asyncio.gather(*tasks)
        after = limiter.stats()
        interval = 61 / 9
        assert after.granted == 101
        assert after.queued == 0
        assert after.waited_p50 == pytest.approx(50 * interval, rel=1e-5)
        assert after.waited_p99 == pytest.approx(99 * interval, rel=1e-5)
        assert after.current_rate == pytest.approx(1 / interval, rel=1e-5)
        assert after.paused_for == 0.0
        assert (after.rate_limited, after.pauses) == (0, 0)
        assert (after.merchant_id, after.group) == (KEY.merchant_id, KEY.group)
        assert "queued=0" in repr(limiter)
        assert "granted=101" in repr(limiter)

    run_virtual(main())


def test_a_loop_closed_with_a_waiter_still_queued_does_not_break_the_limiter() -> None:
    """The loop closes without cancelling a waiter: reports arriving later must not touch that loop, and
    the next loop takes the limiter over with the schedule intact."""
    limiter = make_limiter()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(limiter.acquire())
    stranded = limiter.acquire()
    loop.call_soon(
        stranded.send, None
    )  # runs up to its wait, inside the loop, with no task around it
    loop.run_until_complete(asyncio.sleep(0))
    limiter.rate_limited(0.0)  # slowed down, so that succeeded() changes the rate and re-arms
    loop.close()
    limiter.succeeded()
    limiter.rate_limited(0.5)
    assert limiter.stats().queued == 1  # counted until a new loop takes the limiter over
    # The first loop's real clock ran on for a few microseconds after the first grant.
    assert run_virtual(limiter.acquire()) == pytest.approx(G60, abs=0.05)
    assert limiter.stats().queued == 0
    stranded.close()


def test_an_unknown_policy_is_a_typed_error_naming_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"'even', 'strict'.*'burst'"):
        MemoryLimiter(KEY, Quota(60, 60.0), policy="burst")
