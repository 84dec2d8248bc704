"""Pure pacing arithmetic of the limiter: grant intervals, grant times, slowdown and recovery.

No clock and no event loop here: every function takes the times it needs, so each rule is tested on plain
numbers. The schedule is a GCRA (generic cell rate algorithm, the token bucket written with one number) without
burst: ``tat``, the theoretical arrival time, is when the next grant is due; a grant due at ``tat`` moves it to
``tat + interval``. See [`grant_base`][assetpay_async._pacing.grant_base] for what happens when the grant comes
late.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from ._limiter_types import LimiterPolicy
from ._quota import Quota

__all__ = [
    "FLOAT_GUARD",
    "LATE_TOLERANCE",
    "MIN_RATE_FRACTION",
    "SLOWDOWN_FACTOR",
    "Pacing",
    "grant_base",
    "grant_time",
    "level_at",
    "pacing_for",
    "percentile",
    "slowed",
]

SLOWDOWN_FACTOR = 0.5
"""A repeated 429 that no pause explains multiplies the rate by this."""
MIN_RATE_FRACTION = 0.125
"""The rate never drops below this fraction of the configured rate."""
FLOAT_GUARD = 1e-6
"""Intervals are widened by this fraction (one microsecond per second) so that float rounding of a running
schedule can never squeeze one grant too many into a window; it costs a millionth of the throughput."""
LATE_TOLERANCE = 0.05
"""Seconds a grant may come after its due time and still keep the schedule's grid (see
[`grant_base`][assetpay_async._pacing.grant_base]); never more than half an interval."""


@attrs.frozen
class Pacing:
    """How one limiter spaces its grants at the full configured rate.

    Attributes:
        interval: seconds between grants (the emission interval).
        window: the server's window T; a 429 without ``Retry-After`` pauses for this long, and a slowdown
            recovers one step per window.
        limit: the server's limit N.
    """

    interval: float
    window: float
    limit: int

    @property
    def rate(self) -> float:
        """Grants per second, sustained."""
        return 1.0 / self.interval

    @property
    def burst(self) -> int:
        """Grants that may go at once after an idle spell: always 1 (no policy bursts)."""
        return 1


def pacing_for(quota: Quota, policy: LimiterPolicy, latency_margin: float) -> Pacing:
    """The pacing that keeps ``quota`` under ``policy`` with ``latency_margin`` (J) seconds of jitter.

    - even: one grant every ``(T + J) / (N - 1)``;
    - strict: one grant every ``T / N + J`` (also even's formula when N = 1).

    Each interval is widened by [`FLOAT_GUARD`][assetpay_async._pacing.FLOAT_GUARD].
    """
    n, t = quota.limit, quota.period_seconds
    strict = policy is LimiterPolicy.STRICT or n == 1
    interval = t / n + latency_margin if strict else (t + latency_margin) / (n - 1)
    return Pacing(interval=interval * (1 + FLOAT_GUARD), window=t, limit=n)


def grant_base(due: float, now: float, interval: float) -> float:
    """The time a grant due at ``due`` and handed out at ``now >= due`` counts as; the next is due one interval later.

    A timer that wakes late or a busy loop makes a grant late. Up to the tolerance (the smaller of
    [`LATE_TOLERANCE`][assetpay_async._pacing.LATE_TOLERANCE] and half an interval) the grant counts as given
    at ``due``: the schedule keeps its grid, and lateness does not add up grant after grant. Later than that,
    up to one interval, it counts as given at ``now`` minus the tolerance. After a stall of more than one
    interval it counts as given at ``now``: the schedule starts afresh and the next grant is a full interval
    later, with no catch-up burst. No two grants are ever closer than ``interval`` minus the tolerance.
    """
    late = now - due
    if late > interval:
        return now
    return max(due, now - min(LATE_TOLERANCE, interval / 2))


def grant_time(
    position: int, *, now: float, tat: float, paused_until: float, interval: float
) -> float:
    """When the waiter with ``position`` live waiters ahead of it gets its grant, if nothing changes.

    Args:
        position: live waiters ahead (0 for the head of the queue).
        now: the current time.
        tat: the theoretical arrival time of the next grant.
        paused_until: the end of the current pause (any past time when not paused).
        interval: the interval between grants (the fastest the limiter may go from now on).
    """
    start = max(now, paused_until, tat)
    return start + position * interval


def slowed(fraction: float) -> float:
    """The rate fraction after a repeated 429 that no pause explains: halved, with a floor."""
    return max(fraction * SLOWDOWN_FACTOR, MIN_RATE_FRACTION)


def level_at(fraction: float, clean_since: float, window: float, t: float) -> float:
    """The rate fraction at ``t`` of a limiter slowed to ``fraction``, recovering since ``clean_since``.

    Every whole window without a new slowdown doubles the fraction back, up to 1: from half speed the
    configured rate is back one window after the pause that ended the evidence.
    """
    if fraction >= 1.0 or t < clean_since:
        return min(fraction, 1.0)
    steps = math.floor((t - clean_since) / window)
    return 1.0 if steps >= 3 else min(1.0, fraction * 2.0**steps)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ascending ``ordered``; 0.0 when empty."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]
