"""The outage mode's arithmetic on plain numbers: shares add up to N, and the edges of an outage stay under N.

The property test builds the worst streams the limiter can produce around a failure: Redis grants g apart up
to the failure, then P local streams, each starting ``local_start_delay`` after the failure (or later, as a
process that noticed later would) and spaced by its share's interval, in any phase. No window of T + J (the
server's window widened by the latency margin J) may hold more than N.
"""

from __future__ import annotations

import bisect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assetpay_async._limiting import LimiterPolicy
from assetpay_async._pacing import pacing_for
from assetpay_async._quota import Quota
from assetpay_async._redis_share import (
    local_start_delay,
    settle_period,
    share_interval,
    share_quota,
)


@pytest.mark.parametrize(
    ("limit", "peers", "expected"),
    [
        (60, 1, Quota(60, 60.0)),
        (60, 2, Quota(30, 60.0)),
        (10, 3, Quota(3, 60.0)),
        (2, 5, Quota(1, 180.0)),
    ],
)
def test_a_share_is_n_divided_by_the_live_processes_rounded_down(
    limit: int, peers: int, expected: Quota
) -> None:
    assert share_quota(Quota(limit, 60.0), peers) == expected


def test_no_peer_count_means_alone() -> None:
    assert share_quota(Quota(20, 2.0), 0) == Quota(20, 2.0)


def test_a_share_is_paced_by_the_policy_on_the_share_quota() -> None:
    quota = Quota(20, 2.0)
    for policy in LimiterPolicy:
        expected = pacing_for(Quota(10, 2.0), policy, 0.1).interval
        assert share_interval(quota, policy, 0.1, 2) == expected


def test_the_settle_period_covers_the_slowest_peer_and_one_window() -> None:
    period = settle_period(
        recheck=2.0, timeout=1.0, share_interval=0.25, quota=Quota(20, 2.0), latency_margin=0.1
    )

    assert period == pytest.approx(2.0 + 1.0 + 0.25 + 2.0 + 0.1)


def most_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(bisect.bisect_right(times, t + window) - i for i, t in enumerate(times))


@given(
    limit=st.integers(4, 80),
    peers=st.integers(1, 4),
    margin=st.sampled_from([0.0, 0.1, 1.0]),
    redis_grants=st.integers(0, 120),
    phases=st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
    late=st.lists(st.floats(0.0, 3.0), min_size=4, max_size=4),
)
def test_redis_grants_then_local_shares_never_put_more_than_n_in_a_window(
    *,
    limit: int,
    peers: int,
    margin: float,
    redis_grants: int,
    phases: list[float],
    late: list[float],
) -> None:
    quota = Quota(limit, 6.0)
    g = pacing_for(quota, LimiterPolicy.EVEN, margin).interval
    share = share_interval(quota, LimiterPolicy.EVEN, margin, peers)
    failure = 100.0
    times = [failure - k * g for k in range(redis_grants)]
    for p in range(peers):
        first = failure + local_start_delay(g, peers) + late[p] * g + phases[p] * share
        times += [first + k * share for k in range(3 * limit)]

    assert most_in_window(times, quota.period_seconds + margin) <= limit
