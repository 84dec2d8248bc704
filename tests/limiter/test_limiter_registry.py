"""The registry: one limiter per (merchant, route group), shared by sessions; the slower pacing is kept."""

from __future__ import annotations

import asyncio
import logging

import pytest

from assetpay_async import AssetPaySession, MerchantTier
from assetpay_async._limiting import (
    LimiterPolicy,
    LimiterRegistry,
    MemoryLimiter,
    MemoryLimiterRegistry,
    default_registry,
)
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.redis_limiter import RedisLimiterRegistry
from assetpay_async.testing import run_virtual

CANCEL = RouteGroup.CANCEL_ITEM


def test_one_limiter_per_merchant_and_group() -> None:
    registry = MemoryLimiterRegistry()
    quota = Quota(60, 60.0)
    first = registry.get("m1", CANCEL, quota)
    assert registry.get("m1", CANCEL, quota) is first
    assert registry.get("m1", RouteGroup.TRADES_READ, quota) is not first
    assert registry.get("m2", CANCEL, quota) is not first
    registry.clear()
    assert registry.get("m1", CANCEL, quota) is not first


def test_sessions_of_one_merchant_share_the_process_wide_limiter() -> None:
    one = AssetPaySession(tier=MerchantTier.VERIFIED, merchant_id="m1")
    two = AssetPaySession(tier=MerchantTier.VERIFIED, merchant_id="m1")
    other = AssetPaySession(tier=MerchantTier.VERIFIED, merchant_id="m2")
    shared = one._requester.limiter("m1", CANCEL)
    assert two._requester.limiter("m1", CANCEL) is shared
    assert default_registry().get("m1", CANCEL, Quota(60, 60.0)) is shared
    assert other._requester.limiter("m2", CANCEL) is not shared


def test_a_differing_configuration_keeps_the_slower_pacing_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="assetpay_async.limiter")
    registry = MemoryLimiterRegistry()
    limiter = registry.get("m1", CANCEL, Quota(60, 60.0), latency_margin=1.0)
    assert isinstance(limiter, MemoryLimiter)
    fast = limiter.pacing

    # Slower: adopted.
    assert registry.get("m1", CANCEL, Quota(10, 60.0), latency_margin=1.0) is limiter
    slow = limiter.pacing
    assert slow.interval == pytest.approx(61 / 9, rel=1e-5)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "keeping the slower one (switching to the new one)" in message
    assert "'m1' cancel-item" in message
    assert "configure every session of a merchant alike" in message

    for config in (
        Quota(60, 60.0),
        Quota(10, 60.0),
        Quota(30, 60.0),
    ):  # no flip-flop, no more warnings
        assert registry.get("m1", CANCEL, config, latency_margin=1.0) is limiter
        assert limiter.pacing == slow
    # Slower still: adopted, silently.
    assert registry.get("m1", CANCEL, Quota(5, 60.0), latency_margin=1.0) is limiter
    assert limiter.pacing.interval == pytest.approx(61 / 4, rel=1e-5)
    assert len(caplog.records) == 1
    assert fast != slow


def test_the_warning_is_per_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="assetpay_async.limiter")
    registry = MemoryLimiterRegistry()
    for merchant in ("m1", "m2"):
        registry.get(merchant, CANCEL, Quota(60, 60.0), latency_margin=1.0)
        registry.get(merchant, CANCEL, Quota(60, 60.0), latency_margin=0.5)  # faster: ignored
    assert ["'m1'" in r.getMessage() for r in caplog.records] == [True, False]
    assert "keeping the slower one (the current one)" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("policy", "latency_margin", "adopted"),
    [
        (LimiterPolicy.STRICT, 1.0, True),
        (LimiterPolicy.EVEN, 3.0, True),
        ("even", 1.0, False),  # the same configuration, spelled as a string
        (LimiterPolicy.EVEN, 0.0, False),
    ],
)
def test_policy_and_margin_count_in_which_is_slower(
    policy: LimiterPolicy, latency_margin: float, adopted: bool
) -> None:
    registry = MemoryLimiterRegistry()
    limiter = registry.get("m1", CANCEL, Quota(60, 60.0), latency_margin=1.0)
    assert isinstance(limiter, MemoryLimiter)
    before = limiter.pacing
    registry.get("m1", CANCEL, Quota(60, 60.0), policy=policy, latency_margin=latency_margin)
    assert (limiter.pacing != before) is adopted


def test_both_registries_fit_the_protocol() -> None:
    assert isinstance(MemoryLimiterRegistry(), LimiterRegistry)
    assert isinstance(default_registry(), MemoryLimiterRegistry)


def test_aclose_of_the_in_memory_registry_releases_nothing_and_keeps_it_usable() -> None:
    registry = MemoryLimiterRegistry()
    limiter = registry.get("m1", CANCEL, Quota(60, 60.0))
    run_virtual(registry.aclose())
    assert registry.get("m1", CANCEL, Quota(60, 60.0)) is limiter


def test_a_slower_configuration_applies_to_calls_already_queued() -> None:
    async def main() -> list[float]:
        registry = MemoryLimiterRegistry()
        limiter = registry.get("m1", CANCEL, Quota(60, 60.0), latency_margin=1.0)
        loop = asyncio.get_running_loop()
        times: list[float] = []

        async def call() -> None:
            await limiter.acquire()
            times.append(loop.time())

        tasks = [asyncio.create_task(call()) for _ in range(3)]
        await asyncio.sleep(0.5)
        registry.get("m1", CANCEL, Quota(10, 60.0), latency_margin=1.0)
        await asyncio.gather(*tasks)
        return times

    # The second grant was scheduled at 60/min when the first went out; the third follows at 10/min.
    assert run_virtual(main()) == pytest.approx([0.0, 61 / 59, 61 / 59 + 61 / 9], rel=1e-5)


def test_a_registry_clock_reaches_its_limiters() -> None:
    now = [50.0]
    registry = MemoryLimiterRegistry(clock=lambda: now[0])
    limiter = registry.get("m1", CANCEL, Quota(10, 60.0))
    limiter.rate_limited(None)
    now[0] = 80.0
    assert limiter.stats().paused_for == pytest.approx(30.0)


def test_the_redis_registry_fits_the_protocol_too() -> None:

    async def main() -> bool:
        registry: LimiterRegistry = RedisLimiterRegistry(
            "redis://127.0.0.1:1"
        )  # never connects here
        try:
            return isinstance(registry, LimiterRegistry)
        finally:
            await registry.aclose()

    assert run_virtual(main())
