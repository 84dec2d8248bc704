"""Trade reads against the sandbox, with and without ``GET /client/trades/{id}`` (absent from the published API).

Every test that reads one trade runs in both route modes (the ``route`` fixture): the SDK must find the same
trade either way, by AssetPay's id or by the merchant's externalId.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from assetpay_async import (
    ForbiddenError,
    Game,
    InvalidRequestError,
    OutcomeKind,
    TradeNotFoundError,
    TradeStatus,
    TradeType,
)
from assetpay_async.sandbox import SandboxBehavior
from assetpay_async.testing import run_virtual
from tests.support.lifecycle import lifecycle_world

HOUR = dt.timedelta(hours=1)


@pytest.fixture(params=["single-trade-route", "list-only"])
def route(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Sandbox options for each reading of the API: the single-trade route present, or absent."""
    present = request.param == "single-trade-route"
    return {"behavior": SandboxBehavior(trade_by_id_route=present)}


def _single_route_present(route: dict[str, Any]) -> bool:
    behavior: SandboxBehavior = route["behavior"]
    return behavior.trade_by_id_route


def test_get_trade_decodes_the_whole_trade(route: dict[str, Any]) -> None:
    async def main() -> None:
        async with lifecycle_world(**route) as w:
            made = w.sandbox.add_trade(w.user, items=2, age=dt.timedelta(hours=2))
            trade = await w.session.client(w.token).get_trade(uuid.UUID(made.id))
            assert trade.id == made.id
            assert trade.type is TradeType.WITHDRAW
            assert trade.game is Game.CS2
            assert trade.status is TradeStatus.ACTIVE
            assert [i.id for i in trade.items] == [i.id for i in made.items]
            assert all(i.appid == 730 and i.status is TradeStatus.ACTIVE for i in trade.items)
            assert trade.created_at == w.sandbox.clock.start + dt.timedelta(seconds=made.created_at)
            assert trade.client_steam_id == w.user.steam_id
            assert trade.item(made.items[1].id.upper()) == trade.items[1]

    run_virtual(main())


def test_get_trade_by_external_id_with_listing_ids(route: dict[str, Any]) -> None:
    async def main() -> None:
        async with lifecycle_world(**route) as w:
            for minutes in range(3):  # other trades around it, newer and older
                w.sandbox.add_trade(w.user, age=dt.timedelta(minutes=minutes))
            made = w.sandbox.add_trade(
                w.user,
                items=2,
                age=dt.timedelta(minutes=5),
                external_id="Order/1042",
                listing_ids=True,
                item_external_ids=["ext-a", "ext-b"],
            )
            w.sandbox.add_trade(w.user, game="rust", age=HOUR)
            client = w.session.client(w.token)
            trade = await client.get_trade("Order/1042")
            assert trade.id == made.id
            assert trade.external_id == "Order/1042"
            listing = made.items[1].id
            assert len(listing) == 16  # a listing id, not a UUID
            assert trade.item(listing) is trade.items[1]
            assert trade.item("ext-b") is trade.items[1]
            with pytest.raises(TradeNotFoundError):
                await client.get_trade("order/1042")  # externalIds are case-sensitive

    run_virtual(main())


def test_get_trade_errors_are_typed(route: dict[str, Any]) -> None:
    async def main() -> None:
        async with lifecycle_world(**route) as w:
            foreign = w.sandbox.add_trade(w.other_user)
            client = w.session.client(w.token)
            with pytest.raises(TradeNotFoundError):
                await client.get_trade(uuid.uuid4())
            if _single_route_present(route):
                with pytest.raises(ForbiddenError):
                    await client.get_trade(foreign.id)
            else:  # the list only shows this user's trades: another user's is not found
                with pytest.raises(TradeNotFoundError):
                    await client.get_trade(foreign.id)
            sent = len(w.sandbox.requests)
            with pytest.raises(InvalidRequestError):
                await client.get_trade("..")
            with pytest.raises(InvalidRequestError):
                await client.get_trade("x", game="440")  # a bad filter fails before the probe too
            assert len(w.sandbox.requests) == sent

    run_virtual(main())


