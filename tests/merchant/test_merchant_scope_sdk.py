"""session.merchant: reads by refs (chunked, encoded, both readings), own-trade listing, own-buy cancels."""

from __future__ import annotations

import asyncio

import pytest

from assetpay_async import (
    AssetPaySession,
    CancelTooSoonError,
    InvalidRequestError,
    InvalidResponseError,
    ListingDidNotTerminateError,
    Quota,
    RouteGroup,
    TradeNotFoundError,
)
from assetpay_async.sandbox import SandboxBehavior
from tests.support.core import Reply, ScriptedServer, new_session, success_body

from ._world import API_KEY, HOUR, merchant_world


def _trade(trade_id: str, **extra: object) -> dict[str, object]:
    return {
        "id": trade_id,
        "type": "withdraw",
        "status": "active",
        "createdAt": "2026-01-01T00:00:00Z",
        **extra,
    }


async def test_reading_250_refs_takes_3_requests_and_unresolved_refs_are_left_out() -> None:
    async with merchant_world() as w:
        trades = [w.sandbox.add_trade(w.user, age=HOUR) for _ in range(240)]
        refs = [t.id for t in trades] + [f"missing-{i}" for i in range(10)]
        found = await w.session.merchant.get_trades(refs)
        assert sorted(t.id for t in found) == sorted(t.id for t in trades)
        reads = [r for r in w.sandbox.requests if r.path.startswith("/secure/trades/")]
        assert len(reads) == 3
        assert [r.path.count(",") + 1 for r in reads] == [100, 100, 50]
        assert w.session.limiter_stats(RouteGroup.MERCHANT_READ).granted == 3


async def test_one_ref_is_one_trade_and_a_404_for_it_is_an_empty_answer() -> None:
    async with merchant_world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR, external_id="order/17")
        assert [t.id for t in await w.session.merchant.get_trades(["order/17"])] == [trade.id]
        assert await w.session.merchant.get_trades(["nothing-here"]) == []
        paths = [r.path for r in w.sandbox.requests]
        assert paths == ["/secure/trades/order%2F17", "/secure/trades/nothing-here"]


async def test_resolve_maps_each_ref_to_its_trade_by_id_or_external_id() -> None:
    async with merchant_world() as w:
        one = w.sandbox.add_trade(w.user, age=HOUR, external_id="ext-1")
        two = w.sandbox.add_trade(w.user, age=HOUR)
        found = await w.session.merchant.resolve(["ext-1", two.id.upper(), "gone", "ext-1"])
        assert {ref: t.id for ref, t in found.items()} == {"ext-1": one.id, two.id.upper(): two.id}


@pytest.mark.parametrize("include_clients", [True, False])
async def test_both_readings_of_whether_clients_trades_are_returned(include_clients: bool) -> None:
    behavior = SandboxBehavior(secure_trades_include_clients=include_clients)
    async with merchant_world(behavior=behavior) as w:
        own = w.sandbox.add_trade(w.user, age=HOUR, source="self")
        theirs = w.sandbox.add_trade(w.user, age=HOUR)
        found = await w.session.merchant.resolve([own.id, theirs.id])
        assert set(found) == ({own.id, theirs.id} if include_clients else {own.id})
        # A ref left out is for the caller to read in the client scope: it is simply absent.
        single = await w.session.merchant.get_trades([theirs.id])
        assert [t.id for t in single] == ([theirs.id] if include_clients else [])


@pytest.mark.parametrize(
    "refs", [["a,b"], ["ok", ""], ["ok", "   "], ["x" * 129], [5], "one-string"]
)
async def test_bad_refs_fail_before_anything_is_sent(refs: object) -> None:
    async with merchant_world() as w:
        with pytest.raises(InvalidRequestError):
            await w.session.merchant.get_trades(refs)  # type: ignore[arg-type]
        assert w.sandbox.requests == ()


async def test_merchant_scope_calls_need_a_known_merchant_id() -> None:
    async with merchant_world(merchant_id=False) as w:
        with pytest.raises(InvalidRequestError, match="merchant id"):
            await w.session.merchant.get_trades(["a"])
        assert w.sandbox.requests == ()


async def test_a_trade_no_ref_names_is_refused() -> None:
    async with ScriptedServer() as server:
        server.script(Reply(200, success_body([_trade("11111111-1111-4111-8111-111111111111")])))
        async with new_session(server.url, api_key=API_KEY, merchant_id="m-1") as session:
            with pytest.raises(InvalidResponseError):
                await session.merchant.get_trades(
                    ["22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"]
                )
        assert server.requests[0].headers["api-key"] == API_KEY


async def test_a_trade_without_created_at_is_a_decoding_error_not_the_oldest_trade() -> None:
    async with ScriptedServer() as server:
        broken = _trade("t-1")
        del broken["createdAt"]
        server.script(Reply(200, success_body(broken)))
        async with new_session(server.url, api_key=API_KEY, merchant_id="m-1") as session:
            with pytest.raises(InvalidResponseError):
                await session.merchant.get_trades(["t-1"])


