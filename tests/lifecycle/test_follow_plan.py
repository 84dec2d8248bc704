"""The poller learns the revert delay (issue 23): with nothing learnt it reads as it always did; once it has seen
enough trades turn final, a trade followed right after its cancel is read first at a low percentile of that
delay, a slower trade is still found no later than the old schedule finds it, and every item still ends final."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assetpay_async import AssetPayClient, AssetPaySession, Quota, TradeStatus
from assetpay_async._follow_plan import DelayLearner, low_percentile, nominal_after, postpone
from assetpay_async._followed import Watch
from assetpay_async.sandbox import Sandbox, SandboxTrade
from assetpay_async.testing import run_virtual

HOUR = dt.timedelta(hours=1)
CANCELS = Quota(600, 60.0)
READS = Quota(3000, 60.0)
TODAY = [0.0, 1.0, 2.5, 4.75, 8.125, 13.1875, 20.78125, 32.171875, 47.171875, 62.171875, 77.171875]
"""The nominal schedule with first_poll=1, max_interval=15: 0, 1, then the gap growing by half up to 15."""


def _reads(watch: Watch, first: float, until: float) -> list[float]:
    """The read times the watch's own gaps give, from ``first`` up to ``until``."""
    times, at = [], first
    while at <= until:
        times.append(at)
        at += watch.next_gap()
    return times


def _found(times: list[float], revert: float) -> float:
    return next(t for t in times if t >= revert)


# -- pure: the schedule and what is learnt --------------------------------------------------------------


def test_with_nothing_learnt_the_schedule_is_today_s() -> None:
    learner = DelayLearner()
    assert learner.delay() is None
    for _ in range(learner.min_samples - 1):
        learner.observe(62.0)
    assert learner.delay() is None  # too few seen: fail closed
    assert postpone(100.0, 100.0, None, 1.0, 15.0) is None
    watch = Watch(cast(Any, None), "t", 1.0, 15.0)
    assert _reads(watch, 0.0, 80.0) == TODAY


def test_a_learnt_delay_moves_the_first_read_and_keeps_today_s_points_after_it() -> None:
    learner = DelayLearner()
    for delay in [62.2] * 9 + [62.1, 90.0]:
        learner.observe(delay)
    assert learner.delay() == 62.2  # at most a tenth faster: one of eleven may be
    learner.observe(40.0)
    assert learner.delay() == 62.1  # two of twelve may not
    learner = DelayLearner()
    for delay in [62.17] * 10 + [90.0]:
        learner.observe(delay)
    plan = postpone(100.0, 100.0, learner.delay(), 1.0, 15.0)
    assert plan is not None
    assert plan.read_at == pytest.approx(162.17)
    watch = Watch(cast(Any, None), "t", 1.0, 15.0, start=100.0)
    watch.interval, watch.after = plan.then, plan.after
    times = _reads(watch, plan.read_at, 200.0)
    assert times == pytest.approx([162.17, 162.171875, 177.171875, 192.171875])
    assert postpone(100.0, 100.0 + 62.17, 62.17, 1.0, 15.0) is None  # due at or after it: read now


@given(
    delay=st.floats(0.0, 900.0),
    revert=st.floats(0.0, 1800.0),
    first_poll=st.floats(0.5, 20.0),
    max_interval=st.floats(0.5, 60.0),
)
def test_a_trade_is_never_found_later_than_today_s_schedule_or_the_learnt_delay(
    delay: float, revert: float, first_poll: float, max_interval: float
) -> None:
    until = max(revert, delay) + 2 * max(first_poll, max_interval) + 1
    today = _reads(Watch(cast(Any, None), "t", first_poll, max_interval), 0.0, until)
    plan = postpone(0.0, 0.0, delay, first_poll, max_interval)
    if plan is None:  # a zero delay: read now, as today
        assert delay == 0.0
        return
    watch = Watch(cast(Any, None), "t", first_poll, max_interval)
    watch.interval, watch.after = plan.then, plan.after
    planned = _reads(watch, plan.read_at, until)
    found = _found(planned, revert)
    if revert > delay:  # the slow tail: exactly when today's schedule finds it, or sooner
        assert found <= _found(today, revert) + 1e-9
    else:  # faster than the learnt delay: found at it
        assert found == pytest.approx(delay)
    assert len([t for t in planned if t <= found]) <= len([t for t in today if t <= found]) + 1


