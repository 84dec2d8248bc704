"""The pure pacing arithmetic: intervals per policy, predicted grant times, slowdown and recovery."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetpay_async._limiting import LimiterPolicy
from assetpay_async._pacing import (
    FLOAT_GUARD,
    LATE_TOLERANCE,
    MIN_RATE_FRACTION,
    SLOWDOWN_FACTOR,
    grant_base,
    grant_time,
    level_at,
    pacing_for,
    percentile,
    slowed,
)
from assetpay_async._quota import Quota


@pytest.mark.parametrize(
    ("policy", "limit", "expected_interval"),
    [
        (LimiterPolicy.EVEN, 60, 61 / 59),
        (LimiterPolicy.EVEN, 10, 61 / 9),
        (LimiterPolicy.EVEN, 1, 61.0),
        (LimiterPolicy.STRICT, 60, 2.0),
        (LimiterPolicy.STRICT, 10, 7.0),
    ],
)
def test_interval_per_policy(policy: LimiterPolicy, limit: int, expected_interval: float) -> None:
    pacing = pacing_for(Quota(limit, 60.0), policy, 1.0)
    assert pacing.interval == pytest.approx(expected_interval * (1 + FLOAT_GUARD), rel=1e-12)
    assert pacing.interval > expected_interval
    assert pacing.burst == 1
    assert pacing.window == 60.0
    assert pacing.limit == limit


def test_even_pacing_costs_what_the_design_card_says() -> None:
    """96.7 % of the best sustained rate at 60/min, 88.5 % at 10/min, 98.3 % at 3,000/min (J = 1 s)."""
    for limit, share in ((60, 0.967), (10, 0.885), (3000, 0.983)):
        quota = Quota(limit, 60.0)
        pacing = pacing_for(quota, LimiterPolicy.EVEN, 1.0)
        assert pacing.rate / quota.rate == pytest.approx(share, abs=0.001)


def test_the_burst_policy_is_gone() -> None:
    """Nothing but tests used it; a bucket of N is the 2N - 1 trap of docs/limiter.md."""
    assert [p.value for p in LimiterPolicy] == ["even", "strict"]
    with pytest.raises(ValueError, match="burst"):
        LimiterPolicy("burst")


def test_a_grant_a_little_late_keeps_the_grid_a_stalled_one_starts_afresh() -> None:
    interval = 1.0
    assert grant_base(10.0, 10.0, interval) == 10.0
    assert grant_base(10.0, 10.0007, interval) == 10.0  # a timer 0.7 ms late: still on the grid
    assert grant_base(10.0, 10.0 + 0.99 * LATE_TOLERANCE, interval) == 10.0
    # later than the tolerance: only what exceeds it is lost
    assert grant_base(10.0, 10.2, interval) == pytest.approx(10.2 - LATE_TOLERANCE)
    assert grant_base(10.0, 11.0, interval) == pytest.approx(11.0 - LATE_TOLERANCE)
    assert grant_base(10.0, 11.01, interval) == 11.01  # a stall of more than an interval: afresh
    assert grant_base(10.0, 15.0, interval) == 15.0
    # The tolerance is never more than half an interval: two grants never closer than that.
    assert grant_base(10.0, 10.0009, 0.002) == 10.0
    assert grant_base(10.0, 10.0015, 0.002) == pytest.approx(10.0005)


def test_a_repeated_429_halves_down_to_a_floor() -> None:
    assert SLOWDOWN_FACTOR == 0.5
    assert MIN_RATE_FRACTION == 0.125
    assert slowed(1.0) == 0.5
    assert slowed(0.5) == 0.25
    assert slowed(0.2) == MIN_RATE_FRACTION


def test_each_clean_window_doubles_the_rate_back() -> None:
    window = 60.0
    assert level_at(1.0, 100.0, window, 50.0) == 1.0
    assert level_at(0.5, 100.0, window, 90.0) == 0.5  # before the pause ended
    assert level_at(0.5, 100.0, window, 159.9) == 0.5
    assert level_at(0.5, 100.0, window, 160.0) == 1.0  # one clean window after the pause: full rate
    assert level_at(0.125, 100.0, window, 160.0) == 0.25
    assert level_at(0.125, 100.0, window, 220.0) == 0.5
    assert level_at(0.125, 100.0, window, 280.0) == 1.0
    assert level_at(0.125, 100.0, window, 1e9) == 1.0


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0], 99) == 3.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0


def _simulate(
    position: int, *, now: float, tat: float, paused_until: float, interval: float
) -> float:
    """Grant ``position + 1`` waiters one by one with the GCRA rule; return the last grant time."""
    t = now
    for _ in range(position + 1):
        t = max(t, paused_until, tat)
        tat = max(tat, t) + interval
    return t


@attrs.frozen
class Schedule:
    position: int
    now: float
    tat: float
    paused_until: float
    interval: float


schedules = st.builds(
    Schedule,
    position=st.integers(0, 40),
    now=st.floats(0, 100),
    tat=st.floats(-50, 150),
    paused_until=st.floats(-50, 150),
    interval=st.floats(0.01, 10),
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
    )
    simulated = _simulate(
        s.position,
        now=s.now,
        tat=s.tat,
        paused_until=s.paused_until,
        interval=s.interval,
    )
    assert predicted == pytest.approx(simulated, rel=1e-9, abs=1e-9)
