"""The Redis limiter's outage state machine: when a process grants from its own share, and for how long.

Sans I/O: every method takes the event-loop time (``now``) it needs, and says what follows; the grant worker
(`_redis_worker`) does the waiting and the Redis calls. The arithmetic of the share is in `_redis_share`.

States:

- **redis**: Redis answers; grants come from its schedule.
- **degraded**: Redis failed; grants come from this process's share (N / P), the first one
  `local_start_delay` after the failure, and Redis is tried again at ``recheck_at``.
- **sharing**: Redis is back (or served a new generation of the schedule) but a peer may still grant from
  its share: this process keeps to its share on top of Redis's schedule until ``share_until``.
- **waiting** (``outage_policy="wait"``): Redis failed for a process that counted peers at its last
  heartbeat; they may still have Redis and grant the full N from it, so this process grants nothing locally
  and waits for Redis (its calls end within their ``max_wait``). Alone at its last count, it shares as usual.
- **unknown peers**: Redis failed before this process ever counted its peers and no ``max_processes`` was
  configured: it cannot know its share, so it grants nothing locally and waits for Redis (fail closed).
"""

from __future__ import annotations

import logging
import math

from ._limiter_types import LimiterPolicy
from ._quota import Quota
from ._redis_share import local_start_delay, settle_period, share_interval

__all__ = ["OutageState", "horizon_retry", "reservation_bound"]

logger = logging.getLogger("assetpay_async.redis_limiter")


def reservation_bound(budget_us: int, horizon_us: int) -> int:
    """The ``reserve_within_us`` of a reservation: the caller's budget, never beyond the horizon.

    Without the horizon, each process holds one slot however far ahead the schedule runs: with more
    processes than N the schedule runs more than a window ahead, and a server that restarts empty meets
    processes sleeping on slots that no longer exist (they all wake at once). Bounded, the schedule is never
    more than ``horizon_us`` ahead of now: at most ``horizon_us / g + 1`` slots are held across processes.

    Args:
        budget_us: the head waiter's budget (``-1``: it waits whatever the wait).
        horizon_us: how far ahead of now a slot may be reserved.
    """
    return horizon_us if budget_us < 0 else min(budget_us, horizon_us)


def horizon_retry(wait_us: int, budget_us: int, horizon_us: int) -> float | None:
    """Seconds to wait before asking again when a reservation was refused; None: the budget refused it.

    A slot ``wait_us`` away is refused by the horizon alone when the waiter's budget covers it: ask again
    when it comes within the horizon (at least a millisecond later: no busy loop).
    """
    if 0 <= budget_us < wait_us:
        return None
    return max(0.001, (wait_us - horizon_us) / 1e6)


