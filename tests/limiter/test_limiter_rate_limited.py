"""After a 429: a pause per (merchant, route group) that only moves forward, slowdown and recovery."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest

from assetpay_async._limiting import MemoryLimiter, MemoryLimiterRegistry
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.testing import run_virtual
from tests.support.limiter import KEY, Grants, acquire_as, gaps, make_limiter

G10 = 61 / 9  # the even interval of 10 per minute with J = 1 s


def test_a_429_pauses_every_waiter_then_the_even_pace_resumes() -> None:
    async def main() -> tuple[Grants, float, int]:
        limiter = make_limiter(10, 60.0)
        grants = Grants()
        tasks = [asyncio.create_task(acquire_as(limiter, n, grants)) for n in "ABC"]
        await asyncio.sleep(0.5)
        limiter.rate_limited(10.0)
        paused_for = limiter.stats().paused_for
        await asyncio.gather(*tasks)
        return grants, paused_for, limiter.stats().pauses

    grants, paused_for, pauses = run_virtual(main())
    assert paused_for == pytest.approx(10.0)
    assert pauses == 1
    assert grants.names == ["A", "B", "C"]
    # B waits out the pause; one 429 is no evidence of a lower quota: C follows at the full even pace.
    assert grants.times == pytest.approx([0.0, 10.5, 10.5 + G10], rel=1e-5)


def test_a_call_arriving_during_a_pause_waits_even_with_the_queue_empty() -> None:
    async def main() -> float:
        limiter = make_limiter(10, 60.0)
        limiter.rate_limited(5.0)
        return await limiter.acquire()

    assert run_virtual(main()) == pytest.approx(5.0)


def test_the_pause_deadline_only_moves_forward() -> None:
    async def main() -> None:
        limiter = make_limiter(10, 60.0)
        limiter.rate_limited(10.0)
        await asyncio.sleep(1.0)
        limiter.rate_limited(2.0)  # would end at 3 s: the pause keeps its end at 10 s
        assert limiter.stats().paused_for == pytest.approx(9.0)
        assert limiter.stats().pauses == 1
        limiter.rate_limited(20.0)  # ends at 21 s: extends
        assert limiter.stats().paused_for == pytest.approx(20.0)
        stats = limiter.stats()
        assert (stats.pauses, stats.rate_limited) == (2, 3)
        assert await limiter.acquire() == pytest.approx(20.0)

    run_virtual(main())


@pytest.mark.parametrize("retry_after", [None, float("inf"), float("nan")])
def test_without_a_usable_retry_after_the_pause_is_one_window(retry_after: float | None) -> None:
    limiter = MemoryLimiter(KEY, Quota(10, 45.0), clock=lambda: 0.0)
    limiter.rate_limited(retry_after)
    assert limiter.stats().paused_for == 45.0


def test_a_negative_retry_after_pauses_for_nothing() -> None:
    async def main() -> float:
        limiter = make_limiter(10, 60.0)
        limiter.rate_limited(-5.0)
        return await limiter.acquire()

    assert run_virtual(main()) == 0.0


def test_the_pause_is_per_merchant_and_route_group() -> None:
    async def main() -> dict[str, float]:
        registry = MemoryLimiterRegistry()
        quota = Quota(10, 60.0)
        paused = registry.get("m1", RouteGroup.CANCEL_ITEM, quota, latency_margin=1.0)
        same_merchant_other_group = registry.get(
            "m1", RouteGroup.TRADES_READ, quota, latency_margin=1.0
        )
        other_merchant = registry.get("m2", RouteGroup.CANCEL_ITEM, quota, latency_margin=1.0)
        paused.rate_limited(30.0)
        waits = await asyncio.gather(
            paused.acquire(),
            registry.get("m1", RouteGroup.CANCEL_ITEM, quota, latency_margin=1.0).acquire(),
            same_merchant_other_group.acquire(),
            other_merchant.acquire(),
        )
        return dict(
            zip(["paused", "paused again", "other group", "other merchant"], waits, strict=True)
        )

    waits = run_virtual(main())
    assert waits["paused"] == pytest.approx(30.0)
    assert waits["paused again"] == pytest.approx(30.0 + G10, rel=1e-5)
    assert waits["other group"] == 0.0
    assert waits["other merchant"] == 0.0


def test_429s_during_a_pause_belong_to_it_and_only_a_repeat_slows_down() -> None:
    async def main() -> None:
        limiter = make_limiter(10, 60.0)
        full = limiter.stats().current_rate
        await limiter.acquire()
        limiter.rate_limited(5.0)  # the first 429 despite pacing: a pause, no slowdown
        assert limiter.stats().current_rate == pytest.approx(full)
        limiter.rate_limited(5.0)  # another in-flight call answered 429 during the pause
        assert limiter.stats().current_rate == pytest.approx(full)
        await asyncio.sleep(6.0)
        limiter.rate_limited(5.0)  # pause over, but nothing granted since it began: same episode
        assert limiter.stats().current_rate == pytest.approx(full)
        await limiter.acquire()
        limiter.rate_limited(5.0)  # a 429 for a call sent after the pause, within a window: halve
        assert limiter.stats().current_rate == pytest.approx(full / 2)
        assert limiter.stats().rate_limited == 4

    run_virtual(main())


def test_a_429_a_window_after_the_last_one_pauses_without_slowing_down() -> None:
    async def main() -> None:
        limiter = make_limiter(10, 60.0)
        full = limiter.stats().current_rate
        await limiter.acquire()
        limiter.rate_limited(5.0)
        await asyncio.sleep(5.0 + 60.0)  # a whole clean window after the pause
        await limiter.acquire()
        limiter.rate_limited(5.0)
        assert limiter.stats().current_rate == pytest.approx(full)

    run_virtual(main())


def test_slowdown_has_a_floor_of_one_eighth() -> None:
    async def main() -> None:
        limiter = make_limiter(10, 60.0)
        full = limiter.stats().current_rate
        for _ in range(6):
            await limiter.acquire()
            limiter.rate_limited(0.0)
        assert limiter.stats().current_rate == pytest.approx(full / 8)

    run_virtual(main())


def test_each_clean_window_doubles_the_rate_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="assetpay_async.limiter")

    async def main() -> list[float]:
        limiter = make_limiter(10, 60.0)
        full = limiter.stats().current_rate
        for _ in range(4):  # down to 1/8
            await limiter.acquire()
            limiter.rate_limited(1.0)
        limiter.succeeded()  # an answer that is not a 429 changes nothing: recovery is by time
        await asyncio.sleep(1.0)  # the end of the pause: the clean windows start here
        rates = [limiter.stats().current_rate / full]
        for _ in range(4):
            await asyncio.sleep(60.0)
            rates.append(limiter.stats().current_rate / full)
        return rates

    assert run_virtual(main()) == pytest.approx([1 / 8, 1 / 4, 1 / 2, 1.0, 1.0])
    messages = [r.getMessage() for r in caplog.records if r.name == "assetpay_async.limiter"]
    assert "paused for 1.000s" in messages[0]
    assert "merchant-1/cancel-item" in messages[0]
    assert sum("slowing to" in m for m in messages) == 3
    assert "50% of configured" in next(m for m in messages if "slowing to" in m)


def _grants_after_429s(reports: list[float]) -> tuple[list[float], float]:
    """40 calls queued at 0 at 10/min; a 429 (Retry-After 10 s) reported at each of ``reports`` (seconds);
    returns the grant times and the end of the last pause."""

    async def main() -> tuple[list[float], float]:
        limiter = make_limiter(10, 60.0)
        grants = Grants()
        loop = asyncio.get_running_loop()
        ends: list[float] = []

        def report() -> None:
            limiter.rate_limited(10.0)
            ends.append(loop.time() + 10.0)

        for at in reports:
            loop.call_at(at, report)
        await asyncio.gather(*(acquire_as(limiter, str(i), grants) for i in range(40)))
        return grants.times, ends[-1]

    return run_virtual(main())


def test_one_429_never_takes_the_pace_below_the_even_rate() -> None:
    times, pause_end = _grants_after_429s([3 * G10 + 0.1])
    after = [t for t in times if t >= pause_end]
    assert after[0] == pytest.approx(pause_end)
    assert gaps(after) == pytest.approx([G10] * (len(after) - 1), rel=1e-5)


def test_a_repeated_429_halves_the_pace_for_one_window_after_its_pause_then_full_again() -> None:
    times, pause_end = _grants_after_429s([3 * G10 + 0.1, 3 * G10 + 10.2])  # 0.1 s after the pause
    after = [t for t in times if t >= pause_end]
    slow = [g for t, g in zip(after, gaps(after), strict=False) if t < pause_end + 60.0]
    fast = [g for t, g in zip(after, gaps(after), strict=False) if t >= pause_end + 60.0]
    assert slow == pytest.approx([2 * G10] * len(slow), rel=1e-5)
    assert len(slow) == math.ceil(60.0 / (2 * G10))  # half speed for one window T, no longer
    assert fast == pytest.approx([G10] * len(fast), rel=1e-5)
    assert len(fast) > 10
