"""The shared poller and the merchant's read quota (issue 23): it spends at most ``poll_read_share`` of it, and
reads a round of one user's trades with one scan of the list where that costs fewer requests."""

from __future__ import annotations

import asyncio
import datetime as dt
import math

import pytest

from assetpay_async import AssetPaySession, ConfigurationError, Quota, TradeStatus
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual
from tests.support.lifecycle import CANCELS, World, lifecycle_world

HOUR = dt.timedelta(hours=1)
SLOW_READS = Quota(30, 60.0)
LIST = "/client/trades"


@pytest.mark.parametrize("share", [0, -0.5, 1.5, math.nan, math.inf, True, "half", None])
def test_a_bad_share_is_a_configuration_error(share: object) -> None:
    with pytest.raises(ConfigurationError, match="poll_read_share"):
        AssetPaySession(tier="verified", poll_read_share=share)  # type: ignore[arg-type]


async def _follow_one_trade_per_user(share: float) -> tuple[float, int]:
    """20 users with one never-final trade each, followed for 10 minutes at 30 reads a minute; the busiest
    60 s's share of the read quota and the reads. A page of the list shows one user's trades: nothing to
    batch, so every poll is one ``GET /client/trades/{id}``."""
    async with Sandbox(seed=3) as sb:
        merchant = sb.add_merchant(
            "unverified", quotas={"cancel-item": CANCELS, "trades-read": SLOW_READS}
        )
        users = [sb.add_user(merchant) for _ in range(20)]
        trades = [sb.add_trade(user, age=HOUR) for user in users]
        async with AssetPaySession(
            cancel_quota=CANCELS,
            trades_quota=SLOW_READS,
            base_url=sb.base_url,
            latency_margin=0.05,
            poll_read_share=share,
        ) as session:
            waits = [
                session.client(sb.token(user)).wait_for_items(
                    [(trade.id, trade.items[0].id)], timeout=600
                )
                for user, trade in zip(users, trades, strict=True)
            ]
            outcomes = await asyncio.gather(*waits)
        assert all(o[0].error is not None for o in outcomes)  # never final: timed out
        return sb.quota_share(merchant, "trades-read"), sb.totals(merchant, "trades-read").accepted


@pytest.mark.parametrize("share", [0.5, 0.2])
def test_the_poller_stays_within_its_share_of_the_read_quota(share: float) -> None:
    used, reads = run_virtual(_follow_one_trade_per_user(share))
    assert used <= share
    assert reads >= share * 30 * 10 * 0.9  # and it does use its share: ten minutes of it


def test_the_whole_quota_is_the_poller_s_when_the_session_says_so() -> None:
    used, _ = run_virtual(_follow_one_trade_per_user(1.0))
    assert used > 0.9  # the old behaviour, on request: the test above can fail


def _singles(w: World) -> int:
    return sum(1 for r in w.sandbox.requests if r.method == "GET" and r.path.startswith(LIST + "/"))


def _lists(w: World) -> int:
    return sum(1 for r in w.sandbox.requests if r.method == "GET" and r.path == LIST)


def test_trades_deep_in_the_listing_cost_one_short_scan_then_single_reads() -> None:
    async def main() -> None:
        async with lifecycle_world(revert_delay=30.0) as w:
            followed = [w.sandbox.add_trade(w.user, items=2, age=2 * HOUR) for _ in range(3)]
            for n in range(500):  # five pages of newer trades above them
                w.sandbox.add_trade(w.user, age=dt.timedelta(seconds=n))
            pairs = [(t.id, i.id) for t in followed for i in t.items]
            client = w.session.client(w.token)
            await client.cancel_withdrawal_items(pairs)
            lists, singles = _lists(w), _singles(w)
            outcomes = await client.wait_for_items(pairs, first_poll=1.0, max_interval=10.0)
            assert all(o.status is TradeStatus.REVERTED for o in outcomes)
            # Round 1: the scan may read 3 - 1 = 2 pages (what it could save), does not reach them, and the
            # three are read singly; every later round reads them singly at once, never scanning again.
            assert _lists(w) - lists == 2
            rounds = (_singles(w) - singles) / 3
            assert rounds == int(rounds)
            assert 6 <= rounds <= 10

    run_virtual(main())


def test_trades_followed_by_separate_calls_share_the_rounds() -> None:
    async def main() -> None:
        async with lifecycle_world(revert_delay=30.0) as w:
            first = [w.sandbox.add_trade(w.user, items=2, age=HOUR) for _ in range(10)]
            second = [w.sandbox.add_trade(w.user, items=2, age=HOUR) for _ in range(10)]
            client = w.session.client(w.token)
            pairs = [[(t.id, i.id) for t in trades for i in t.items] for trades in (first, second)]
            await client.cancel_withdrawal_items(pairs[0] + pairs[1])
            lists = _lists(w)
            one = asyncio.create_task(client.wait_for_items(pairs[0], max_interval=10.0))
            await asyncio.sleep(0.4)  # a second call, a little later, for other trades of the user
            two = asyncio.create_task(client.wait_for_items(pairs[1], max_interval=10.0))
            for outcomes in await asyncio.gather(one, two):
                assert all(o.status is TradeStatus.REVERTED for o in outcomes)
            # One page a round for the twenty trades once the second call's trades ride along with the
            # first's (about 8 rounds to 30 s), not a scan for each call every round (about 16).
            assert _lists(w) - lists <= 11
            assert _singles(w) == 0

    run_virtual(main())