async def test_iter_trades_reads_the_merchants_own_trades_page_by_page() -> None:
    async with merchant_world() as w:
        own = [w.sandbox.add_trade(w.user, age=HOUR, source="self") for _ in range(5)]
        w.sandbox.add_trade(w.user, age=HOUR)  # a client's trade: not listed
        seen = [t.id async for t in w.session.merchant.iter_trades(page_size=2)]
        assert sorted(seen) == sorted(t.id for t in own)
        assert sum(r.path == "/secure/trades" for r in w.sandbox.requests) == 3


async def test_iter_trades_ends_with_a_typed_error_on_a_cursor_that_comes_back() -> None:
    async with ScriptedServer() as server:
        pages = [
            {"items": [_trade("t-1")], "nextCursor": "c1"},
            {"items": [_trade("t-2")], "nextCursor": "c2"},
            {"items": [_trade("t-3")], "nextCursor": "c1"},  # back to an earlier page
        ]
        server.script(*(Reply(200, success_body(p)) for p in pages))
        seen: list[str] = []

        async def scan(session: AssetPaySession) -> None:
            async for trade in session.merchant.iter_trades():
                seen.append(trade.id)  # noqa: PERF401 - kept up to the error

        async with new_session(server.url, api_key=API_KEY, merchant_id="m-1") as session:
            with pytest.raises(ListingDidNotTerminateError, match="GET /secure/trades") as caught:
                await scan(session)
        assert seen == ["t-1", "t-2", "t-3"]  # what was read before the cycle was yielded
        assert caught.value.cursor == "c1"
        assert len(server.requests) == 3


async def test_iter_trades_ends_quietly_when_the_cursor_sent_comes_straight_back() -> None:
    async with ScriptedServer() as server:
        pages = [
            {"items": [_trade("t-1")], "nextCursor": "c1"},
            {"items": [_trade("t-2")], "nextCursor": "c1"},  # the official client's end marker
        ]
        server.script(*(Reply(200, success_body(p)) for p in pages))
        async with new_session(server.url, api_key=API_KEY, merchant_id="m-1") as session:
            seen = [t.id async for t in session.merchant.iter_trades()]
        assert seen == ["t-1", "t-2"]
        assert len(server.requests) == 2


async def test_iter_trades_gives_up_after_its_page_cap() -> None:
    async with ScriptedServer() as server:
        counter = iter(range(10_000))

        def fresh_page(request: object) -> Reply:
            n = next(counter)
            return Reply(200, success_body({"items": [_trade(f"t-{n}")], "nextCursor": f"c{n}"}))

        server.respond = fresh_page
        async with new_session(server.url, api_key=API_KEY, merchant_id="m-1") as session:
            with pytest.raises(ListingDidNotTerminateError, match="more than 4 pages"):
                async for _ in session.merchant.iter_trades(max_pages=4):
                    pass
        assert len(server.requests) == 4


async def test_merchant_reads_are_paced_by_the_merchant_read_quota() -> None:
    async with merchant_world(tier="unverified") as w:
        assert w.session.quota(RouteGroup.MERCHANT_READ) == Quota(100, 60.0)
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(w.session.merchant.get_trades([trade.id]) for _ in range(150)))
        assert (
            loop.time() - started >= 30.0
        )  # 150 reads at 100 a minute: not all in the first window
        assert w.sandbox.totals(w.merchant, "merchant-read").rate_limited == 0
    async with merchant_world() as w:
        assert w.session.quota(RouteGroup.MERCHANT_READ) == Quota(3000, 60.0)


async def test_a_merchant_item_cancel_and_whole_buy_cancel() -> None:
    async with merchant_world() as w:
        buy = w.sandbox.add_trade(w.user, age=HOUR, source="self", items=3)
        result = await w.session.merchant.cancel_buy_item(buy.id, buy.items[0].id)
        assert (result.trade_id, result.item_id) == (buy.id, buy.items[0].id)
        whole = await w.session.merchant.cancel_buy(buy.id)
        assert (whole.requested, whole.cancelled, whole.failed) == (3, 3, 0)
        assert whole.to_dict()["items"][0]["status"] == "cancelled"
        paths = [r.path for r in w.sandbox.requests]
        assert paths == [
            f"/secure/buy/{buy.id}/items/{buy.items[0].id}/cancel",
            f"/secure/buy/{buy.id}/cancel",
        ]
        # Assumed: the merchant scope's cancels share the item-cancel bucket with the client scope.
        assert w.session.limiter_stats(RouteGroup.CANCEL_ITEM).granted == 2


async def test_a_merchant_cancel_of_a_clients_trade_is_trade_not_found() -> None:
    async with merchant_world() as w:
        theirs = w.sandbox.add_trade(w.user, age=HOUR)
        with pytest.raises(TradeNotFoundError):
            await w.session.merchant.cancel_buy_item(theirs.id, theirs.items[0].id)
        with pytest.raises(TradeNotFoundError):
            await w.session.merchant.cancel_buy(theirs.id)


async def test_a_merchant_cancel_too_soon_is_the_same_typed_error_as_the_client_scopes() -> None:
    async with merchant_world() as w:
        young = w.sandbox.add_trade(w.user, source="self")
        with pytest.raises(CancelTooSoonError) as caught:
            await w.session.merchant.cancel_buy_item(young.id, young.items[0].id)
        assert caught.value.ambiguous is False