@given(
    at=st.floats(0.0, 5000.0),
    first_poll=st.floats(0.5, 30.0),
    max_interval=st.floats(0.5, 30.0),
)
def test_nominal_after_is_the_first_point_of_today_s_schedule_past_it(
    at: float, first_poll: float, max_interval: float
) -> None:
    point, gap = nominal_after(at, first_poll, max_interval)
    longest = max(first_poll, max_interval)
    times = _reads(Watch(cast(Any, None), "t", first_poll, max_interval), 0.0, at + 4 * longest)
    following = [t for t in times if t > at]
    assert point == pytest.approx(following[0], rel=1e-9, abs=1e-6)
    assert point > at
    assert gap == pytest.approx(following[1] - following[0], rel=1e-9, abs=1e-6)


def test_a_delay_too_long_to_be_a_revert_is_not_used() -> None:
    learner = DelayLearner()
    for _ in range(20):
        learner.observe(900.0)  # deliveries awaited, not reverts
    assert learner.delay() is None
    for _ in range(20):
        learner.observe(60.0)
    assert learner.delay() == 60.0


def test_the_open_trades_teach_a_lower_bound_before_any_is_final() -> None:
    # Twelve trades still followed, last seen not final at these ages: at least ten were open at 30 s.
    ages = [5.0, 8.0, 30.0, 31.0, 32.0, 33.0, 40.0, 41.0, 42.0, 44.0, 45.0, 47.0]
    assert low_percentile([], ages, 0.1, 10) == 30.0
    assert low_percentile([], ages[:9], 0.1, 10) is None  # nine: too few


def test_the_percentile_holds_against_fast_trades() -> None:
    assert low_percentile([60.0] * 100 + [10.0] * 5, [], 0.1, 10) == 60.0
    assert low_percentile([60.0] * 100 + [10.0] * 20, [], 0.1, 10) == 10.0  # too many are fast
    # Trades open for long count only as far as they were seen: they do not push past the finals.
    assert low_percentile([60.0] * 10, [300.0] * 200, 0.1, 10) == 300.0
    assert low_percentile([60.0] * 40, [300.0] * 200, 0.1, 10) == 60.0


def test_a_watch_another_call_joins_is_read_as_today() -> None:
    async def main() -> None:
        async with Sandbox(seed=5, revert_delay=60.0) as sb:
            merchant = sb.add_merchant(
                "verified", quotas={"cancel-item": CANCELS, "trades-read": READS}
            )
            user = sb.add_user(merchant)
            trade = sb.add_trade(user, items=2, age=HOUR)
            async with _session(sb) as session:
                client = session.client(sb.token(user))
                poller_learns(client, 62.0)
                await client.cancel_withdrawal_trade(trade.id)
                first = asyncio.create_task(client.wait_for_item(trade.id, trade.items[0].id))
                await asyncio.sleep(0.5)
                second = asyncio.create_task(client.wait_for_item(trade.id, trade.items[1].id))
                await asyncio.gather(first, second)
            assert len(_single_reads(sb, trade)) >= 8  # not postponed: the old schedule

    run_virtual(main())


# -- the poller on the sandbox, virtual time ----------------------------------------------------------


def _session(sb: Sandbox) -> AssetPaySession:
    return AssetPaySession(
        cancel_quota=CANCELS,
        trades_quota=READS,
        base_url=sb.base_url,
        latency_margin=0.05,
        wall_clock=sb.clock.wall,
    )


def poller_learns(client: AssetPayClient, delay: float) -> None:
    from assetpay_async._poller import poller_for

    learner = poller_for(client.session, client.merchant_id).learner
    for _ in range(learner.min_samples):
        learner.observe(delay)


