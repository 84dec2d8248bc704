"""After a 429: a pause per (merchant, route group) that only moves forward, slowdown and recovery."""

from __future__ import annotations

import asyncio
import logging

import pytest

from assetpay_async._limiting import LimiterRegistry, MemoryLimiter
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.testing import run_virtual
from tests.support.limiter import KEY, Grants, acquire_as, make_limiter

G10 = 61 / 9  # the even interval of 10 per minute with J = 1 s


def test_a_429_pauses_every_waiter_and_the_slowed_rate_follows() -> None:
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
    # B waits out the pause; C follows at the halved rate.
    assert grants.times == pytest.approx([0.0, 10.5, 10.5 + 2 * G10], rel=1e-5)


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
        registry = LimiterRegistry()
        quota = Quota(10, 60.0)
        paused = registry.get("m1", RouteGroup.CANCEL_ITEM, quota)
        same_merchant_other_group = registry.get("m1", RouteGroup.TRADES_READ, quota)
        other_merchant = registry.get("m2", RouteGroup.CANCEL_ITEM, quota)
        paused.rate_limited(30.0)
        waits = await asyncio.gather(
            paused.acquire(),
            registry.get("m1", RouteGroup.CANCEL_ITEM, quota).acquire(),
            same_merchant_other_group.acquire(),
            other_merchant.acquire(),
        )
        return dict(
            zip(["paused", "paused again", "other group", "other merchant"], waits, strict=True)
        )

    waits = run_virtual(main())
    assert waits["paused"] == pytest.approx(30.0)
    assert waits["paused again"] == pytest.approx(30.0 + 2 * G10, rel=1e-5)
    assert waits["other group"] == 0.0
    assert waits["other merchant"] == 0.0


def test_429s_during_a_pause_belong_to_it_and_do_not_slow_down_further() -> None:
    async def main() -> None:
        limiter = make_limiter(10, 60.0)
        full = limiter.stats().current_rate
        await limiter.acquire()
        limiter.rate_limited(5.0)
        assert limiter.stats().current_rate == pytest.approx(full / 2)
        limiter.rate_limited(5.0)  # another in-flight call answered 429 during the pause
        assert limiter.stats().current_rate == pytest.approx(full / 2)
        await asyncio.sleep(6.0)
        limiter.rate_limited(5.0)  # pause over, but nothing granted since it began: same episode
        assert limiter.stats().current_rate == pytest.approx(full / 2)
        await limiter.acquire()
        limiter.rate_limited(5.0)  # a 429 for a call sent after the pause: slow down again
        assert limiter.stats().current_rate == pytest.approx(full / 4)

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


def test_recovery_adds_one_nth_of_the_rate_per_success(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="assetpay_async.limiter")

    async def main() -> None:
        limiter = make_limiter(10, 60.0)
        full = limiter.stats().current_rate
        await limiter.acquire()
        limiter.rate_limited(1.0)
        for expected in (0.6, 0.7, 0.8, 0.9):
            limiter.succeeded()
            assert limiter.stats().current_rate == pytest.approx(full * expected)
        assert not any("recovered" in r.getMessage() for r in caplog.records)
        limiter.succeeded()
        assert limiter.stats().current_rate == pytest.approx(full)
        limiter.succeeded()  # already at full rate: nothing changes
        assert limiter.stats().current_rate == pytest.approx(full)

    run_virtual(main())
    messages = [r.getMessage() for r in caplog.records if r.name == "assetpay_async.limiter"]
    assert len(messages) == 3
    assert "slowing to" in messages[0]
    assert "50% of configured" in messages[0]
    assert "paused for 1.000s" in messages[1]
    assert "merchant-1/cancel-item" in messages[1]
    assert "recovered" in messages[2]


def test_a_slowed_limiter_spaces_queued_calls_wider_until_it_recovers() -> None:
    async def main() -> Grants:
        limiter = make_limiter(10, 60.0)
        grants = Grants()
        await acquire_as(limiter, "A", grants)
        limiter.rate_limited(0.0)  # no pause, half rate
        await acquire_as(limiter, "B", grants)  # tat was set at full rate
        await acquire_as(limiter, "C", grants)  # 2 intervals later
        for _ in range(5):
            limiter.succeeded()
        await acquire_as(limiter, "D", grants)  # C's grant was scheduled at half rate
        await acquire_as(limiter, "E", grants)  # full rate again
        return grants

    times = run_virtual(main()).times
    assert times == pytest.approx([0.0, G10, 3 * G10, 5 * G10, 6 * G10], rel=1e-5)
