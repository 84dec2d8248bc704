"""Pure pacing arithmetic of the limiter: grant intervals, grant times, slowdown and recovery.

No clock and no event loop here: every function takes the times it needs, so each rule is tested on plain
numbers. The schedule is a GCRA (generic cell rate algorithm, the token bucket written with one number): ``tat``,
the theoretical arrival time, is when the next grant would be due if no burst were allowed; a grant may go
``(burst - 1) * interval`` earlier; each grant at time ``t`` moves ``tat`` to ``max(tat, t) + interval``. With
``burst == 1`` this is even spacing, a token bucket of capacity 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from ._limiter_types import LimiterPolicy
from ._quota import Quota

__all__ = [
    "FLOAT_GUARD",
    "MIN_RATE_FRACTION",
    "SLOWDOWN_FACTOR",
    "Pacing",
    "grant_time",
    "pacing_for",
    "percentile",
    "recovered",
    "slowed",
]

SLOWDOWN_FACTOR = 0.5
"""Each 429 not explained by a pause in force multiplies the rate by this."""
MIN_RATE_FRACTION = 0.125
"""The rate never drops below this fraction of the configured rate."""
FLOAT_GUARD = 1e-6
"""Intervals are widened by this fraction (one microsecond per second) so that float rounding of a running
schedule can never squeeze one grant too many into a window; it costs a millionth of the throughput."""


@attrs.frozen
class Pacing:
    """How one limiter spaces its grants at the full configured rate.

    Attributes:
        interval: seconds between grants (the emission interval).
        burst: grants that may go at once after an idle period (1 for the even and strict policies).
        window: the server's window T; a 429 without ``Retry-After`` pauses for this long.
        limit: the server's limit N; sets the recovery step after a slowdown.
    """

    interval: float
    burst: int
    window: float
    limit: int

    @property
    def rate(self) -> float:
        """Grants per second, sustained."""
        return 1.0 / self.interval

    def slower_than(self, other: Pacing) -> bool:
        """True if this pacing lets fewer requests through than ``other``: longer interval, then less burst."""
        return (self.interval, -self.burst) > (other.interval, -other.burst)


def pacing_for(quota: Quota, policy: LimiterPolicy, latency_margin: float) -> Pacing:
    """The pacing that keeps ``quota`` under ``policy`` with ``latency_margin`` (J) seconds of jitter.

    - even: one grant every ``(T + J) / (N - 1)``, no burst;
    - strict: one grant every ``T / N + J``, no burst (also even's formula when N = 1);
    - burst: a bucket of capacity N refilled at N / T.

    Each interval is widened by :data:`FLOAT_GUARD`.
    """
    n, t = quota.limit, quota.period_seconds
    burst = 1
    if policy is LimiterPolicy.BURST:
        interval, burst = t / n, n
    elif policy is LimiterPolicy.STRICT or n == 1:
        interval = t / n + latency_margin
    else:
        interval = (t + latency_margin) / (n - 1)
    return Pacing(interval=interval * (1 + FLOAT_GUARD), burst=burst, window=t, limit=n)


def grant_time(
    position: int, *, now: float, tat: float, paused_until: float, interval: float, burst: int
) -> float:
    """When the waiter with ``position`` live waiters ahead of it gets its grant, if nothing changes.

    Args:
        position: live waiters ahead (0 for the head of the queue).
        now: the current time.
        tat: the theoretical arrival time of the next grant.
        paused_until: the end of the current pause (any past time when not paused).
        interval: the current interval between grants.
        burst: grants allowed at once.
    """
    start = max(now, paused_until)
    return max(start, max(tat, start) + (position - (burst - 1)) * interval)


def slowed(fraction: float) -> float:
    """The rate fraction after a 429 that no pause explains: multiplicative decrease, with a floor."""
    return max(fraction * SLOWDOWN_FACTOR, MIN_RATE_FRACTION)


def recovered(fraction: float, limit: int) -> float:
    """The rate fraction after one non-429 answer: additive increase by ``1 / limit``, up to 1."""
    return min(1.0, fraction + 1.0 / limit)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ascending ``ordered``; 0.0 when empty."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]
