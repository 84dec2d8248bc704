"""wait_for_items: one shared poller per merchant reads each trade once a round; callbacks settle waiters at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from assetpay_async import (
    AssetPaySession,
    InvalidRequestError,
    ItemNotFoundError,
    TradeNotFoundError,
    TradeStatus,
    WaitTimeoutError,
)
from assetpay_async.callbacks import CallbackEvent, callback_handler
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual
from tests.support.core import (
    Reply,
    ScriptedServer,
    api_error,
    make_token,
    new_session,
    success_body,
)
from tests.support.lifecycle import CANCELS, READS, World, lifecycle_world

HOUR = dt.timedelta(hours=1)


def _reads(world: World | Sandbox) -> Counter[str]:
    sandbox = world.sandbox if isinstance(world, World) else world
    return Counter(r.path for r in sandbox.requests if r.method == "GET")


def test_items_already_final_cost_one_read_per_trade() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            trades = [
                w.sandbox.add_trade(w.user, items=5, age=HOUR, item_status="reverted")
                for _ in range(10)
            ]
            pairs = [(t.id, i.id) for t in trades for i in t.items]
            outcomes = await w.session.client(w.token).wait_for_items(pairs, timeout=60)
            assert [(o.trade_id, o.item_id) for o in outcomes] == pairs
            assert all(o.final and o.status is TradeStatus.REVERTED for o in outcomes)
            assert [o.index for o in outcomes] == list(range(50))
            # 50 items, 10 trades: one page of the list shows all ten (issue 23: it was one read per trade).
            assert _reads(w) == Counter({"/client/trades": 1})
            assert not any(o.via_callback for o in outcomes)

    run_virtual(main())


def test_a_round_reads_each_trade_once_however_many_items_are_followed() -> None:
    async def main() -> float:
        async with lifecycle_world(revert_delay=30.0) as w:
            trades = [w.sandbox.add_trade(w.user, items=5, age=HOUR) for _ in range(10)]
            pairs = [(t.id, i.id) for t in trades for i in t.items]
            client = w.session.client(w.token)
            await client.cancel_withdrawal_items(pairs)
            started = w.sandbox.clock.now()
            outcomes = await client.wait_for_items(pairs, first_poll=1.0, max_interval=10.0)
            assert all(o.status is TradeStatus.REVERTED for o in outcomes)
            reads = _reads(w)
            # A round is one page of the list for the ten trades (they are the user's newest), not one read
            # per item nor per trade. The backoff 1, 1.5, 2.25, ... capped at 10 s reaches 30 s in about 8
            # rounds.
            assert set(reads) == {"/client/trades"}
            assert 6 <= reads["/client/trades"] <= 10
            assert w.sandbox.totals(w.merchant, "trades-read").rate_limited == 0
            return w.sandbox.clock.now() - started

    waited = run_virtual(main())
    assert 28.0 <= waited < 30.0 + 10.0 + 1.0


def test_concurrent_wait_for_item_calls_share_the_poller() -> None:
    async def main() -> None:
        async with lifecycle_world(revert_delay=20.0) as w:
            trade = w.sandbox.add_trade(w.user, items=8, age=HOUR)
            client = w.session.client(w.token)
            await client.cancel_withdrawal_items([(trade.id, i.id) for i in trade.items])
            items = await asyncio.gather(
                *(client.wait_for_item(trade.id, i.id, max_interval=5.0) for i in trade.items)
            )
            assert all(i.status is TradeStatus.REVERTED for i in items)
            alone = _reads(w)[f"/client/trades/{trade.id}"]
            assert alone <= 12  # one poller for 8 waiters, not 8 pollers (about 8 x 9 reads)

    run_virtual(main())


def test_timeouts_missing_items_and_refused_reads_end_each_item_in_order() -> None:
    async def main() -> None:
        async with lifecycle_world(revert_delay=5.0) as w:
            quick = w.sandbox.add_trade(w.user, age=HOUR)
            slow = w.sandbox.add_trade(w.user, age=HOUR)
            client = w.session.client(w.token)
            await client.cancel_withdrawal_item(quick.id, quick.items[0].id)
            pairs = [
                (quick.id, quick.items[0].id),
                (slow.id, slow.items[0].id),  # never cancelled: times out
                (quick.id, str(uuid.uuid4())),  # no such item
                (str(uuid.uuid4()), str(uuid.uuid4())),  # no such trade
            ]
            outcomes = await client.wait_for_items(pairs, timeout=20)
            assert outcomes[0].status is TradeStatus.REVERTED
            assert isinstance(outcomes[1].error, WaitTimeoutError)
            assert outcomes[1].error.last_status == "active"
            assert isinstance(outcomes[2].error, ItemNotFoundError)
            assert isinstance(outcomes[3].error, TradeNotFoundError)
            assert [o.final for o in outcomes] == [True, False, False, False]

    run_virtual(main())


def test_bad_input_is_refused_before_any_read() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            client = w.session.client(w.token)
            with pytest.raises(InvalidRequestError, match="pair 1"):
                await client.wait_for_items([(uuid.uuid4(), uuid.uuid4()), ("x", "..")])
            with pytest.raises(InvalidRequestError, match="timeout"):
                await client.wait_for_items([(uuid.uuid4(), uuid.uuid4())], timeout=0)
            assert w.sandbox.requests == ()

    run_virtual(main())


def test_transient_read_failures_keep_polling_until_the_item_is_final() -> None:
    trade_id, item_id = uuid.uuid4(), uuid.uuid4()

    def trade(status: str) -> Reply:
        body = {
            "id": str(trade_id),
            "type": "withdraw",
            "status": "active",
            "createdAt": "2026-01-01T00:00:00Z",
            "items": [{"id": str(item_id), "status": status}],
        }
        return Reply(200, success_body(body))

    async def main() -> None:
        async with ScriptedServer() as server:
            server.script(
                trade("active"),
                api_error(503, "SERVICE_UNAVAILABLE", 1009),
                trade("reverted"),
            )
            async with new_session(server.url, trades_quota=READS) as session:
                item = await session.client(make_token()).wait_for_item(
                    trade_id, item_id, timeout=60
                )
        assert item.status is TradeStatus.REVERTED
        assert len(server.requests) == 3

    run_virtual(main())


@asynccontextmanager
async def _callback_endpoint(
    sandbox: Sandbox, secret: str, session: AssetPaySession
) -> AsyncIterator[str]:
    events: list[CallbackEvent] = []

    async def on_event(event: CallbackEvent) -> None:
        events.append(event)

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


def test_callbacks_settle_waiters_at_once_without_further_reads() -> None:
    async def main() -> None:
        async with Sandbox(seed=2, revert_delay=5.0) as sandbox:
            merchant = sandbox.add_merchant(
                "verified", quotas={"cancel-item": CANCELS, "trades-read": READS}
            )
            user = sandbox.add_user(merchant)
            trades = [sandbox.add_trade(user, items=4, age=HOUR) for _ in range(3)]
            pairs = [(t.id, i.id) for t in trades for i in t.items]
            async with (
                AssetPaySession(
                    cancel_quota=CANCELS, trades_quota=READS, base_url=sandbox.base_url
                ) as session,
                _callback_endpoint(sandbox, merchant.secret, session) as url,
            ):
                merchant.callback_url = url
                client = session.client(sandbox.token(user))
                await client.cancel_withdrawal_items(pairs)
                started = sandbox.clock.now()
                # Polls an hour apart: only callbacks can end this quickly.
                outcomes = await client.wait_for_items(
                    pairs, timeout=3000, first_poll=3600, max_interval=3600
                )
                waited = sandbox.clock.now() - started
                await sandbox.settle()
            assert all(o.status is TradeStatus.REVERTED for o in outcomes)
            assert all(o.via_callback for o in outcomes)
            assert waited < 6.0
            assert (
                sum(_reads(sandbox).values()) == 1
            )  # the first look at the trades (one page), no more

    run_virtual(main())
