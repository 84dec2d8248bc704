"""When the shared poller reads a followed trade: today's backoff, and the revert delay the session learnt.

After an accepted cancel AssetPay reverts the item a while later (how long is not published). The poller reads
a trade at once when it is first followed, then ``first_poll`` seconds later, the gap growing by half up to
``max_interval``: the *nominal* schedule ``0, p1, p2, ...`` counted from the watch's start. Read that way, a trade
followed right after its cancel is read several times before it can be final.

``DelayLearner`` keeps, per merchant, how long the trades it followed took from the watch's start to the read
that showed them final (the moment that read was launched, not when its answer came: a read queued behind the
poller's share of the quota then counts as earlier, never later, so the estimate cannot creep up by the
queueing). ``postpone`` moves a due read of a watch to ``start + d``, d a low percentile of those delays, and
keeps the nominal points after ``d``. So:

* with fewer than ``min_samples`` delays seen, or one longer than ``LONGEST``, nothing moves: the schedule is
  today's (fail closed);
* a trade slower than ``d`` is read at every nominal point after ``d``, so it is found no later than today's
  schedule would find it;
* a trade faster than ``d`` (a low percentile: few are) is found at ``start + d`` at the latest.

Pure: no clock, no I/O; the poller feeds it its loop's time.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Iterable
from typing import Final

import attrs

__all__ = ["DelayLearner", "Postponed", "nominal_after", "postpone"]

MIN_SAMPLES: Final = 10
"""Delays to see before the learnt one is used."""
PERCENTILE: Final = 0.1
"""The share of the delays seen that are shorter than the one used."""
WINDOW: Final = 200
"""The delays kept: the most recent ones, so the estimate follows AssetPay when its delay changes."""
LONGEST: Final = 300.0
"""Seconds: a learnt delay longer than this is not used (today's schedule): the trades followed are then
probably not reverts (deliveries awaited), and a cancelled item's first read must not wait for theirs."""
YOUNG: Final = 120.0
"""Seconds: a trade still followed counts as seen not final at its age only while it is this young, so items
followed for long (a delivery awaited, not a revert) cannot teach a long delay."""


class DelayLearner:
    """The revert delays one merchant's followed trades showed, and the low percentile to plan with.

    Args:
        min_samples: how many delays must be seen before ``delay`` answers.
        percentile: the fraction of the delays seen that may be shorter than the one returned (0 to 1).
        window: how many of the most recent delays are kept.
    """

    __slots__ = ("_seen", "min_samples", "percentile")

    def __init__(
        self, min_samples: int = MIN_SAMPLES, percentile: float = PERCENTILE, window: int = WINDOW
    ) -> None:
        self.min_samples = max(1, min_samples)
        self.percentile = min(1.0, max(0.0, percentile))
        self._seen: collections.deque[float] = collections.deque(
            maxlen=max(window, self.min_samples)
        )

    def observe(self, delay: float) -> None:
        """One trade was seen final ``delay`` seconds after its watch started (ignored unless finite, >= 0)."""
        if math.isfinite(delay) and delay >= 0:
            self._seen.append(delay)

    @property
    def seen(self) -> int:
        """How many delays are kept."""
        return len(self._seen)

    def delay(self, open_ages: Iterable[float] = ()) -> float | None:
        """The age by which at most ``percentile`` of the trades were final; None with too few known.

        Args:
            open_ages: the trades still followed (and at most ``YOUNG`` seconds old): for each, the age at
                which its latest read showed it not final. Before any delay was seen, these alone say how long
                the trades take at least (the ``min_samples``-th oldest of them).
        """
        learnt = low_percentile(
            list(self._seen), list(open_ages), self.percentile, self.min_samples
        )
        return None if learnt is None or learnt > LONGEST else learnt


def low_percentile(
    finals: list[float], open_ages: list[float], percentile: float, min_samples: int
) -> float | None:
    """The largest age ``t`` (of those given) where at most ``percentile`` of the trades whose state at ``t``
    is known were final before ``t``, with at least ``min_samples`` of them known; None when there is none.

    A trade seen final at age ``e`` is known at every age (not final before ``e``); one still open, last seen
    not final at age ``c``, is known up to ``c``. The share final before ``t`` only grows with ``t``."""
    finals, open_ages = sorted(finals), sorted(open_ages)
    best = None
    for age in sorted({*finals, *open_ages}):
        known = len(finals) + len(open_ages) - bisect.bisect_left(open_ages, age)
        if known < min_samples or bisect.bisect_left(finals, age) > percentile * known:
            break
        best = age
    return best


def nominal_after(at: float, first_poll: float, max_interval: float) -> tuple[float, float]:
    """Today's schedule from 0 (read at 0, then ``first_poll`` later, the gap growing by half up to
    ``max_interval``): its first point later than ``at``, and the gap after that point."""
    point, gap = 0.0, first_poll
    while point <= at:
        if gap == max_interval:  # the gap no longer grows: jump over the points up to ``at``
            point += (math.floor((at - point) / max_interval) + 1) * max_interval
            return point, max_interval
        point += gap
        gap = min(max_interval, gap * 1.5)
    return point, gap


@attrs.frozen
class Postponed:
    """A watch's read moved later: read at ``read_at``; the next gap ``then``, the one after it ``after``."""

    read_at: float
    then: float
    after: float


def postpone(
    start: float, now: float, delay: float | None, first_poll: float, max_interval: float
) -> Postponed | None:
    """Where a watch that started at ``start`` and is due at ``now`` should be read instead; None: read now.

    Args:
        start: when the watch started (the item followed, right after its cancel was accepted).
        now: the time the read is due.
        delay: the learnt delay (``DelayLearner.delay``), None when nothing was learnt.
        first_poll: the watch's first gap.
        max_interval: the watch's largest gap.
    """
    if delay is None or first_poll <= 0 or max_interval <= 0 or now >= start + delay:
        return None
    point, after = nominal_after(delay, first_poll, max_interval)
    return Postponed(read_at=start + delay, then=point - delay, after=after)
