"""wait_for_item: poll until the cancelled item is reverted, within the shared read quota."""

from __future__ import annotations

import datetime as dt

import pytest

from assetpay_async import ItemNotFoundError, RevertedBy, TradeStatus, WaitTimeoutError
from assetpay_async.testing import run_virtual
from tests.support.lifecycle import lifecycle_world


def test_cancel_then_wait_reaches_reverted() -> None:
    async def main() -> float:
        async with lifecycle_world(revert_delay=20.0) as w:
            trade = w.sandbox.add_trade(w.user, items=2, age=dt.timedelta(hours=1))
            client = w.session.client(w.token)
            await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
            started = w.sandbox.clock.now()
            item = await client.wait_for_item(trade.id, trade.items[0].id, timeout=120)
            assert item.status is TradeStatus.REVERTED
            assert item.id == trade.items[0].id
            read = await client.get_trade(trade.id)
            assert read.reverted_by is RevertedBy.SUPPLIER
            assert read.items[1].status is TradeStatus.ACTIVE
            return w.sandbox.clock.now() - started

    waited = run_virtual(main())
    assert 20.0 <= waited < 20.0 + 15.0  # returned by the first poll after the revert


def test_wait_polls_back_off_and_stay_within_the_read_quota() -> None:
    async def main() -> None:
        async with lifecycle_world(revert_delay=120.0) as w:
            trade = w.sandbox.add_trade(w.user, age=dt.timedelta(hours=1))
            client = w.session.client(w.token)
            await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
            await client.wait_for_item(
                trade.id, trade.items[0].id, first_poll=1.0, max_interval=10.0
            )
            polls = w.sandbox.totals(w.merchant, "trades-read").accepted
            # 1, 1.5, 2.25, ... capped at 10 s: about 17 polls over 120 s, not 120.
            assert 10 <= polls <= 20
            assert w.sandbox.totals(w.merchant).rate_limited == 0

    run_virtual(main())


def test_wait_times_out_with_the_last_status() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            trade = w.sandbox.add_trade(w.user, age=dt.timedelta(hours=1))
            client = w.session.client(w.token)
            with pytest.raises(WaitTimeoutError) as caught:
                await client.wait_for_item(trade.id, trade.items[0].id, timeout=30)
            assert caught.value.last_status == "active"
            assert isinstance(caught.value, TimeoutError)

    run_virtual(main())


def test_wait_for_an_item_the_trade_does_not_have() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            trade = w.sandbox.add_trade(w.user)
            other = w.sandbox.add_trade(w.user)
            with pytest.raises(ItemNotFoundError):
                await w.session.client(w.token).wait_for_item(trade.id, other.items[0].id)

    run_virtual(main())
