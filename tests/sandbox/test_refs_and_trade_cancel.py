"""The sandbox plays the published API: refs may be ids or externalIds, listing ids are not UUIDs, and
``POST /client/trading/withdraw/{tradeId}/cancel`` cancels a whole trade, best effort, on the item quota.

The SDK side runs in both readings of the single-trade route (the ``route`` fixture)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from assetpay_async import (
    CancelStatus,
    NotCancellableError,
    TradeNotFoundError,
    TradeStatus,
)
from assetpay_async.sandbox import Sandbox, SandboxBehavior
from tests.support.sandbox_world import world

HOUR = dt.timedelta(hours=1)


@pytest.fixture(params=["single-trade-route", "list-only"])
def route(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"behavior": SandboxBehavior(trade_by_id_route=request.param == "single-trade-route")}


async def test_cancel_by_external_ids_and_listing_ids(route: dict[str, Any]) -> None:
    async with world(**route) as w:
        trade = w.sandbox.add_trade(
            w.user,
            items=3,
            age=HOUR,
            external_id="Order 1042/A",
            listing_ids=True,
            item_external_ids=["ext-1", "EXT-1", "ext/3"],
        )
        client = w.session.client(w.token)
        by_external = await client.cancel_withdrawal_item("Order 1042/A", "EXT-1")
        by_listing = await client.cancel_withdrawal_item(trade.id, trade.items[2].id)
        assert (by_external.item_id, by_external.external_id) == (trade.items[1].id, "EXT-1")
        assert by_listing.item_id == trade.items[2].id
        assert not by_listing.item_id.count("-")  # a listing id, not a UUID
        assert [r.path for r in w.sandbox.requests] == [
            "/client/trading/withdraw/Order%201042%2FA/items/EXT-1/cancel",
            f"/client/trading/withdraw/{trade.id}/items/{trade.items[2].id}/cancel",
        ]
        w.sandbox.advance(10)
        await w.sandbox.settle()
        read = await client.get_trade("Order 1042/A")
        assert [i.status for i in read.items] == [
            TradeStatus.ACTIVE,
            TradeStatus.REVERTED,
            TradeStatus.REVERTED,
        ]


async def test_whole_trade_cancel_is_one_request_with_a_row_per_item(
    route: dict[str, Any],
) -> None:
    async with world(**route) as w:
        trade = w.sandbox.add_trade(
            w.user, items=4, age=HOUR, listing_ids=True, item_external_ids=["a", "b", "c", "d"]
        )
        trade.items[1].status = "completed"  # delivered: not tried
        trade.items[2].refuse_cancel = True  # the marketplace refuses this one
        client = w.session.client(w.token)
        result = await client.cancel_withdrawal_trade(trade.id)
        assert (result.trade_id, result.requested, result.cancelled, result.failed) == (
            trade.id,
            3,
            2,
            1,
        )
        assert [(r.item_id, r.external_id, r.status, r.reason) for r in result.items] == [
            (trade.items[0].id, "a", CancelStatus.CANCELLED, None),
            (trade.items[2].id, "c", CancelStatus.FAILED, "TRADE_NOT_CANCELLABLE"),
            (trade.items[3].id, "d", CancelStatus.CANCELLED, None),
        ]
        totals = w.sandbox.totals(w.merchant, "cancel-item")
        assert totals.accepted == 1  # one request for the whole trade, on the item cancel's quota
        w.sandbox.advance(10)
        await w.sandbox.settle()
        item = await client.wait_for_item(trade.id, "d", first_poll=1.0)
        assert item.status is TradeStatus.REVERTED
        assert trade.items[2].status == "active"


async def test_whole_trade_cancel_of_a_young_trade_fails_each_item_too_soon(
    route: dict[str, Any],
) -> None:
    async with world(**route) as w:
        trade = w.sandbox.add_trade(w.user, items=2, age=dt.timedelta(minutes=5), external_id="x")
        result = await w.session.client(w.token).cancel_withdrawal_trade("x")
        assert (result.requested, result.cancelled, result.failed) == (2, 0, 2)
        assert {r.reason for r in result.items} == {"TRADE_CANCEL_TOO_SOON"}
        assert all(i.status == "active" for i in trade.items)


async def test_whole_trade_cancel_errors(route: dict[str, Any]) -> None:
    async with world(**route) as w:
        deposit = w.sandbox.add_trade(w.user, type="deposit", age=HOUR)
        client = w.session.client(w.token)
        with pytest.raises(NotCancellableError):
            await client.cancel_withdrawal_trade(deposit.id)
        with pytest.raises(TradeNotFoundError):
            await client.cancel_withdrawal_trade("no-such-order")


async def test_a_repeated_whole_trade_cancel_schedules_nothing_twice() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, items=2, age=HOUR)
        client = w.session.client(w.token)
        first = await client.cancel_withdrawal_trade(trade.id)
        again = await client.cancel_withdrawal_trade(trade.id)  # reverts still pending
        assert first.cancelled == again.cancelled == 2
        w.sandbox.advance(10)
        await w.sandbox.settle()
        assert [i.status for i in trade.items] == ["reverted", "reverted"]
        third = await client.cancel_withdrawal_trade(trade.id)
        assert (third.requested, third.cancelled, third.items) == (0, 0, ())


async def test_ids_that_are_not_uuids_compare_exactly_and_uuids_in_any_case() -> None:
    async with world() as w:
        listing = w.sandbox.add_trade(w.user, age=HOUR, trade_id="trade-ab")
        uuid_trade = w.sandbox.add_trade(w.user, age=HOUR)
        client = w.session.client(w.token)
        assert (await client.get_trade("trade-ab")).id == listing.id == "trade-ab"
        with pytest.raises(TradeNotFoundError):
            await client.get_trade("TRADE-AB")
        assert (await client.get_trade(uuid_trade.id.upper())).id == uuid_trade.id


async def test_a_seed_can_give_listing_ids_and_external_ids() -> None:
    seed = {
        "merchants": [
            {
                "id": "m-1",
                "users": [
                    {
                        "steam_id": "76561198000000042",
                        "trades": [
                            {
                                "age_minutes": 45,
                                "items": 2,
                                "external_id": "order-9",
                                "listing_ids": True,
                                "item_external_ids": ["e-1", "e-2"],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    async with Sandbox.from_seed(seed, seed=2) as sb:
        [trade] = sb.trades.values()
        assert trade.external_id == "order-9"
        assert [len(i.id) for i in trade.items] == [16, 16]
        assert [i.external_id for i in trade.items] == ["e-1", "e-2"]
