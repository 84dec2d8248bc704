"""Grant spacing per policy, on virtual time."""

from __future__ import annotations

import asyncio

import pytest

from assetpay_async._limiting import LimiterPolicy
from assetpay_async.testing import run_virtual
from tests.support.limiter import Grants, acquire_as, gaps, make_limiter, max_in_window


def _grant_times(policy: LimiterPolicy, calls: int, *, limit: int = 60) -> list[float]:
    async def main() -> list[float]:
        limiter = make_limiter(limit, 60.0, policy=policy)
        grants = Grants()
        await asyncio.gather(*(acquire_as(limiter, str(i), grants) for i in range(calls)))
        return grants.times

    return run_virtual(main())


def test_even_spacing_has_no_burst_and_one_grant_every_t_plus_j_over_n_minus_1() -> None:
    times = _grant_times(LimiterPolicy.EVEN, 180)
    assert times[0] == 0.0  # an idle limiter grants at once
    assert min(gaps(times)) == pytest.approx(61 / 59, rel=1e-5)
    assert max(gaps(times)) == pytest.approx(61 / 59, rel=1e-5)
    assert max_in_window(times, 61.0) == 59
    assert max_in_window(times, 60.0) == 59


def test_strict_spacing_is_t_over_n_plus_j() -> None:
    times = _grant_times(LimiterPolicy.STRICT, 20, limit=10)
    assert all(gap == pytest.approx(7.0, rel=1e-5) for gap in gaps(times))
    assert all(gap >= 7.0 for gap in gaps(times))


def test_even_spacing_stores_no_credit_while_idle() -> None:
    """After a long idle spell, the even policy still spaces grants: a capacity-1 bucket."""

    async def main() -> list[float]:
        limiter = make_limiter(60, 60.0)
        grants = Grants()
        await acquire_as(limiter, "first", grants)
        await asyncio.sleep(3600)
        await asyncio.gather(*(acquire_as(limiter, str(i), grants) for i in range(3)))
        return grants.times

    times = run_virtual(main())
    assert times[1] == 3600.0
    assert gaps(times[1:]) == pytest.approx([61 / 59] * 2, rel=1e-5)


def test_a_grant_is_never_early_when_a_call_arrives_mid_interval() -> None:
    async def main() -> list[float]:
        limiter = make_limiter(10, 60.0)
        grants = Grants()
        await acquire_as(limiter, "a", grants)
        await asyncio.sleep(2.5)
        waited = await acquire_as(limiter, "b", grants)
        assert waited == pytest.approx(61 / 9 - 2.5, rel=1e-5)
        return grants.times

    times = run_virtual(main())
    assert times[1] == pytest.approx(61 / 9, rel=1e-5)
    assert times[1] >= 61 / 9
