"""The outage state machine on its own (pure: every event takes the time it happens at)."""

from __future__ import annotations

import pytest

from assetpay_async._limiter_types import LimiterPolicy
from assetpay_async._quota import Quota
from assetpay_async._redis_outage import OutageState

QUOTA = Quota(10, 9.0)


def state(max_processes: int | None = None) -> OutageState:
    return OutageState(
        QUOTA,
        LimiterPolicy.EVEN,
        0.0,
        interval=1.0,
        recheck_after=5.0,
        heartbeat=1.0,
        timeout=1.0,
        max_processes=max_processes,
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
