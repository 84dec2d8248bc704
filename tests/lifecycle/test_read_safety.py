"""Reads fail closed against servers that misbehave on purpose (issue 19, points 3, 4 and 7).

* A listing whose cursors cycle (A -> B -> A), or that never stops giving pages, ends with a typed
  ``ListingDidNotTerminateError`` instead of scanning forever (``get_trade``, ``iter_trades``, following).
* ``GET /client/trades/{id}`` missing behind a gateway that answers in an envelope (404 ``NOT_FOUND``, 1003)
  makes reads fall back to the list; following N trades probes the route once, not N times; one transient
  404 does not switch a session to the list for good.
* ``aclose()`` during ``wait_for_items`` ends the waiters at once with ``SessionClosedError``.

Every test runs on virtual time against a scripted server on loopback and counts its requests.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from assetpay_async import (
    APIError,
    ListingDidNotTerminateError,
    Quota,
    SessionClosedError,
    TradeNotFoundError,
    TradeStatus,
)
from assetpay_async.testing import run_virtual
from tests.support.core import (
    RecordedRequest,
    Reply,
    ScriptedServer,
    api_error,
    echo_cancel,
    make_token,
    new_session,
    success_body,
)

READS = Quota(100, 1.0)
LIST = "/client/trades"
BARE_404 = Reply(404, b"404: Not Found", content_type="text/plain")
GATEWAY_404 = api_error(404, "NOT_FOUND", 1003, message="Cannot GET /client/trades/x")
GATEWAY_404_CODE_ONLY = api_error(404, None, 1003, message="Route not found")


def trade_json(trade_id: str, status: str = "active", *, items: int = 1) -> dict[str, Any]:
    return {
        "id": trade_id,
        "type": "withdraw",
        "status": "active",
        "game": "730",
        "createdAt": "2026-07-31T12:00:00.000Z",
        "items": [{"id": f"{trade_id}-i{n}", "status": status} for n in range(items)],
    }


def page(trades: list[dict[str, Any]], cursor: str | None) -> Reply:
    return Reply(200, success_body({"items": trades, "nextCursor": cursor}))


def split(request: RecordedRequest) -> tuple[str, dict[str, str]]:
    parts = urllib.parse.urlsplit(request.target)
    return parts.path, dict(urllib.parse.parse_qsl(parts.query))


def singles(server: ScriptedServer) -> int:
    return sum(1 for r in server.requests if split(r)[0].startswith(LIST + "/"))


def lists(server: ScriptedServer) -> int:
    return sum(1 for r in server.requests if split(r)[0] == LIST)


def cycling(single: Reply = BARE_404) -> Callable[[RecordedRequest], Reply]:
    """A listing whose cursors go A -> B -> A forever; the single-trade route answers ``single``."""
    following = {None: "A", "A": "B", "B": "A"}

    def respond(request: RecordedRequest) -> Reply:
        path, query = split(request)
        if path != LIST:
            return single
        cursor = query.get("cursor")
        if query.get("game") != "730":
            return page([], None)
        return page([trade_json(f"other-{cursor}")], following[cursor])

    return respond


async def _bounded(coro: Any) -> Any:
    """Main scanned forever here: give up after 30 virtual seconds so the test fails instead of hanging."""
    async with asyncio.timeout(30):
        return await coro


# -- 19.3: a cursor that cycles ------------------------------------------------------------------------


def test_get_trade_ends_a_cycling_listing_with_a_typed_error() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = cycling()
            async with new_session(server.url, trades_quota=READS) as session:
                with pytest.raises(ListingDidNotTerminateError) as info:
                    await _bounded(session.client(make_token()).get_trade("order-7", game="730"))
            assert info.value.cursor == "A"
            assert info.value.game == "730"
            assert "did not terminate" in str(info.value)
            # The probe, then pages None, A, B: B answers A again, which this scan already followed.
            assert (singles(server), lists(server)) == (1, 3)

    run_virtual(main())


def test_iter_trades_ends_a_cycling_listing_after_yielding_what_it_read() -> None:
    async def main() -> None:
        seen: list[str] = []
        async with ScriptedServer() as server:
            server.respond = cycling()
            async with new_session(server.url, trades_quota=READS) as session:
                client = session.client(make_token())

                async def scan() -> None:
                    async for trade in client.iter_trades(game="730"):
                        seen.append(trade.id)  # noqa: PERF401 (kept up to the error)

                with pytest.raises(ListingDidNotTerminateError):
                    await _bounded(scan())
            assert seen == ["other-None", "other-A", "other-B"]
            assert lists(server) == 3

    run_virtual(main())


def test_wait_for_items_ends_its_waiters_on_a_cycling_listing() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = cycling()
            async with new_session(server.url, trades_quota=READS) as session:
                outcomes = await _bounded(
                    session.client(make_token()).wait_for_items(
                        [("order-1", "x"), ("order-2", "y")], timeout=300
                    )
                )
            assert [type(o.error) for o in outcomes] == [ListingDidNotTerminateError] * 2
            # A first scan of one page (one fewer than the single reads it would save) does not find them;
            # the probe finds the single-trade route missing; then ONE full scan for both, stopped at the
            # repeated cursor.
            assert (singles(server), lists(server)) == (1, 1 + 3)

    run_virtual(main())


def test_fresh_cursors_over_the_same_trades_end_the_scan() -> None:
    async def main() -> None:
        count = 0

        def respond(request: RecordedRequest) -> Reply:
            nonlocal count
            count += 1
            return page([trade_json("same-1"), trade_json("same-2")], f"fresh-{count}")

        async with ScriptedServer() as server:
            server.respond = respond
            async with new_session(server.url, trades_quota=READS) as session:
                client = session.client(make_token())
                with pytest.raises(ListingDidNotTerminateError):
                    await _bounded(_drain(client.iter_trades(game="730")))
            assert lists(server) <= 8  # a few repeated pages, not an endless scan

    run_virtual(main())


async def _drain(iterator: Any) -> None:
    async for _ in iterator:
        pass


def test_a_listing_past_its_page_bound_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    from assetpay_async import _listing

    monkeypatch.setattr(_listing, "MAX_PAGES", 25)

    async def main() -> None:
        count = 0

        def respond(request: RecordedRequest) -> Reply:
            nonlocal count
            count += 1
            return page([trade_json(f"t-{count}")], f"c-{count}")

        async with ScriptedServer() as server:
            server.respond = respond
            async with new_session(server.url, trades_quota=READS) as session:
                with pytest.raises(ListingDidNotTerminateError) as info:
                    await _bounded(_drain(session.client(make_token()).iter_trades(game="730")))
            assert info.value.pages == 25
            assert lists(server) == 25

    run_virtual(main())


# -- 19.4: the single-trade route ----------------------------------------------------------------------


@pytest.mark.parametrize("missing", [GATEWAY_404, GATEWAY_404_CODE_ONLY], ids=["key", "code"])
def test_a_gateway_404_in_an_envelope_falls_back_to_the_list(missing: Reply) -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            server.script(missing, page([trade_json("other"), trade_json("wanted")], None))
            async with new_session(server.url, trades_quota=READS) as session:
                trade = await session.client(make_token()).get_trade("wanted", game="730")
            assert trade.id == "wanted"
            assert (singles(server), lists(server)) == (1, 1)

    run_virtual(main())


def test_trade_not_found_from_the_single_route_is_the_answer() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            server.script(api_error(404, "TRADE_NOT_FOUND", 21))
            async with new_session(server.url, trades_quota=READS) as session:
                with pytest.raises(TradeNotFoundError):
                    await session.client(make_token()).get_trade("gone", game="730")
            assert (singles(server), lists(server)) == (1, 0)

    run_virtual(main())


def test_an_unknown_404_envelope_is_still_an_error() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            server.script(api_error(404, "SOMETHING_ELSE", 4242))
            async with new_session(server.url, trades_quota=READS) as session:
                with pytest.raises(APIError) as info:
                    await session.client(make_token()).get_trade("t-1", game="730")
            assert info.value.key == "SOMETHING_ELSE"
            assert lists(server) == 0

    run_virtual(main())


def _list_only(trades: list[dict[str, Any]], missing: Reply) -> Callable[[RecordedRequest], Reply]:
    def respond(request: RecordedRequest) -> Reply:
        path, query = split(request)
        if path != LIST:
            return missing
        return page(trades if query.get("game") == "730" else [], None)

    return respond


@pytest.mark.parametrize("missing", [BARE_404, GATEWAY_404], ids=["bare", "envelope"])
def test_following_many_unlisted_trades_probes_the_missing_route_once(missing: Reply) -> None:
    async def main() -> None:
        refs = [(f"t-{n}", f"t-{n}-i0") for n in range(50)]
        async with ScriptedServer() as server:
            server.respond = _list_only([], missing)  # the list does not show them
            async with new_session(server.url, trades_quota=READS) as session:
                outcomes = await session.client(make_token()).wait_for_items(refs, timeout=60)
            assert [type(o.error) for o in outcomes] == [TradeNotFoundError] * 50
            # The first scan (both games' single page), ONE probe shared by the fifty reads that needed the
            # route (it was fifty probes), then one full scan for them all.
            assert (singles(server), lists(server)) == (1, 2 + 2)

    run_virtual(main())


@pytest.mark.parametrize("missing", [BARE_404, GATEWAY_404], ids=["bare", "envelope"])
def test_concurrent_reads_share_one_probe(missing: Reply) -> None:
    async def main() -> None:
        trades = [trade_json(f"t-{n}") for n in range(20)]
        async with ScriptedServer() as server:
            server.respond = _list_only(trades, missing)
            async with new_session(server.url, trades_quota=READS) as session:
                client = session.client(make_token())
                read = await asyncio.gather(
                    *(client.get_trade(t["id"], game="730") for t in trades)
                )
            assert [t.id for t in read] == [t["id"] for t in trades]
            assert (singles(server), lists(server)) == (
                1,
                20,
            )  # one probe; each read its own search

    run_virtual(main())


def test_following_listed_trades_needs_no_probe() -> None:
    async def main() -> None:
        trades = [trade_json(f"t-{n}", "reverted", items=2) for n in range(50)]
        async with ScriptedServer() as server:
            server.respond = _list_only(trades, BARE_404)
            async with new_session(server.url, trades_quota=READS) as session:
                pairs = [(t["id"], i["id"]) for t in trades for i in t["items"]]
                outcomes = await session.client(make_token()).wait_for_items(pairs, timeout=60)
                assert all(o.status is TradeStatus.REVERTED for o in outcomes)
            assert (singles(server), lists(server)) == (0, 1)  # one page for fifty trades

    run_virtual(main())


def test_one_transient_404_does_not_switch_the_session_to_the_list_for_good() -> None:
    async def main() -> None:
        wanted = trade_json("wanted")
        async with ScriptedServer() as server:
            server.script(
                BARE_404,  # a transient gateway hiccup on the single-trade route
                page([wanted], None),  # this read falls back to the list
            )
            server.respond = lambda request: Reply(200, success_body(wanted))
            async with new_session(server.url, trades_quota=READS) as session:
                client = session.client(make_token())
                assert (await client.get_trade("wanted", game="730")).id == "wanted"
                await asyncio.sleep(120)
                assert (await client.get_trade("wanted", game="730")).id == "wanted"
                assert (await client.get_trade("wanted", game="730")).id == "wanted"
            paths = [split(r)[0] for r in server.requests]
            assert paths == [f"{LIST}/wanted", LIST, f"{LIST}/wanted", f"{LIST}/wanted"]

    run_virtual(main())


def test_a_second_missing_route_answer_later_switches_for_good() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = _list_only([trade_json("wanted")], BARE_404)
            async with new_session(server.url, trades_quota=READS) as session:
                client = session.client(make_token())
                for _ in range(3):
                    assert (await client.get_trade("wanted", game="730")).id == "wanted"
                    await asyncio.sleep(120)
            assert (
                singles(server) == 2
            )  # the probe and the confirmation; the third read went by the list
            assert lists(server) == 3

    run_virtual(main())


# -- 19.7: aclose() during wait_for_items ----------------------------------------------------------------


def test_aclose_ends_the_waiters_at_once_with_session_closed() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with ScriptedServer() as server:
            server.respond = lambda request: Reply(200, success_body(trade_json("t-1", items=2)))
            session = new_session(server.url, trades_quota=READS)
            client = session.client(make_token())
            waiting = asyncio.create_task(
                client.wait_for_items(
                    [("t-1", "t-1-i0"), ("t-1", "t-1-i1")], timeout=900, first_poll=30.0
                )
            )
            await server.wait_for_requests(1)
            await asyncio.sleep(1.0)  # the poller now sleeps until its next poll, 30 s away
            closing = loop.time()
            await session.aclose()
            outcomes = await waiting
            assert loop.time() - closing < 1.0  # not at the next poll
            assert [type(o.error) for o in outcomes] == [SessionClosedError] * 2
            assert len(server.requests) == 1

    run_virtual(main())


def test_aclose_ends_a_waiter_whose_read_is_in_flight() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with ScriptedServer() as server:
            server.respond = lambda request: Reply(200, success_body(trade_json("t-1")), delay=20.0)
            session = new_session(server.url, trades_quota=READS)
            waiting = asyncio.create_task(
                session.client(make_token()).wait_for_item("t-1", "t-1-i0", timeout=900)
            )
            await server.wait_for_requests(1)
            closing = loop.time()
            await session.aclose()
            with pytest.raises(SessionClosedError):
                await waiting
            assert loop.time() - closing < 1.0

    run_virtual(main())


def test_waiting_on_a_closed_session_is_refused() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            session = new_session(server.url, trades_quota=READS)
            client = session.client(make_token())
            await session.aclose()
            outcomes = await client.wait_for_items([(str(uuid.uuid4()), "i")], timeout=60)
            assert isinstance(outcomes[0].error, SessionClosedError)
            assert server.requests == []

    run_virtual(main())


def test_whole_trade_planning_on_a_cycling_listing_cancels_item_by_item() -> None:
    async def main() -> None:
        listing = cycling()

        def respond(request: RecordedRequest) -> Reply:
            if request.method == "POST":
                return echo_cancel(request)
            return listing(request)

        trade = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
        items = ["0010f8d48278ccb8", "0010f8d48278ccb9"]
        async with ScriptedServer() as server:
            server.respond = respond
            async with new_session(server.url, trades_quota=READS) as session:
                outcomes = await _bounded(
                    session.client(make_token()).cancel_withdrawal_items(
                        [(trade, item) for item in items], whole_trades=True
                    )
                )
            assert all(o.ok for o in outcomes)
            posts = [r.target for r in server.requests if r.method == "POST"]
            # The plan could not read the trade (the listing did not terminate): no whole-trade cancel,
            # each item on its own, and the scan stopped at the repeated cursor.
            assert sorted(posts) == [
                f"/client/trading/withdraw/{trade}/items/{item}/cancel" for item in items
            ]
            assert lists(server) == 3

    run_virtual(main())
