"""Cancel, then the sandbox's signed `reverted` callback reaches our handler exactly once."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from assetpay_async import AssetPaySession, TradeStatus
from assetpay_async.callbacks import CallbackEvent, callback_handler
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual
from tests.support.lifecycle import CANCELS, READS


@asynccontextmanager
async def callback_server(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/assetpay"
    finally:
        await runner.cleanup()


def test_reverted_callback_is_handled_once_although_delivered_twice() -> None:
    async def main() -> None:
        events: list[CallbackEvent] = []

        async def on_event(event: CallbackEvent) -> None:
            events.append(event)

        async with Sandbox(seed=5, duplicate_callbacks=True, revert_delay=10.0) as sandbox:
            merchant = sandbox.add_merchant("verified", quotas={"cancel-item": CANCELS})
            app = web.Application()
            app.router.add_post(
                "/assetpay",
                callback_handler(merchant.secret, on_event, now=sandbox.clock.wall),
            )
            async with callback_server(app) as url:
                merchant.callback_url = url
                user = sandbox.add_user(merchant)
                trade = sandbox.add_trade(user, items=2, age=dt.timedelta(hours=1))
                async with AssetPaySession(
                    cancel_quota=CANCELS, trades_quota=READS, base_url=sandbox.base_url
                ) as session:
                    client = session.client(sandbox.token(user))
                    await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
                    await client.wait_for_item(trade.id, trade.items[0].id)
                await sandbox.settle()

            delivered = [d for d in sandbox.deliveries if d.status == 200]
            assert len(delivered) == 2  # the sandbox really delivered the event twice
            assert len({d.delivery_id for d in delivered}) == 1
            assert len(events) == 1  # ... and our coroutine saw it once
            event = events[0]
            assert event.trade.id == trade.id
            item = event.trade.item(trade.items[0].id)
            assert item is not None
            assert item.status is TradeStatus.REVERTED

    run_virtual(main())
