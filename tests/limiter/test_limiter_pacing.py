"""The pure pacing arithmetic: intervals per policy, predicted grant times, slowdown and recovery."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetpay_async._limiting import LimiterPolicy
from assetpay_async._pacing import (
    FLOAT_GUARD,
    MIN_RATE_FRACTION,
    SLOWDOWN_FACTOR,
    Pacing,
    grant_time,
    pacing_for,
    percentile,
    recovered,
    slowed,
)
from assetpay_async._quota import Quota


@pytest.mark.parametrize(
    ("policy", "limit", "expected_interval", "expected_burst"),
    [
        (LimiterPolicy.EVEN, 60, 61 / 59, 1),
        (LimiterPolicy.EVEN, 10, 61 / 9, 1),
        (LimiterPolicy.EVEN, 1, 61.0, 1),
        (LimiterPolicy.STRICT, 60, 2.0, 1),
        (LimiterPolicy.STRICT, 10, 7.0, 1),
        (LimiterPolicy.BURST, 60, 1.0, 60),
    ],
)
def test_interval_per_policy(
    policy: LimiterPolicy, limit: int, expected_interval: float, expected_burst: int
) -> None:
    pacing = pacing_for(Quota(limit, 60.0), policy, 1.0)
    assert pacing.interval == pytest.approx(expected_interval * (1 + FLOAT_GUARD), rel=1e-12)
    assert pacing.interval > expected_interval
    assert pacing.burst == expected_burst
    assert pacing.window == 60.0
    assert pacing.limit == limit


def test_even_pacing_costs_what_the_design_card_says() -> None:
    """96.7 % of the best sustained rate at 60/min, 88.5 % at 10/min, 98.3 % at 3,000/min (J = 1 s)."""
    for limit, share in ((60, 0.967), (10, 0.885), (3000, 0.983)):
        quota = Quota(limit, 60.0)
        pacing = pacing_for(quota, LimiterPolicy.EVEN, 1.0)
        assert pacing.rate / quota.rate == pytest.approx(share, abs=0.001)


def test_slower_than_orders_by_interval_then_burst() -> None:
    even = pacing_for(Quota(60, 60.0), LimiterPolicy.EVEN, 1.0)
    strict = pacing_for(Quota(60, 60.0), LimiterPolicy.STRICT, 1.0)
    burst = pacing_for(Quota(60, 60.0), LimiterPolicy.BURST, 1.0)
    assert strict.slower_than(even)
    assert even.slower_than(burst)
    assert not even.slower_than(strict)
    same_rate_more_burst = Pacing(interval=even.interval, burst=5, window=60.0, limit=60)
    assert even.slower_than(same_rate_more_burst)
    assert not even.slower_than(even)


def test_slowdown_halves_down_to_a_floor_and_recovery_adds_one_nth() -> None:
    assert SLOWDOWN_FACTOR == 0.5
    assert MIN_RATE_FRACTION == 0.125
    assert slowed(1.0) == 0.5
    assert slowed(0.5) == 0.25
    assert slowed(0.2) == MIN_RATE_FRACTION
    assert recovered(0.5, 10) == pytest.approx(0.6)
    assert recovered(0.95, 10) == 1.0
    fraction, steps = 0.5, 0
    while fraction < 1.0:
        fraction, steps = recovered(fraction, 60), steps + 1
    assert steps == 30  # from half speed back to full in N / 2 successes


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0], 99) == 3.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0


def _simulate(
    position: int, *, now: float, tat: float, paused_until: float, interval: float, burst: int
) -> float:
    """Grant ``position + 1`` waiters one by one with the GCRA rule; return the last grant time."""
    t = now
    for _ in range(position + 1):
        t = max(t, paused_until, tat - (burst - 1) * interval)
        tat = max(tat, t) + interval
    return t


@attrs.frozen
class Schedule:
    position: int
    now: float
    tat: float
    paused_until: float
    interval: float
    burst: int


schedules = st.builds(
    Schedule,
    position=st.integers(0, 40),
    now=st.floats(0, 100),
    tat=st.floats(-50, 150),
    paused_until=st.floats(-50, 150),
    interval=st.floats(0.01, 10),
    burst=st.integers(1, 8),
)


@settings(max_examples=200)
@given(schedules)
def test_grant_time_matches_granting_one_by_one(s: Schedule) -> None:
    predicted = grant_time(
        s.position,
        now=s.now,
        tat=s.tat,
        paused_until=s.paused_until,
        interval=s.interval,
        burst=s.burst,
    )
    simulated = _simulate(
        s.position,
        now=s.now,
        tat=s.tat,
        paused_until=s.paused_until,
        interval=s.interval,
        burst=s.burst,
    )
    assert predicted == pytest.approx(simulated, rel=1e-9, abs=1e-9)