class OutageState:
    """This process's view of Redis for one limiter key (see the module docstring for the states).

    Args:
        quota: the key's quota.
        policy: the limiter policy (the share is paced evenly whatever it is).
        latency_margin: J in seconds.
        interval: the shared emission interval g (Redis's schedule) in seconds.
        recheck_after: while Redis fails, the longest time between tries to get it back.
        heartbeat: seconds between the announcements of this process.
        timeout: seconds one Redis call may take.
        max_processes: the most processes that may share the key: the share assumed before the peers were
            ever counted (None: wait for Redis instead of granting from an unknown share).
        outage_policy: ``"share"`` (grant N / P locally while Redis fails) or ``"wait"`` (grant nothing
            locally while peers were counted: a process cut off alone cannot know the others lost Redis).
    """

    def __init__(
        self,
        quota: Quota,
        policy: LimiterPolicy,
        latency_margin: float,
        *,
        interval: float,
        recheck_after: float,
        heartbeat: float,
        timeout: float,
        max_processes: int | None = None,
        outage_policy: str = "share",
    ) -> None:
        self._wait_for_peers = outage_policy == "wait"
        self._quota = quota
        self._policy = policy
        self._latency_margin = latency_margin
        self._interval = interval
        self._recheck_after = recheck_after
        self._heartbeat = heartbeat
        self._timeout = timeout
        self._max_processes = max_processes
        self.peers = 1 if max_processes is None else max_processes
        """The live processes of the key (this one included) at the last count."""
        self.counted = False
        """Whether the peers were ever counted in Redis (or bounded by ``max_processes``)."""
        self.degraded = False
        self.outage_seen = False
        self.recheck_at = 0.0
        self.share_due = -math.inf
        self.share_until = -math.inf
        self.generation: str | None = None

    # -- questions ------------------------------------------------------------------------------------------

    def sharing_at(self, now: float) -> bool:
        """Whether this process keeps to its share at ``now`` (degraded, or settling after Redis is back)."""
        return self.degraded or now < self.share_until

    def share_interval(self) -> float:
        """Seconds between this process's grants while it keeps to its share."""
        return share_interval(self._quota, self._policy, self._latency_margin, self.peers)

    def share_wait(self, now: float) -> float | None:
        """When the next grant may go if the share holds it back now, else None."""
        if self.degraded and not self.may_share():
            return None  # no local grant at all: the worker waits for Redis, the callers their max_wait
        if self.sharing_at(now) and self.share_due > now:
            return self.share_due
        return None

    def grants_locally(self, now: float) -> bool:
        """Whether the next grant comes from the share without asking Redis."""
        return self.degraded and self.may_share() and now < self.recheck_at

    def may_share(self) -> bool:
        """Whether a local share is known: the peers were counted, or ``max_processes`` bounds them.

        Under ``outage_policy="wait"`` a process with peers never shares: they may still have Redis.
        """
        if self._wait_for_peers and self.peers > 1:
            return False
        return self.counted or self._max_processes is not None

    # -- events ---------------------------------------------------------------------------------------------

    def granted(self, now: float) -> None:
        """A grant went out at ``now``: while sharing, the next one waits a share interval."""
        if self.sharing_at(now):
            self.share_due = max(self.share_due, now) + self.share_interval()

    def peers_seen(self, now: float, count: int) -> None:
        """A heartbeat counted ``count`` live processes of the key."""
        if self.sharing_at(now) or self.outage_seen:
            # A Redis restarted empty has forgotten the peers that are not back yet: never count fewer
            # than before the outage until it is over.
            self.peers = max(self.peers, count)
        else:
            self.peers = max(1, count)
        if self._max_processes is not None:
            self.peers = max(self.peers, min(count, self._max_processes))
        self.counted = True
        if self.degraded:
            self.recheck_at = min(self.recheck_at, now)  # Redis answers: try it for the next grant
        elif self.outage_seen:
            self.settle(now)

    def heartbeat_failed(self) -> None:
        """The heartbeat could not reach Redis: whatever happens next, settle when it is back."""
        self.outage_seen = True

    def settle(self, now: float) -> None:
        """Redis is back after a failure: keep to the share until every peer is back and a window passed."""
        self.outage_seen = False
        period = settle_period(
            recheck=min(self._recheck_after, self._heartbeat + self._timeout),
            timeout=self._timeout,
            share_interval=self.share_interval(),
            quota=self._quota,
            latency_margin=self._latency_margin,
        )
        self.share_until = max(self.share_until, now + period)

    def generation_seen(self, now: float, generation: str) -> bool:
        """Redis answered with schedule ``generation``; True if it changed (a restart, a failover).

        A new generation is a server that lost (or never had) the schedule this process used: its slots
        reserved there are void, and the peers may have granted from theirs. Same settle period as after
        an outage.
        """
        previous, self.generation = self.generation, generation
        if not generation or previous is None or previous == generation:
            return False
        # As when an outage begins: the grants of the old server are not this process's alone, so the
        # next grant waits P intervals; then as after an outage: keep to the share until all settled.
        self.share_due = max(self.share_due, now + local_start_delay(self._interval, self.peers))
        self.settle(now)
        return True

    def failed(self, now: float, *, hung: bool) -> bool:
        """A Redis call failed at ``now``; True when this starts an outage (False: it goes on).

        ``hung``: the call timed out (not repeated at once) rather than being refused.
        """
        if self.degraded:
            # Still failing: the heartbeat says when Redis answers again; at the latest, recheck_after.
            self.recheck_at = now + self._recheck_after
            return False
        self.degraded = True
        self.outage_seen = True
        # The first local grant waits P shared intervals (see _redis_share.local_start_delay). A refused
        # connection costs nothing to try again, so Redis is tried once more just before that grant (a blip
        # then costs no local grant); a call that hung for `timeout` is not repeated at once.
        self.share_due = max(self.share_due, now + local_start_delay(self._interval, self.peers))
        self.recheck_at = now + self._recheck_after if hung else self.share_due
        if not self.may_share():
            # Peers never counted: no local grant; Redis is tried again within a heartbeat.
            self.recheck_at = now + min(self._recheck_after, self._heartbeat)
        return True

    def answered(self, now: float) -> bool:
        """A Redis call succeeded at ``now``; True when this ends an outage."""
        ended = self.degraded
        self.degraded = False
        if self.outage_seen:
            self.settle(now)
        return ended
