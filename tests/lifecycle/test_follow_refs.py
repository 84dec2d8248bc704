"""Following items named by externalIds: the shared poller reads them in both route modes, and a callback
(which names trades by AssetPay's id) settles waiters that named the trade by its externalId."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from assetpay_async import AssetPaySession, Quota, TradeStatus
from assetpay_async.callbacks import CallbackEvent, callback_handler
from assetpay_async.sandbox import Sandbox, SandboxBehavior
from assetpay_async.testing import run_virtual

HOUR = dt.timedelta(hours=1)
CANCELS = Quota(60, 3.0)
READS = Quota(300, 3.0)


@asynccontextmanager
async def _endpoint(sandbox: Sandbox, secret: str, session: AssetPaySession) -> AsyncIterator[str]:
    async def on_event(event: CallbackEvent) -> None:
        return None

    app = web.Application()
    app.router.add_post(
        "/cb", callback_handler(secret, on_event, now=sandbox.clock.wall, session=session)
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/cb"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("single_route", [True, False], ids=["single-trade-route", "list-only"])
@pytest.mark.parametrize("callbacks", [True, False], ids=["callbacks", "polling"])
def test_items_named_by_external_ids_are_followed_to_reverted(
    single_route: bool, callbacks: bool
) -> None:
    async def main() -> None:
        behavior = SandboxBehavior(trade_by_id_route=single_route)
        async with Sandbox(seed=4, revert_delay=5.0, behavior=behavior) as sandbox:
            merchant = sandbox.add_merchant(
                "verified", quotas={"cancel-item": CANCELS, "trades-read": READS}
            )
            user = sandbox.add_user(merchant)
            trades = [
                sandbox.add_trade(
                    user,
                    items=2,
                    age=HOUR,
                    external_id=f"order/{n}",
                    listing_ids=True,
                    item_external_ids=[f"ext-{n}-a", f"ext-{n}-b"],
                )
                for n in range(2)
            ]
            pairs: list[tuple[str, str]] = [
                (f"order/{n}", f"ext-{n}-{x}") for n in range(2) for x in "ab"
            ]
            async with (
                AssetPaySession(
                    cancel_quota=CANCELS, trades_quota=READS, base_url=sandbox.base_url
                ) as session,
                _endpoint(sandbox, merchant.secret, session) as url,
            ):
                if callbacks:
                    merchant.callback_url = url
                client = session.client(sandbox.token(user))
                done = await client.cancel_withdrawal_items(pairs)
                assert all(o.ok for o in done)
                outcomes = await client.wait_for_items(
                    pairs,
                    timeout=600,
                    first_poll=3600 if callbacks else 1.0,
                    max_interval=3600 if callbacks else 2.0,
                )
                await sandbox.settle()
            assert [o.item.status if o.item else o.error for o in outcomes] == [
                TradeStatus.REVERTED
            ] * 4
            assert [o.item.id for o in outcomes if o.item] == [
                i.id for t in trades for i in t.items
            ]
            assert all(o.via_callback for o in outcomes) is callbacks

    run_virtual(main())
