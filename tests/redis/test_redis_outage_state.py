"""The outage state machine on its own (pure: every event takes the time it happens at)."""

from __future__ import annotations

import pytest

from assetpay_async._limiter_types import LimiterPolicy
from assetpay_async._quota import Quota
from assetpay_async._redis_outage import OutageState, horizon_retry, reservation_bound

QUOTA = Quota(10, 9.0)


def state(max_processes: int | None = None, outage_policy: str = "share") -> OutageState:
    return OutageState(
        QUOTA,
        LimiterPolicy.EVEN,
        0.0,
        interval=1.0,
        recheck_after=5.0,
        heartbeat=1.0,
        timeout=1.0,
        max_processes=max_processes,
        outage_policy=outage_policy,
    )


def test_a_new_generation_settles_as_after_an_outage_and_delays_the_next_grant() -> None:
    machine = state()
    machine.peers_seen(0.0, 3)

    first = machine.generation_seen(1.0, "run-a")
    same = machine.generation_seen(2.0, "run-a")
    changed = machine.generation_seen(3.0, "run-b")

    assert (first, same, changed) == (False, False, True)
    assert machine.sharing_at(3.0)
    assert machine.share_wait(3.0) == pytest.approx(3.0 + 3 * 1.0)  # P intervals, as an outage
    assert not machine.sharing_at(3.0 + 60.0)


def test_an_unknown_generation_changes_nothing() -> None:
    machine = state()
    machine.generation_seen(0.0, "run-a")

    assert not machine.generation_seen(1.0, "")
    assert not machine.sharing_at(1.0)


def test_peers_never_counted_means_no_local_share_unless_bounded() -> None:
    unknown, bounded = state(), state(max_processes=4)

    for machine in (unknown, bounded):
        machine.failed(0.0, hung=False)

    assert not unknown.may_share()
    assert not unknown.grants_locally(0.5)
    assert unknown.share_wait(0.5) is None
    assert bounded.may_share()
    assert bounded.peers == 4


def test_wait_policy_grants_nothing_locally_while_peers_were_counted() -> None:
    waiting, sharing, alone = state(outage_policy="wait"), state(), state(outage_policy="wait")
    waiting.peers_seen(0.0, 3)
    sharing.peers_seen(0.0, 3)
    alone.peers_seen(0.0, 1)

    for machine in (waiting, sharing, alone):
        machine.failed(1.0, hung=True)

    assert not waiting.may_share()
    assert not waiting.grants_locally(1.5)
    assert waiting.share_wait(1.5) is None
    assert waiting.recheck_at == pytest.approx(2.0)  # Redis tried again within a heartbeat
    assert sharing.grants_locally(5.0)
    assert alone.may_share()  # alone at its last count: nobody else can hold Redis's schedule


def test_reservations_never_reach_beyond_the_horizon() -> None:
    horizon = 2_000_000
    assert reservation_bound(-1, horizon) == horizon  # no max_wait: the horizon bounds it
    assert reservation_bound(500_000, horizon) == 500_000  # a shorter budget bounds it
    assert reservation_bound(9_000_000, horizon) == horizon
    # Refused by the horizon alone: ask again when the slot comes within it.
    assert horizon_retry(3_500_000, -1, horizon) == pytest.approx(1.5)
    assert horizon_retry(3_500_000, 9_000_000, horizon) == pytest.approx(1.5)
    assert horizon_retry(2_000_100, -1, horizon) == pytest.approx(0.001)  # never a busy loop
    # Refused because the waiter cannot wait that long: it ends (QueueTimeoutError).
    assert horizon_retry(3_500_000, 1_000_000, horizon) is None
