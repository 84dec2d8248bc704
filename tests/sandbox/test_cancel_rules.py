"""The cancel route's contract, through the SDK over loopback."""

from __future__ import annotations

import datetime as dt

import pytest

from assetpay_async import (
    CancelStatus,
    CancelTooSoonError,
    ForbiddenError,
    ItemNotFoundError,
    NotCancellableError,
    TradeNotFoundError,
)
from assetpay_async.sandbox import RustCancelAnswer, SandboxBehavior
from tests.support.sandbox_world import world

HOUR = dt.timedelta(hours=1)
OTHER_UUID = "00000000-0000-4000-8000-000000000000"


async def test_accepted_cancel_answers_cancelled_then_reverts_later() -> None:
    async with world(revert_delay=5.0) as w:
        trade = w.sandbox.add_trade(w.user, items=2, age=HOUR, item_external_ids=True)
        item = trade.items[0]
        result = await w.session.client(w.token).cancel_withdrawal_item(trade.id, item.id)
        assert (str(result.trade_id), str(result.item_id)) == (trade.id, item.id)
        assert result.status is CancelStatus.CANCELLED
        assert result.external_id == item.external_id
        assert item.status == "active"  # no inline state change
        w.sandbox.advance(5.0)
        await w.sandbox.settle()
        assert item.status == "reverted"
        assert trade.reverted_by == "supplier"
        assert trade.status == "active"  # the other item is still in flight


async def test_trade_follows_once_every_item_is_terminal() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, items=2, age=HOUR)
        client = w.session.client(w.token)
        for item in trade.items:
            await client.cancel_withdrawal_item(trade.id, item.id)
        w.sandbox.advance(60)
        await w.sandbox.settle()
        assert [it.status for it in trade.items] == ["reverted", "reverted"]
        assert trade.status == "reverted"


async def test_second_cancel_while_revert_pending_answers_200_and_reverts_once() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        client = w.session.client(w.token)
        first = await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        second = await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert first.status is second.status is CancelStatus.CANCELLED
        assert len(w.sandbox._tasks) == 1  # one revert scheduled, not two
        w.sandbox.advance(60)
        await w.sandbox.settle()
        with pytest.raises(NotCancellableError) as caught:
            await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert caught.value.key == "TRADE_NOT_CANCELLABLE"


async def test_younger_than_30_minutes_is_too_soon_until_the_clock_moves() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=dt.timedelta(minutes=29))
        client = w.session.client(w.token)
        with pytest.raises(CancelTooSoonError) as caught:
            await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert (caught.value.code, caught.value.http_status) == (27, 400)
        w.sandbox.advance(dt.timedelta(minutes=1))
        result = await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert result.status is CancelStatus.CANCELLED


async def test_unknown_trade_is_trade_not_found() -> None:
    async with world() as w:
        with pytest.raises(TradeNotFoundError) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(OTHER_UUID, OTHER_UUID)
        assert (caught.value.code, caught.value.http_status) == (21, 404)


async def test_trade_of_another_user_is_forbidden() -> None:
    async with world() as w:
        other = w.sandbox.add_user(w.merchant)
        trade = w.sandbox.add_trade(other, age=HOUR)
        with pytest.raises(ForbiddenError) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert (caught.value.code, caught.value.http_status) == (1300, 403)


async def test_trade_of_another_merchant_is_not_revealed() -> None:
    async with world() as w:
        stranger = w.sandbox.add_user(w.sandbox.add_merchant())
        trade = w.sandbox.add_trade(stranger, age=HOUR)
        with pytest.raises(TradeNotFoundError):
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)


async def test_item_not_under_trade_is_item_not_found() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        other = w.sandbox.add_trade(w.user, age=HOUR)
        with pytest.raises(ItemNotFoundError) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, other.items[0].id)
        assert (caught.value.code, caught.value.http_status) == (2201, 404)


@pytest.mark.parametrize(
    ("kind", "status", "why"),
    [
        ("deposit", "active", "Only withdrawal items"),
        ("withdraw", "completed", "already completed"),
        ("withdraw", "reverted", "already reverted"),
        ("withdraw", "canceled", "already canceled"),
        ("withdraw", "failed", "already failed"),
    ],
)
async def test_deposits_and_terminal_items_are_not_cancellable(
    kind: str, status: str, why: str
) -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR, type=kind, item_status=status)
        with pytest.raises(NotCancellableError) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert (caught.value.code, caught.value.key) == (28, "TRADE_NOT_CANCELLABLE")
        assert why in caught.value.message


async def test_rust_is_not_cancellable_by_default() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, game="rust", age=HOUR)
        assert trade.items[0].appid == 252490
        with pytest.raises(NotCancellableError) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert caught.value.key == "TRADE_NOT_CANCELLABLE"


async def test_rust_may_answer_cancel_unsupported_with_a_chosen_status() -> None:
    behavior = SandboxBehavior(rust_cancel=RustCancelAnswer.UNSUPPORTED, cancel_error_status=422)
    async with world(behavior=behavior) as w:
        trade = w.sandbox.add_trade(w.user, game="rust", age=HOUR)
        with pytest.raises(NotCancellableError) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert (caught.value.key, caught.value.http_status) == ("TRADE_CANCEL_UNSUPPORTED", 422)


async def test_marketplace_refusal_of_one_item() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, items=2, age=HOUR)
        trade.items[0].refuse_cancel = True
        client = w.session.client(w.token)
        with pytest.raises(NotCancellableError, match="marketplace rejected"):
            await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert (
            await client.cancel_withdrawal_item(trade.id, trade.items[1].id)
        ).status == "cancelled"


async def test_marketplace_refusal_chance_is_seeded() -> None:
    outcomes = []
    for _ in range(2):
        async with world(marketplace_refusal=0.5, seed=42) as w:
            trade = w.sandbox.add_trade(w.user, items=12, age=HOUR)
            client = w.session.client(w.token)
            run = []
            for item in trade.items:
                try:
                    await client.cancel_withdrawal_item(trade.id, item.id)
                    run.append(True)
                except NotCancellableError:
                    run.append(False)
            outcomes.append(run)
    assert outcomes[0] == outcomes[1]
    assert 0 < sum(outcomes[0]) < 12
