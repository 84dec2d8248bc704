"""get_trade, list_trades and iter_trades against the sandbox, decoded into attrs models."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from assetpay_async import (
    ForbiddenError,
    Game,
    InvalidRequestError,
    TradeNotFoundError,
    TradeStatus,
    TradeType,
)
from assetpay_async.testing import run_virtual
from tests.support.lifecycle import lifecycle_world


def test_get_trade_decodes_the_whole_trade() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            made = w.sandbox.add_trade(w.user, items=2, age=dt.timedelta(hours=2))
            trade = await w.session.client(w.token).get_trade(uuid.UUID(made.id))
            assert trade.id == made.id
            assert trade.type is TradeType.WITHDRAW
            assert trade.game is Game.CS2
            assert trade.status is TradeStatus.ACTIVE
            assert [i.id for i in trade.items] == [i.id for i in made.items]
            assert all(i.appid == 730 and i.status is TradeStatus.ACTIVE for i in trade.items)
            assert trade.created_at == w.sandbox.clock.wall() - dt.timedelta(hours=2)
            assert trade.client_steam_id == w.user.steam_id
            assert trade.item(made.items[1].id.upper()) == trade.items[1]

    run_virtual(main())


def test_get_trade_errors_are_typed() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            foreign = w.sandbox.add_trade(w.other_user)
            client = w.session.client(w.token)
            with pytest.raises(TradeNotFoundError):
                await client.get_trade(uuid.uuid4())
            with pytest.raises(ForbiddenError):
                await client.get_trade(foreign.id)
            with pytest.raises(InvalidRequestError):
                await client.get_trade("../secure")
            assert w.session.limiter_stats("trades-read").granted == 2

    run_virtual(main())


def test_iter_trades_follows_the_cursor_newest_first_with_filters() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            made = [
                w.sandbox.add_trade(w.user, age=dt.timedelta(minutes=50 - i), game=g)
                for i, g in enumerate(["cs2", "rust", "cs2", "cs2", "rust"])
            ]
            w.sandbox.add_trade(w.user, type="deposit")
            w.sandbox.add_trade(w.other_user)
            client = w.session.client(w.token)

            withdrawals = [t.id async for t in client.iter_trades(type="withdraw", page_size=2)]
            assert withdrawals == [t.id for t in reversed(made)]
            reads = w.sandbox.totals(w.merchant, "trades-read")
            assert reads.accepted == 3  # pages of 2, 2 and 1

            rust = [t async for t in client.iter_trades(game=Game.RUST, type=TradeType.WITHDRAW)]
            assert [t.id for t in rust] == [made[4].id, made[1].id]
            assert all(t.game is Game.RUST for t in rust)

            page = await client.list_trades(limit=1)
            assert len(page.items) == 1
            assert page.next_cursor is not None

    run_virtual(main())


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": 0}, {"limit": 101}, {"type": "refund"}, {"game": "440"}, {"cursor": ""}],
)
def test_list_trades_refuses_bad_queries_before_sending(kwargs: dict[str, object]) -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            with pytest.raises(InvalidRequestError):
                await w.session.client(w.token).list_trades(**kwargs)  # type: ignore[arg-type]
            assert w.sandbox.requests == ()

    run_virtual(main())
