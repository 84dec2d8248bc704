"""Pure pacing arithmetic of the limiter: grant intervals, grant times, slowdown and recovery.

No clock and no event loop here: every function takes the times it needs, so each rule is tested on plain
numbers. The schedule is a GCRA (generic cell rate algorithm, the token bucket written with one number) without
burst: ``tat``, the theoretical arrival time, is when the next grant is due; a grant due at ``tat`` moves it to
``tat + interval``. See [`grant_base`][assetpay_async._pacing.grant_base] for what happens when the grant comes
late.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Sequence

import attrs

from ._errors import ConfigurationError
from ._limiter_types import LimiterPolicy, ServerModel
from ._quota import Quota

__all__ = [
    "FLOAT_GUARD",
    "LATE_TOLERANCE",
    "MARGIN_FLOOR",
    "MARGIN_MIN_SAMPLES",
    "MARGIN_PERCENTILE",
    "MARGIN_SAMPLES",
    "MARGIN_START",
    "MEASURED",
    "MIN_RATE_FRACTION",
    "SLOWDOWN_FACTOR",
    "MarginEstimator",
    "Pacing",
    "PacingConfig",
    "checked_config",
    "combined",
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

MARGIN_FLOOR = 0.1
"""The smallest J a measured margin uses, in seconds: it covers what send-to-answer times cannot see (the
time from a grant to the send, a server that counts late within its own processing)."""
MARGIN_SAMPLES = 256
"""How many recent send-to-answer times a measured margin looks at."""
MARGIN_PERCENTILE = 99.0
"""The percentile of the recent spreads a measured margin settles at."""
MARGIN_START = 1.0
"""J of a measured margin before it has seen enough answers, in seconds: the fixed default it replaces. A
real network may spread more than the floor before anything is seen, so a measured margin starts here and
comes down only once it has evidence (fail closed)."""
MARGIN_MIN_SAMPLES = 20
"""How many send-to-answer times a measured margin needs before it may come down from its start."""


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


def pacing_for(
    quota: Quota,
    policy: LimiterPolicy,
    latency_margin: float,
    server_model: ServerModel = ServerModel.UNKNOWN,
) -> Pacing:
    """The pacing that keeps ``quota`` under ``policy`` with ``latency_margin`` (J) seconds of jitter.

    - even, unknown server: one grant every ``(T + J) / (N - 1)``;
    - even, declared server model (sliding log, fixed window, bucket of N): one every ``(T + J) / N``;
    - strict: one grant every ``T / N + J`` (also even's formula for an unknown server when N = 1).

    Each interval is widened by [`FLOAT_GUARD`][assetpay_async._pacing.FLOAT_GUARD].
    """
    n, t = quota.limit, quota.period_seconds
    if policy is LimiterPolicy.STRICT or (n == 1 and server_model is ServerModel.UNKNOWN):
        interval = t / n + latency_margin
    elif server_model is ServerModel.UNKNOWN:
        interval = (t + latency_margin) / (n - 1)
    else:
        interval = (t + latency_margin) / n
    return Pacing(interval=interval * (1 + FLOAT_GUARD), window=t, limit=n)


MEASURED = "measured"
"""``latency_margin=MEASURED`` sizes J from send-to-answer times (see
[`MarginEstimator`][assetpay_async._pacing.MarginEstimator])."""


@attrs.frozen
class PacingConfig:
    """What a caller asked of a limiter: the quota, the policy, J (None: measured) and the server model.

    ``floor`` is the smallest J a measured margin may take here: a fixed J that another session of the
    merchant asked of the same limiter (see [`combined`][assetpay_async._pacing.combined]).
    """

    quota: Quota
    policy: LimiterPolicy
    margin: float | None
    server_model: ServerModel
    floor: float = 0.0

    def margin_at(self, measured: float) -> float:
        """J in force when a measured J is ``measured`` seconds."""
        return max(measured, self.floor) if self.margin is None else self.margin

    def pacing(self, measured: float) -> Pacing:
        """The pacing of this configuration when a measured J is ``measured`` seconds."""
        return pacing_for(self.quota, self.policy, self.margin_at(measured), self.server_model)


def combined(current: PacingConfig, asked: PacingConfig, measured: float) -> PacingConfig | None:
    """What a limiter paced by ``current`` paces by when a session asks ``asked``; None: no change.

    The slower of the two at the measured J (``measured`` seconds) is kept. When one of them measures J
    and the other fixes it, the result measures, never below the fixed J: a session that asked for a
    fixed J is not paced below it when the measured one comes down, and one that asked to measure still
    sees J grow at once on a stall.
    """
    slower = (
        asked if asked.pacing(measured).interval > current.pacing(measured).interval else current
    )
    if current.margin is None or asked.margin is None:
        fixed = [c.margin for c in (current, asked) if c.margin is not None]
        floor = max([current.floor, asked.floor, *fixed])
        slower = attrs.evolve(slower, margin=None, floor=floor)
    return None if slower == current else slower


def checked_config(
    quota: Quota,
    policy: LimiterPolicy | str,
    latency_margin: float | str,
    server_model: ServerModel | str,
) -> PacingConfig:
    """Check a limiter's arguments before anything is paced.

    Raises:
        ConfigurationError: an unknown ``policy`` or ``server_model``, or a ``latency_margin`` that is
            neither a finite number of seconds >= 0 nor ``"measured"``.
    """
    margin: float | None = None
    if latency_margin != MEASURED:
        if isinstance(latency_margin, bool) or not (
            isinstance(latency_margin, int | float) and 0 <= latency_margin < math.inf
        ):
            raise ConfigurationError(
                f"latency_margin must be a finite number of seconds >= 0 or {MEASURED!r}, "
                f"got {latency_margin!r}"
            )
        margin = float(latency_margin)
    try:
        checked_policy = LimiterPolicy(policy)
    except ValueError:
        choices = ", ".join(repr(p.value) for p in LimiterPolicy)
        raise ConfigurationError(f"policy must be one of {choices}, got {policy!r}") from None
    try:
        model = ServerModel(server_model)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in ServerModel)
        raise ConfigurationError(
            f"server_model must be one of {choices}, got {server_model!r}"
        ) from None
    return PacingConfig(quota, checked_policy, margin, model)


class MarginEstimator:
    """J measured from send-to-answer times: starts high, grows at once with what it sees, shrinks slowly.

    The server counts a request somewhere between its send and its answer, so the spread of the counting
    delays is bounded by the spread of the send-to-answer times. The estimate does not split a time in
    halves (the path may be slow one way only): it uses the whole time above the fastest one seen.

    - the start: ``start`` seconds (the old fixed default) until ``min_samples`` answers were seen, however
      quick they were: a few answers say little about the spread of a real network;
    - the target: the [`MARGIN_PERCENTILE`][assetpay_async._pacing.MARGIN_PERCENTILE] of (time - fastest)
      over the last [`MARGIN_SAMPLES`][assetpay_async._pacing.MARGIN_SAMPLES] answers, never below ``floor``;
    - one answer slower than the current J (a stall) raises J to its spread at once;
    - above the target, J halves every ``half_life`` seconds: from the start once ``min_samples`` answers
      were seen, from a stall once it was seen; never faster.

    Args:
        floor: the smallest J, in seconds.
        half_life: seconds over which J's excess over the target halves (the window T).
        start: J before ``min_samples`` answers were seen, in seconds.
        min_samples: how many answers J needs before it comes down from ``start``.

    Example:
        >>> estimator = MarginEstimator(floor=0.1, half_life=60.0)
        >>> estimator.value(0.0)  # nothing seen yet: the old fixed 1 s
        1.0
        >>> estimator.observe(0.02, now=0.0), estimator.observe(1.52, now=1.0)
        (False, True)
        >>> estimator.value(1.0)  # the stall's 1.5 s above the fastest answer, at once
        1.5
        >>> for k in range(300):  # the stall leaves the recent answers: J halves every window
        ...     _ = estimator.observe(0.02, now=2.0 + k / 10)
        >>> round(estimator.value(61.0), 3), round(estimator.value(600.0), 3)
        (0.75, 0.1)
    """

    __slots__ = (
        "_floor",
        "_half_life",
        "_min_samples",
        "_order",
        "_peak",
        "_peak_at",
        "_sorted",
        "_start",
        "_target",
    )

    def __init__(
        self,
        *,
        floor: float = MARGIN_FLOOR,
        half_life: float,
        start: float = MARGIN_START,
        min_samples: int = MARGIN_MIN_SAMPLES,
    ) -> None:
        self._floor = floor
        self._half_life = half_life
        self._start = max(start, floor)
        self._min_samples = min(max(min_samples, 1), MARGIN_SAMPLES)
        self._order: collections.deque[float] = collections.deque()
        self._sorted: list[float] = []
        self._target = floor
        self._peak = floor
        self._peak_at = -math.inf

    @property
    def samples(self) -> int:
        """How many recent send-to-answer times the estimate looks at."""
        return len(self._order)

    def value(self, now: float) -> float:
        """J at ``now``, in seconds."""
        peak = self._decayed_peak(now)
        if len(self._order) < self._min_samples:
            return max(self._start, self._target, peak)
        return max(self._target, peak)

    def observe(self, wire: float, now: float) -> bool:
        """Take one send-to-answer time (seconds) seen at ``now``; True when J grew."""
        before = self.value(now)
        settling = len(self._order) < self._min_samples
        self._order.append(wire)
        bisect.insort(self._sorted, wire)
        if len(self._order) > MARGIN_SAMPLES:
            old = self._order.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        settled = settling and len(self._order) >= self._min_samples
        if settled and self._start > self._decayed_peak(now):
            # Enough answers: the start becomes a peak seen now, and comes down one half-life at a time
            # (a larger peak seen earlier decays at the same pace and stays the larger one).
            self._peak, self._peak_at = self._start, now
        fastest = self._sorted[0]
        self._target = max(self._floor, percentile(self._sorted, MARGIN_PERCENTILE) - fastest)
        seen = wire - fastest
        if seen > before:
            self._peak, self._peak_at = seen, now
        return self.value(now) > before

    def _decayed_peak(self, now: float) -> float:
        age = now - self._peak_at
        return self._peak if age <= 0 else self._peak * math.pow(0.5, age / self._half_life)


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
