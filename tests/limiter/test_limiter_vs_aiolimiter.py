"""The central fact, measured on virtual time, and the aiolimiter behaviours that made us write our own queue.

If an aiolimiter release changes one of these facts, the test fails and ``docs/limiter.md`` needs a look.
"""

from __future__ import annotations

import asyncio

import pytest
from aiolimiter import AsyncLimiter

from assetpay_async._limiting import MemoryLimiter, RateLimiter
from assetpay_async._quota import Quota
from assetpay_async.testing import run_virtual
from tests.limiter.test_limiter_drift import LateTimerLoop
from tests.support.limiter import KEY, make_limiter, max_in_window


async def _grant_times(limiter: AsyncLimiter | RateLimiter, calls: int) -> list[float]:
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        times.append(loop.time())

    await asyncio.gather(*(call() for _ in range(calls)))
    return times


def test_async_limiter_60_60_grants_119_in_the_first_minute_ours_59_in_any_61_s() -> None:
    theirs = run_virtual(_grant_times(AsyncLimiter(60, 60), 300))
    ours = run_virtual(_grant_times(make_limiter(60, 60.0), 300))

    assert sum(t < 60 for t in theirs) == 119  # a full bucket of 60, then one a second
    assert max_in_window(theirs, 60.0) == 119  # 2N - 1: any windowed server answers 429
    assert max_in_window(theirs, 61.0) == 120

    assert sum(t < 60 for t in ours) == 59
    assert max_in_window(ours, 61.0) == 59  # N - 1 in any T + J
    assert max_in_window(ours, 60.0) == 59
    assert (len(ours) - 1) / ours[-1] == pytest.approx(59 / 61, rel=1e-5)  # 96.7 % of 60/min


def test_aiolimiter_lets_a_newcomer_take_the_slot_of_a_queued_waiter() -> None:
    """The same schedule as our FIFO test: B and D queue at 0, C arrives when B is due."""

    async def main(limiter: AsyncLimiter | RateLimiter) -> list[str]:
        names: list[str] = []

        async def call(name: str, delay: float = 0.0) -> None:
            if delay:
                await asyncio.sleep(delay)
            await limiter.acquire()
            names.append(name)

        newcomer = asyncio.create_task(call("C", delay=1.0))
        await asyncio.sleep(0)
        await asyncio.gather(call("A"), call("B"), call("D"), newcomer)
        return names

    assert run_virtual(main(AsyncLimiter(1, 1.0))) == ["A", "C", "D", "B"]
    assert run_virtual(main(MemoryLimiter(KEY, Quota(2, 1.0), latency_margin=0.0))) == [
        "A",
        "B",
        "D",
        "C",
    ]


def test_aiolimiter_warns_when_a_second_loop_reuses_it() -> None:
    limiter = AsyncLimiter(1, 1.0)
    run_virtual(limiter.acquire())
    with pytest.warns(RuntimeWarning, match="re-used across loops"):
        run_virtual(limiter.acquire())


def test_with_late_timers_aiolimiter_drifts_and_ours_keeps_the_grid() -> None:
    """Timers 0.7 ms late at one grant every 2 ms: a capacity-1 bucket loses the lateness at every grant."""
    interval = 0.002

    async def rate(limiter: AsyncLimiter | RateLimiter) -> float:
        times = await _grant_times(limiter, 300)
        return (len(times) - 1) / (times[-1] - times[0]) * interval

    def run_late(limiter: AsyncLimiter | RateLimiter) -> float:
        with asyncio.Runner(loop_factory=lambda: LateTimerLoop(lambda _: 0.0007)) as runner:
            return runner.run(rate(limiter))

    theirs = run_late(AsyncLimiter(1, interval))
    ours = run_late(MemoryLimiter(KEY, Quota(501, 1.0), latency_margin=0.0))
    assert theirs == pytest.approx(interval / (interval + 0.0007), rel=0.01)  # 0.74 of the pacing
    assert ours > 0.998  # only the first wake-up's 0.7 ms is lost, once