def _single_reads(sb: Sandbox, trade: SandboxTrade) -> list[float]:
    path = f"/client/trades/{trade.id}"
    return [r.time for r in sb.requests if r.method == "GET" and r.path == path]


async def _follow_as_cancelled(
    sb: Sandbox, session: AssetPaySession, trades: list[tuple[SandboxTrade, str]], every: float
) -> dict[str, tuple[float, float]]:
    """Cancel each trade (with its user's token), ``every`` seconds apart, and follow it as accepted; each
    trade's (accepted, final) sandbox times."""
    times: dict[str, tuple[float, float]] = {}

    async def follow(client: AssetPayClient, trade: SandboxTrade) -> None:
        accepted = sb.clock.now()
        outcomes = await client.wait_for_items(
            [(trade.id, item.id) for item in trade.items], timeout=3600
        )
        assert all(o.status is TradeStatus.REVERTED for o in outcomes)
        times[trade.id] = (accepted, sb.clock.now())

    tasks = []
    for trade, token in trades:
        client = session.client(token)
        assert (await client.cancel_withdrawal_trade(trade.id)).cancelled == len(trade.items)
        tasks.append(asyncio.create_task(follow(client, trade)))
        await asyncio.sleep(every)
    await asyncio.gather(*tasks)
    return times


def test_trades_followed_as_their_cancels_are_accepted_are_read_once_when_learnt() -> None:
    async def main() -> None:
        async with Sandbox(seed=5, revert_delay=60.0) as sb:
            merchant = sb.add_merchant(
                "verified", quotas={"cancel-item": CANCELS, "trades-read": READS}
            )
            users = [sb.add_user(merchant) for _ in range(40)]
            trades = [(sb.add_trade(u, items=3, age=HOUR), sb.token(u)) for u in users]
            async with _session(sb) as session:
                times = await _follow_as_cancelled(sb, session, trades, every=5.0)
            first = _single_reads(sb, trades[0][0])
            # Nothing learnt yet: the first trade is read as it always was (at once, 1 s, 2.5 s, ...).
            assert [round(t - first[0], 1) for t in first] == [round(t, 1) for t in TODAY[:10]]
            # Once learnt, one read each, and found final as soon as before (the old schedule: 62.2 s).
            for trade, _ in trades[-15:]:
                assert len(_single_reads(sb, trade)) == 1
                accepted, final = times[trade.id]
                assert final - accepted <= 62.171875 + 0.5
            assert sum(len(_single_reads(sb, t)) for t, _ in trades) < 0.5 * 10 * len(trades)

    run_virtual(main())


@pytest.mark.parametrize("revert", [100.0, 30.0])
def test_a_trade_slower_or_faster_than_learnt_is_found_in_time(revert: float) -> None:
    async def main() -> tuple[float, float]:
        async with Sandbox(seed=5, revert_delay=60.0) as sb:
            merchant = sb.add_merchant(
                "verified", quotas={"cancel-item": CANCELS, "trades-read": READS}
            )
            users = [sb.add_user(merchant) for _ in range(21)]
            trades = [(sb.add_trade(u, items=2, age=HOUR), sb.token(u)) for u in users]
            async with _session(sb) as session:
                await _follow_as_cancelled(sb, session, trades[:20], every=5.0)
                sb.revert_delay = revert
                times = await _follow_as_cancelled(sb, session, trades[20:], every=0.0)
            accepted, final = times[trades[20][0].id]
            return final - accepted, len(_single_reads(sb, trades[20][0]))

    took, reads = run_virtual(main())
    if revert > 62.2:  # slower than learnt: at the old schedule's first point after it, 107.2 s
        assert took <= 107.171875 + 0.5
        assert reads == 1 + sum(1 for t in [*TODAY, 92.171875, 107.171875] if 62.2 < t <= 108)
    else:  # faster: at the learnt delay, one read
        assert took <= 62.171875 + 0.5
        assert reads == 1
