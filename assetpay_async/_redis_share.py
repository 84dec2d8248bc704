"""Pure arithmetic of the Redis limiter's outage mode: a process's share of the quota and when it applies.

While Redis is unreachable, each of the P live processes of a key paces ``N // P`` per window on its own (even
spacing, `pacing_for`); the shares add up to at most N. The edges need care:

- **Entering the outage.** The grants Redis made just before it failed are not this process's alone; the first
  local grant waits `local_start_delay` (P shared intervals) after the failure was seen, which keeps
  every window that holds both Redis grants and local grants of all P processes at N or less.
- **Leaving it.** Peers return to Redis one by one (each within ``recheck`` of Redis answering); until every
  one is back and a whole window has passed, a returned process still keeps to its share on top of Redis's
  schedule: `settle_period`. Redis restarted empty therefore cannot grant a burst on top of recent
  local grants.

No clock and no I/O here: every function takes the numbers it needs.
"""

from __future__ import annotations

import math

from ._limiter_types import LimiterPolicy
from ._pacing import pacing_for
from ._quota import Quota

__all__ = ["local_start_delay", "settle_period", "share_interval", "share_quota"]


def share_quota(quota: Quota, peers: int) -> Quota:
    """One process's share of ``quota`` when ``peers`` processes (itself included) split it.

    ``N // P`` per window; with more processes than N, one grant per ``ceil(P / N)`` windows (the shares can
    then no longer be kept under N in every window: see ``docs/redis.md``).
    """
    peers = max(1, peers)
    share = quota.limit // peers
    if share >= 1:
        return Quota(share, quota.period_seconds)
    return Quota(1, quota.period_seconds * math.ceil(peers / quota.limit))


def share_interval(quota: Quota, policy: LimiterPolicy, latency_margin: float, peers: int) -> float:
    """Seconds between one process's grants while it paces its share alone (no policy bursts)."""
    return pacing_for(share_quota(quota, peers), policy, latency_margin).interval


def local_start_delay(shared_interval: float, peers: int) -> float:
    """How long after a failure is seen the first local grant may go: ``P * g``.

    Why: Redis grants, g apart, all came before the failure (time ``f``). A window of T + J starting ``u``
    before ``f`` holds at most ``u / g + 1`` of them, and P local streams, each ``P * g`` or more apart and
    starting ``D`` after ``f``, add at most ``(T + J - u - D) / g + P``. With ``g = (T + J) / (N - 1)`` the sum
    is ``N + P - D / g``: at most N once ``D = P * g``.
    """
    return max(1, peers) * shared_interval


def settle_period(
    *,
    recheck: float,
    timeout: float,
    share_interval: float,
    quota: Quota,
    latency_margin: float,
) -> float:
    """How long a process keeps to its share after getting Redis back.

    Every live peer is back within ``recheck + timeout + share_interval`` of Redis answering again: it learns
    of it within ``recheck`` (its heartbeat, or its own retry), tries Redis before its next local grant (at
    most ``share_interval`` later), and a try that started while Redis hung gives up after ``timeout``. One
    window ``T + J`` later no window holds a local grant any more, and Redis's schedule alone keeps to N.
    """
    return recheck + timeout + share_interval + quota.period_seconds + latency_margin
