"""Reading trades against a scripted server: the single-trade route missing (404/405 without an envelope),
the list fallback, repeated cursors, answers naming another trade, and the whole-trade cancel on the wire."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from assetpay_async import (
    CancelStatus,
    Game,
    InvalidResponseError,
    Quota,
    TradeNotFoundError,
)
from tests.support.core import (
    TRADE_ID,
    Reply,
    ScriptedServer,
    api_error,
    make_token,
    new_session,
    success_body,
)

READS = Quota(1000, 1.0)
OTHER = "00000000-0000-4000-8000-000000000001"


def trade_doc(
    trade_id: str,
    *,
    external_id: str | None = None,
    game: str = "730",
    created: str = "2026-07-31T12:00:00.000Z",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": trade_id,
        "type": "withdraw",
        "status": "active",
        "game": game,
        "createdAt": created,
        "items": [{"id": "0010f8d48278ccb8", "appid": int(game), "status": "active"}],
    }
    if external_id is not None:
        doc["externalId"] = external_id
    return doc


def page(*trades: dict[str, Any], cursor: str | None = None) -> Reply:
    return Reply(200, success_body({"items": list(trades), "nextCursor": cursor}))


def query(target: str) -> tuple[str, dict[str, str]]:
    """The path and the query (one value per name) of a request target."""
    parts = urllib.parse.urlsplit(target)
    return parts.path, dict(urllib.parse.parse_qsl(parts.query))


MISSING_ROUTES = [
    Reply(404, b"404: Not Found", content_type="text/plain"),
    Reply(404, b"", content_type=None),
    Reply(404, b"<html><body>Cannot GET</body></html>", content_type="text/html"),
    Reply(405, b"405: Method Not Allowed", content_type="text/plain"),
]


@pytest.mark.parametrize(
    "missing", MISSING_ROUTES, ids=["404-text", "404-empty", "404-html", "405"]
)
async def test_a_missing_single_route_falls_back_to_the_list_once_per_session(
    server: ScriptedServer, missing: Reply
) -> None:
    target = trade_doc(str(TRADE_ID), external_id="order-7")
    server.script(
        missing,
        page(trade_doc(OTHER), cursor="c1"),
        page(trade_doc(OTHER), target),  # found on page 2, by its externalId
        page(target),  # the second read: straight to the list
    )
    async with new_session(server.url, trades_quota=READS) as session:
        client = session.client(make_token())
        trade = await client.get_trade("order-7", game=Game.CS2)
        assert trade.id == str(TRADE_ID)
        again = await client.get_trade(TRADE_ID, game="730")
        assert again.id == str(TRADE_ID)
        assert (
            session.limiter_stats("trades-read").granted == 4
        )  # every attempt paid the read quota
    targets = [query(r.target) for r in server.requests]
    assert targets[0] == ("/client/trades/order-7", {})
    assert targets[1] == (
        "/client/trades",
        {"limit": "100", "type": "withdraw", "game": "730"},
    )
    assert targets[2] == (
        "/client/trades",
        {"limit": "100", "cursor": "c1", "type": "withdraw", "game": "730"},
    )
    assert targets[3] == ("/client/trades", {"limit": "100", "type": "withdraw", "game": "730"})


async def test_an_enveloped_404_is_assetpays_answer_not_a_missing_route(
    server: ScriptedServer,
) -> None:
    server.script(
        api_error(404, "TRADE_NOT_FOUND", 21),
        Reply(200, success_body(trade_doc(str(TRADE_ID)))),
    )
    async with new_session(server.url, trades_quota=READS) as session:
        client = session.client(make_token())
        with pytest.raises(TradeNotFoundError):
            await client.get_trade(OTHER)
        assert (await client.get_trade(TRADE_ID)).id == str(TRADE_ID)  # still the single route
    assert [r.target for r in server.requests] == [
        f"/client/trades/{OTHER}",
        f"/client/trades/{TRADE_ID}",
    ]


async def test_without_a_game_both_games_are_searched_and_the_miss_is_trade_not_found(
    server: ScriptedServer,
) -> None:
    server.script(
        MISSING_ROUTES[0],
        page(trade_doc(OTHER)),  # CS2: one page, not there
        page(trade_doc(str(TRADE_ID), game="252490")),  # Rust: there
        page(trade_doc(OTHER)),
        page(),
    )
    async with new_session(server.url, trades_quota=READS) as session:
        client = session.client(make_token())
        trade = await client.get_trade(
            str(TRADE_ID).upper()
        )  # a UUID in another case still matches
        assert trade.game is Game.RUST
        with pytest.raises(TradeNotFoundError) as info:
            await client.get_trade("missing-1")
        assert info.value.key == "TRADE_NOT_FOUND"
    games = [query(r.target)[1].get("game") for r in server.requests]
    assert games == [None, "730", "252490", "730", "252490"]


async def test_a_repeated_cursor_ends_the_scan(server: ScriptedServer) -> None:
    server.script(
        page(trade_doc(OTHER), cursor="c1"),
        page(trade_doc(str(TRADE_ID)), cursor="c1"),  # the same cursor again: the last page
        MISSING_ROUTES[0],
        page(trade_doc(OTHER), cursor="c9"),
        page(trade_doc(OTHER), cursor="c9"),
    )
    async with new_session(server.url, trades_quota=READS) as session:
        client = session.client(make_token())
        seen = [t.id async for t in client.iter_trades(game="730")]
        assert seen == [OTHER, str(TRADE_ID)]
        with pytest.raises(TradeNotFoundError):  # the fallback scan stops there too
            await client.get_trade("order-7", game="730")
    assert len(server.requests) == 5


async def test_list_trades_sends_its_game_and_iter_trades_asks_every_game(
    server: ScriptedServer,
) -> None:
    server.script(
        page(),
        page(trade_doc("cs-old", created="2026-07-31T10:00:00Z"), cursor="a"),
        page(trade_doc("rust-new", game="252490", created="2026-07-31T11:00:00Z")),
        page(trade_doc("cs-older", created="2026-07-31T09:00:00Z")),
    )
    async with new_session(server.url, trades_quota=READS) as session:
        client = session.client(make_token())
        await client.list_trades()
        merged = [t.id async for t in client.iter_trades()]
    assert merged == ["rust-new", "cs-old", "cs-older"]  # newest first across games
    assert query(server.requests[0].target)[1] == {"limit": "100", "game": "730"}
    assert [query(r.target)[1]["game"] for r in server.requests[1:]] == ["730", "252490", "730"]


async def test_the_single_route_answering_another_trade_is_an_invalid_read(
    server: ScriptedServer,
) -> None:
    server.script(Reply(200, success_body(trade_doc(OTHER, external_id="order-8"))))
    async with new_session(server.url, trades_quota=READS) as session:
        with pytest.raises(InvalidResponseError) as info:
            await session.client(make_token()).get_trade("order-7")
    assert info.value.ambiguous is False  # a read changed nothing


async def test_the_list_route_failing_too_is_not_mistaken_for_a_miss(
    server: ScriptedServer,
) -> None:
    server.script(MISSING_ROUTES[0], MISSING_ROUTES[2])
    async with new_session(server.url, trades_quota=READS) as session:
        with pytest.raises(InvalidResponseError) as info:
            await session.client(make_token()).get_trade(TRADE_ID)
    assert info.value.http_status == 404
    assert len(server.requests) == 2


async def test_a_cancel_answer_naming_another_item_is_an_ambiguous_invalid_response(
    server: ScriptedServer,
) -> None:
    body = {"tradeId": str(TRADE_ID), "itemId": OTHER, "status": "cancelled"}
    server.script(Reply(200, success_body(body)))
    async with new_session(server.url) as session:
        with pytest.raises(InvalidResponseError) as info:
            await session.client(make_token()).cancel_withdrawal_item(
                TRADE_ID, "00000000-0000-4000-8000-000000000002"
            )
    assert info.value.ambiguous


async def test_the_whole_trade_cancel_on_the_wire(server: ScriptedServer) -> None:
    data = {
        "tradeId": str(TRADE_ID),
        "requested": 3,
        "cancelled": 1,
        "failed": 2,
        "items": [
            {"itemId": "0010f8d48278ccb8", "externalId": "ext-1", "status": "cancelled"},
            {"itemId": "0010f8d48278ccb9", "status": "failed", "reason": "TRADE_CANCEL_TOO_SOON"},
            {"itemId": "0010f8d48278ccba", "status": "failed", "reason": "SOMETHING_NEW"},
        ],
    }
    server.script(Reply(200, success_body(data, "srv-7")))
    async with new_session(server.url, trades_quota=READS) as session:
        result = await session.client(make_token()).cancel_withdrawal_trade("order/7")
        assert session.limiter_stats().granted == 1  # the item cancel's quota
        assert session.limiter_stats("trades-read").granted == 0
    [request] = server.requests
    assert (request.method, request.target, request.body) == (
        "POST",
        "/client/trading/withdraw/order%2F7/cancel",
        b"",
    )
    assert (result.trade_id, result.requested, result.cancelled, result.failed) == (
        str(TRADE_ID),
        3,
        1,
        2,
    )
    assert result.request_id == "srv-7"
    assert [row.cancelled for row in result.items] == [True, False, False]
    assert [row.reason for row in result.items] == [None, "TRADE_CANCEL_TOO_SOON", "SOMETHING_NEW"]
    assert result.items[1].status is CancelStatus.FAILED
    assert result.item("ext-1") is result.items[0]
    assert result.item("0010f8d48278ccb9") is result.items[1]


@pytest.mark.parametrize(
    "data",
    [
        {"tradeId": OTHER, "requested": 0, "cancelled": 0, "failed": 0, "items": []},
        {"tradeId": str(TRADE_ID), "requested": "1", "cancelled": 0, "failed": 0},
        {"tradeId": str(TRADE_ID), "requested": 1, "cancelled": 1, "failed": 0, "items": [{}]},
        {"tradeId": str(TRADE_ID), "items": []},
    ],
    ids=["another-trade", "string-count", "bad-row", "no-counts"],
)
async def test_a_bad_whole_trade_cancel_answer_is_ambiguous(
    server: ScriptedServer, data: dict[str, Any]
) -> None:
    server.script(Reply(200, success_body(data)))
    async with new_session(server.url) as session:
        with pytest.raises(InvalidResponseError) as info:
            await session.client(make_token()).cancel_withdrawal_trade(TRADE_ID)
    assert info.value.ambiguous  # AssetPay acted on something
