"""Server-side rate limiting models: pure classes, no I/O, no clock of their own.

Each class plays one algorithm found in real API servers (AssetPay's own is unconfirmed). All share one
method, ``hit(now) -> Decision``: ``now`` is a time in seconds (the sandbox's clock); the decision says whether
the hit is allowed and, when refused, how long until a hit could be allowed.

| class                    | plays                                                     | refused hits count |
|--------------------------|-----------------------------------------------------------|--------------------|
| ``FixedWindow``          | express-rate-limit 5, throttled-py (calendar aligned)     | yes (harmless)     |
| ``AnchoredWindow``       | express-rate-limit 6+, ``limits``, NestJS redis storage   | yes                |
| ``BlockPenaltyWindow``   | @nestjs/throttler 6 (block after one over-limit hit)      | yes, and they block|
| ``SlidingLog``           | @nestjs/throttler in memory, ``limits`` moving window     | no                 |
| ``SlidingWindowCounter`` | Cloudflare, ``limits`` sliding window                     | no                 |
| ``GCRA``                 | redis-cell, Stripe (token bucket with burst ``B``)        | no                 |
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable
from typing import Protocol

import attrs

from assetpay_async._quota import Quota

__all__ = [
    "GCRA",
    "AnchoredWindow",
    "BlockPenaltyWindow",
    "Decision",
    "FixedWindow",
    "RateModel",
    "ServerAlgorithm",
    "SlidingLog",
    "SlidingWindowCounter",
    "make_rate_model",
]


@attrs.frozen
class Decision:
    """The outcome of one hit.

    Attributes:
        allowed: whether the server serves the request.
        retry_after: seconds from ``now`` until a hit could be allowed (0.0 when allowed).
    """

    allowed: bool
    retry_after: float = 0.0


_ALLOWED = Decision(True)


class RateModel(Protocol):
    """What the sandbox needs of a server algorithm."""

    quota: Quota

    def hit(self, now: float) -> Decision:
        """Count one request arriving at ``now`` (non-decreasing) and decide on it."""
        ...


class FixedWindow:
    """Fixed windows aligned on multiples of the period (``[k*T, (k+1)*T)``).

    A burst straddling a boundary gets ``2N`` through within a few moments. Every hit counts.
    """

    __slots__ = ("_count", "_window", "quota")

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self._window: int | None = None
        self._count = 0

    def hit(self, now: float) -> Decision:
        period = self.quota.period_seconds
        window = math.floor(now / period)
        if window != self._window:
            self._window, self._count = window, 0
        self._count += 1
        if self._count <= self.quota.limit:
            return _ALLOWED
        return Decision(False, (window + 1) * period - now)

    def __repr__(self) -> str:
        return (
            f"<FixedWindow {self.quota.limit}/{self.quota.period_seconds:g}s count={self._count}>"
        )


class AnchoredWindow:
    """A window of length T that opens at the first hit after the previous one expired.

    Refused hits count toward the window (they do not extend it).
    """

    __slots__ = ("_count", "_opened", "quota")

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self._opened: float | None = None
        self._count = 0

    def hit(self, now: float) -> Decision:
        period = self.quota.period_seconds
        if self._opened is None or now >= self._opened + period:
            self._opened, self._count = now, 0
        self._count += 1
        if self._count <= self.quota.limit:
            return _ALLOWED
        return Decision(False, self._opened + period - now)

    def __repr__(self) -> str:
        return f"<AnchoredWindow {self.quota.limit}/{self.quota.period_seconds:g}s count={self._count}>"


class BlockPenaltyWindow:
    """An anchored window in which the first over-limit hit blocks the caller for ``block`` seconds.

    While blocked every hit is refused; when the block ends the count starts over (NestJS throttler 6,
    whose ``blockDuration`` defaults to the window's ``ttl``).
    """

    __slots__ = ("_anchored", "_blocked_until", "block", "quota")

    def __init__(self, quota: Quota, *, block: float | None = None) -> None:
        self.quota = quota
        self.block = quota.period_seconds if block is None else float(block)
        self._anchored = AnchoredWindow(quota)
        self._blocked_until: float | None = None

    def hit(self, now: float) -> Decision:
        if self._blocked_until is not None:
            if now < self._blocked_until:
                return Decision(False, self._blocked_until - now)
            self._blocked_until = None
            self._anchored = AnchoredWindow(self.quota)
        if self._anchored.hit(now).allowed:
            return _ALLOWED
        self._blocked_until = now + self.block
        return Decision(False, self.block)

    def __repr__(self) -> str:
        return f"<BlockPenaltyWindow {self.quota.limit}/{self.quota.period_seconds:g}s block={self.block:g}s>"


class SlidingLog:
    """At most N allowed hits in any window ``[now - T, now]``, both edges included.

    A hit exactly T seconds after an earlier one still sees it. Refused hits are not logged.
    """

    __slots__ = ("_log", "quota")

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self._log: deque[float] = deque()

    def hit(self, now: float) -> Decision:
        period, limit = self.quota.period_seconds, self.quota.limit
        while self._log and self._log[0] < now - period:
            self._log.popleft()
        if len(self._log) < limit:
            self._log.append(now)
            return _ALLOWED
        # Allowed again once the oldest counted hit is strictly more than T old.
        return Decision(False, self._log[len(self._log) - limit] + period - now)

    def __repr__(self) -> str:
        return f"<SlidingLog {self.quota.limit}/{self.quota.period_seconds:g}s logged={len(self._log)}>"


class SlidingWindowCounter:
    """Counts per aligned window; the estimate weighs the previous window by how much of it still overlaps.

    ``estimate = previous * (1 - elapsed / T) + current``; a hit is allowed when ``estimate + 1 <= N``.
    A burst early in one window is still felt during most of the next. Refused hits are not counted.
    """

    __slots__ = ("_current", "_previous", "_window", "quota")

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self._window: int | None = None
        self._current = 0
        self._previous = 0

    def _roll(self, window: int) -> None:
        if self._window is None or window > self._window + 1:
            self._previous = 0
            self._current = 0
        elif window == self._window + 1:
            self._previous, self._current = self._current, 0
        self._window = window

    def hit(self, now: float) -> Decision:
        period, limit = self.quota.period_seconds, self.quota.limit
        window = math.floor(now / period)
        self._roll(window)
        elapsed = now - window * period
        if self._previous * (1 - elapsed / period) + self._current + 1 <= limit:
            self._current += 1
            return _ALLOWED
        return Decision(False, self._wait(now, window, elapsed))

    def _wait(self, now: float, window: int, elapsed: float) -> float:
        period, limit = self.quota.period_seconds, self.quota.limit
        room = limit - 1 - self._current
        if room >= 0 and self._previous > 0:
            # Within this window: previous * (1 - e / T) <= room.
            needed = period * (1 - room / self._previous)
            if needed < period:
                return max(needed - elapsed, 0.0)
        # Next window: the current count becomes the weighted one.
        start = (window + 1) * period
        if self._current > 0 and limit - 1 < self._current:
            return start - now + period * (1 - (limit - 1) / self._current)
        return start - now

    def __repr__(self) -> str:
        return (
            f"<SlidingWindowCounter {self.quota.limit}/{self.quota.period_seconds:g}s "
            f"previous={self._previous} current={self._current}>"
        )


class GCRA:
    """The generic cell rate algorithm: a token bucket of ``burst`` tokens refilled one every T / N.

    ``burst=1`` is a zero-burst policer (nginx ``limit_req`` without burst): any two hits closer than T / N
    are refused. Refused hits do not count.
    """

    __slots__ = ("_tat", "burst", "quota")

    def __init__(self, quota: Quota, *, burst: int | None = None) -> None:
        self.quota = quota
        self.burst = quota.limit if burst is None else burst
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"GCRA burst must be an int >= 1, got {burst!r}")
        self._tat: float | None = None

    def hit(self, now: float) -> Decision:
        interval = self.quota.period_seconds / self.quota.limit
        tat = now if self._tat is None else max(self._tat, now)
        new_tat = tat + interval
        # Allowed when the theoretical arrival time stays within burst intervals of now (with float slack).
        excess = new_tat - now - self.burst * interval
        if excess <= 1e-9 * max(1.0, abs(now)):
            self._tat = new_tat
            return _ALLOWED
        return Decision(False, excess)

    def __repr__(self) -> str:
        return f"<GCRA {self.quota.limit}/{self.quota.period_seconds:g}s burst={self.burst}>"


class ServerAlgorithm(enum.StrEnum):
    """The server algorithms the sandbox can play, by name."""

    FIXED_WINDOW = "fixed-window"
    ANCHORED_WINDOW = "anchored-window"
    BLOCK_PENALTY = "block-penalty"
    SLIDING_LOG = "sliding-log"
    SLIDING_COUNTER = "sliding-counter"
    GCRA = "gcra"


_FACTORIES: dict[ServerAlgorithm, Callable[[Quota, int | None], RateModel]] = {
    ServerAlgorithm.FIXED_WINDOW: lambda q, _: FixedWindow(q),
    ServerAlgorithm.ANCHORED_WINDOW: lambda q, _: AnchoredWindow(q),
    ServerAlgorithm.BLOCK_PENALTY: lambda q, _: BlockPenaltyWindow(q),
    ServerAlgorithm.SLIDING_LOG: lambda q, _: SlidingLog(q),
    ServerAlgorithm.SLIDING_COUNTER: lambda q, _: SlidingWindowCounter(q),
    ServerAlgorithm.GCRA: lambda q, burst: GCRA(q, burst=burst),
}


def make_rate_model(
    algorithm: ServerAlgorithm | str, quota: Quota, *, burst: int | None = None
) -> RateModel:
    """A fresh model of ``algorithm`` for ``quota``; ``burst`` is used by GCRA only (default N).

    Raises:
        ValueError: an unknown algorithm name.
    """
    return _FACTORIES[ServerAlgorithm(algorithm)](quota, burst)