def test_without_the_single_route_the_session_learns_once_and_reads_the_list() -> None:
    async def main() -> None:
        behavior = SandboxBehavior(trade_by_id_route=False)
        async with lifecycle_world(behavior=behavior) as w:
            older = w.sandbox.add_trade(w.user, age=HOUR)
            for seconds in range(150):  # 150 newer CS2 withdrawals: the older trade is on page 2
                w.sandbox.add_trade(w.user, age=dt.timedelta(seconds=seconds))
            client = w.session.client(w.token)
            assert (await client.get_trade(older.id, game=Game.CS2)).id == older.id
            # One probe of the missing route, then two pages of 100.
            assert w.session.limiter_stats("trades-read").granted == 3
            assert [r.path for r in w.sandbox.requests] == ["/client/trades"] * 2
            assert (await client.get_trade(older.id, game="730")).id == older.id
            assert w.session.limiter_stats("trades-read").granted == 5  # no second probe
            # Another client of the same session knows it too.
            other = w.session.client(w.sandbox.token(w.other_user))
            with pytest.raises(TradeNotFoundError):
                await other.get_trade(older.id, game="730")
            assert w.session.limiter_stats("trades-read").granted == 5 + 1

    run_virtual(main())


def test_iter_trades_follows_the_cursor_newest_first_with_filters() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            made = [
                w.sandbox.add_trade(w.user, age=dt.timedelta(minutes=50 - i), game=g)
                for i, g in enumerate(["cs2", "rust", "cs2", "cs2", "rust"])
            ]
            w.sandbox.add_trade(w.user, type="deposit", age=HOUR)
            w.sandbox.add_trade(w.other_user)
            client = w.session.client(w.token)

            # Without a game: both games, merged newest first.
            withdrawals = [t.id async for t in client.iter_trades(type="withdraw", page_size=2)]
            assert withdrawals == [t.id for t in reversed(made)]
            reads = w.sandbox.totals(w.merchant, "trades-read")
            assert reads.accepted == 2 + 1  # CS2: pages of 2 and 1; Rust: one page of 2
            games = [r for r in w.sandbox.requests if r.path == "/client/trades"]
            assert len(games) == 3

            rust = [t async for t in client.iter_trades(game=Game.RUST, type=TradeType.WITHDRAW)]
            assert [t.id for t in rust] == [made[4].id, made[1].id]
            assert all(t.game is Game.RUST for t in rust)

            everything = [t async for t in client.iter_trades()]
            assert len(everything) == 6  # both games, both types; never another user's

            page = await client.list_trades(limit=1)
            assert len(page.items) == 1
            assert page.items[0].game is Game.CS2  # list_trades means CS2 unless told otherwise
            assert page.next_cursor is not None

    run_virtual(main())


def test_breaking_out_of_iter_trades_stops_reading() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            for minutes in range(10):
                w.sandbox.add_trade(w.user, age=dt.timedelta(minutes=minutes))
            client = w.session.client(w.token)
            async for _ in client.iter_trades(game="730", page_size=2):
                break
            assert w.sandbox.totals(w.merchant, "trades-read").accepted == 1

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


def test_wait_for_item_by_external_ids_in_both_route_modes(route: dict[str, Any]) -> None:
    async def main() -> None:
        async with lifecycle_world(**route) as w:
            made = w.sandbox.add_trade(
                w.user,
                age=HOUR,
                external_id="order-7",
                listing_ids=True,
                item_external_ids=["ext-7"],
            )
            client = w.session.client(w.token)
            result = await client.cancel_withdrawal_item("order-7", "ext-7")
            assert (result.trade_id, result.item_id) == (made.id, made.items[0].id)
            assert result.external_id == "ext-7"
            item = await client.wait_for_item("order-7", "ext-7", first_poll=1.0)
            assert item.status is TradeStatus.REVERTED
            assert item.id == made.items[0].id

    run_virtual(main())


def test_reschedule_too_soon_reads_the_trade_in_both_route_modes(route: dict[str, Any]) -> None:
    async def main() -> None:
        async with lifecycle_world(**route) as w:
            young = w.sandbox.add_trade(
                w.user, age=dt.timedelta(minutes=20), listing_ids=True, external_id="young-1"
            )
            client = w.session.client(w.token)
            [outcome] = await client.cancel_withdrawal_items(
                [("young-1", young.items[0].id)], reschedule_too_soon=True
            )
            assert outcome.kind is OutcomeKind.CANCELLED, outcome
            assert outcome.reschedules == 1
            assert w.sandbox.clock.now() >= 10 * 60  # it waited for the item to come of age

    run_virtual(main())
