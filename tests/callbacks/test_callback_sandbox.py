"""End to end: the sandbox cancels, reverts and calls back; callback_handler verifies and dedupes.

Also the refund recipe of docs/callbacks.md: refund an item once, when its ``reverted`` callback arrives,
keyed on trade id + item id. Everything runs on virtual time (callback retries back off for seconds).
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from aiohttp.test_utils import TestServer

from assetpay_async import AssetPaySession, Quota, TradeStatus
from assetpay_async.callbacks import CallbackEvent, OtherEvent, callback_handler
from assetpay_async.sandbox import DEFAULT_START, Sandbox
from assetpay_async.testing import run_virtual

PATH = "/assetpay/callback"
NEW_SECRET = "sk_new_secret_value"
OLD_SECRET = "sk_old_secret_value"


class RefundLedger:
    """The recipe: an on_event coroutine that refunds each reverted item exactly once."""

    def __init__(self) -> None:
        self.refunded: dict[tuple[str, str], float] = {}
        self.events: list[CallbackEvent] = []

    async def on_event(self, event: CallbackEvent) -> None:
        self.events.append(event)
        for item in event.trade.items:
            key = (event.trade.id, item.id)
            if item.status == TradeStatus.REVERTED and key not in self.refunded:
                price = (item.offer or {}).get("price", 0.0)
                self.refunded[key] = float(price)


async def _serve(ledger: RefundLedger, sb: Sandbox, secrets: list[str]) -> TestServer:
    app = web.Application()
    # The sandbox's wall clock is the handler's "now": sandbox time starts in 2026.
    app.router.add_post(PATH, callback_handler(secrets, ledger.on_event, now=sb.clock.wall))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def _run(ledger: RefundLedger, secrets: list[str], *, items: int) -> tuple[Sandbox, str]:
    """On a virtual-time loop: serve the handler, cancel ``items`` items; the closed sandbox and trade id."""

    async def main() -> tuple[Sandbox, str]:
        async with Sandbox(seed=7, duplicate_callbacks=True) as sb:
            server = await _serve(ledger, sb, secrets)
            try:
                merchant = sb.add_merchant(
                    callback_url=str(server.make_url(PATH)),
                    secret=NEW_SECRET,
                    previous_secret=OLD_SECRET,
                )
                user = sb.add_user(merchant)
                trade = sb.add_trade(user, items=items, age=dt.timedelta(hours=1))
                async with AssetPaySession(
                    cancel_quota=Quota(60, 60.0), base_url=sb.base_url
                ) as session:
                    client = session.client(sb.token(user))
                    for item in trade.items:
                        await client.cancel_withdrawal_item(trade.id, item.id)
                sb.advance(dt.timedelta(seconds=10))
                await sb.settle()
            finally:
                await server.close()
        return sb, trade.id

    return run_virtual(main())


def test_sandbox_callbacks_verify_and_refund_once() -> None:
    ledger = RefundLedger()

    sandbox, trade_id = _run(ledger, [NEW_SECRET], items=2)

    trade = sandbox.trades[trade_id]
    # Every delivery was sent twice with one id: each reached on_event once.
    delivery_ids = {attempt.delivery_id for attempt in sandbox.deliveries}
    assert len(sandbox.deliveries) == 2 * len(delivery_ids)
    assert all(attempt.status == 200 for attempt in sandbox.deliveries)
    assert sorted(e.delivery_id for e in ledger.events) == sorted(delivery_ids)
    # Both items refunded, once each, however many callbacks showed them reverted.
    assert set(ledger.refunded) == {(trade.id, item.id) for item in trade.items}
    assert ledger.events[-1].trade.status == TradeStatus.REVERTED


def test_sandbox_rotation_old_secret_still_verifies() -> None:
    ledger = RefundLedger()

    sandbox, trade_id = _run(ledger, [OLD_SECRET], items=1)

    assert [a.signature.count(",s1=") for a in sandbox.deliveries] == [1, 1]
    assert {a.status for a in sandbox.deliveries} == {200}
    assert set(ledger.refunded) == {(trade_id, sandbox.trades[trade_id].items[0].id)}


def test_sandbox_wrong_secret_is_refused_with_401() -> None:
    ledger = RefundLedger()

    sandbox, _ = _run(ledger, ["not-the-merchant-secret"], items=1)

    assert len(sandbox.deliveries) == 2 * 5  # both copies, every attempt refused
    assert {attempt.status for attempt in sandbox.deliveries} == {401}
    assert ledger.events == []


# --- the sandbox's clock on a real event loop ------------------------------------------------------------


async def test_on_a_real_loop_sandbox_callbacks_pass_a_handler_on_the_system_clock() -> None:
    # Issue 22: Sandbox() started its clock at 2026-01-01, so a handler with the default clock refused every
    # sandbox callback as months old. No now= here: the handler reads the system clock.
    received: list[OtherEvent] = []

    async def on_other(event: OtherEvent) -> None:
        received.append(event)

    app = web.Application()
    app.router.add_post(PATH, callback_handler(NEW_SECRET, _never, on_other=on_other))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with Sandbox(seed=8, callback_attempts=1) as sb:
            merchant = sb.add_merchant(callback_url=str(server.make_url(PATH)), secret=NEW_SECRET)
            delivered = await sb.crypto_deposit(merchant, deposit_id="cd-1")
            skew = abs((sb.clock.wall() - dt.datetime.now(dt.UTC)).total_seconds())
    finally:
        await server.close()

    assert [attempt.status for attempt in sb.deliveries] == [200]
    assert delivered
    assert [event.delivery_id for event in received] == [sb.deliveries[0].delivery_id]
    assert skew < 60


def test_on_virtual_time_and_when_given_the_start_is_kept() -> None:
    async def main() -> tuple[dt.datetime, dt.datetime]:
        async with Sandbox(seed=1) as default, Sandbox(seed=1, start=_GIVEN) as given:
            return default.clock.start, given.clock.start

    assert run_virtual(main()) == (DEFAULT_START, _GIVEN)


async def test_a_given_start_is_kept_on_a_real_loop_too() -> None:
    async with Sandbox(seed=1, start=_GIVEN) as sb:
        assert sb.clock.start == _GIVEN


_GIVEN = dt.datetime(2030, 5, 6, 7, 8, tzinfo=dt.UTC)


async def _never(event: CallbackEvent) -> None:
    raise AssertionError(f"no trade event expected, got {event!r}")


# --- item reverts: the item-level view ------------------------------------------------------------------


def test_every_item_revert_is_seen_item_by_item_though_the_trade_stays_active() -> None:
    # Issue 22: a handler refunding on event.status == REVERTED saw 4 of 5 item reverts as an "active" trade.
    by_item: set[tuple[str, str]] = set()
    by_trade_status: set[tuple[str, str]] = set()

    async def on_event(event: CallbackEvent) -> None:
        for item in event.items_with_status(TradeStatus.REVERTED):
            by_item.add((event.trade.id, item.id))
        if event.status == TradeStatus.REVERTED:  # the trap: only the last callback says so
            by_trade_status.update((event.trade.id, i) for i in event.item_statuses)

    async def main() -> tuple[str, list[str]]:
        async with Sandbox(seed=9) as sb:
            app = web.Application()
            app.router.add_post(PATH, callback_handler(NEW_SECRET, on_event, now=sb.clock.wall))
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            try:
                merchant = sb.add_merchant(
                    callback_url=str(server.make_url(PATH)), secret=NEW_SECRET
                )
                user = sb.add_user(merchant)
                trade = sb.add_trade(user, items=5, age=dt.timedelta(hours=1))
                async with AssetPaySession(
                    cancel_quota=Quota(60, 60.0), base_url=sb.base_url
                ) as session:
                    client = session.client(sb.token(user))
                    for item in trade.items[:4]:
                        await client.cancel_withdrawal_item(trade.id, item.id)
                sb.advance(10)
                await sb.settle()
            finally:
                await server.close()
            return trade.id, [item.id for item in trade.items]

    trade_id, item_ids = run_virtual(main())

    assert by_item == {(trade_id, item_id) for item_id in item_ids[:4]}
    assert (
        by_trade_status == set()
    )  # the fifth item is still active: the trade never became reverted
