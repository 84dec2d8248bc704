"""Following items where ``GET /client/trades/{id}`` is missing: one list scan a round for every followed trade.

A poll round reads the due trades of a client token together. Where the single-trade route serves, that is one
read per trade; where the session found it missing, ONE scan of ``GET /client/trades`` (newest first, stopping
once every due trade was seen) instead of one scan per trade.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest

from assetpay_async import TradeNotFoundError, TradeStatus
from assetpay_async.sandbox import SandboxBehavior
from assetpay_async.testing import run_virtual
from tests.support.core import (
    RecordedRequest,
    Reply,
    ScriptedServer,
    api_error,
    make_token,
    new_session,
    success_body,
)
from tests.support.lifecycle import READS, World, lifecycle_world

HOUR = dt.timedelta(hours=1)
LIST = "/client/trades"
LIST_ONLY = SandboxBehavior(trade_by_id_route=False)


def _list_reads(w: World) -> int:
    return sum(1 for r in w.sandbox.requests if r.method == "GET" and r.path == LIST)


def _single_reads(w: World) -> int:
    return sum(1 for r in w.sandbox.requests if r.method == "GET" and r.path.startswith(LIST + "/"))


async def _learn_the_route_is_missing(w: World) -> None:
    """One get_trade, so the session knows; then forget its requests for the counts that follow."""
    probe = w.sandbox.add_trade(w.user, age=2 * HOUR)
    await w.session.client(w.token).get_trade(probe.id)
    assert w.session.client(w.token)._requester.trade_routes.single_trade_missing


def _followed_behind_newer_trades(w: World, followed: int, newer: int, **kwargs: Any) -> list[Any]:
    """``followed`` trades of 3 items, then ``newer`` trades created after them (so listed before them)."""
    trades = [
        w.sandbox.add_trade(w.user, items=3, age=HOUR + dt.timedelta(seconds=n), **kwargs)
        for n in range(followed)
    ]
    for n in range(newer):
        w.sandbox.add_trade(w.user, age=dt.timedelta(seconds=n))
    return trades


@pytest.mark.parametrize("present", [True, False], ids=["single-trade-route", "list-only"])
def test_one_round_costs_one_read_per_trade_or_one_scan(present: bool) -> None:
    async def main() -> None:
        behavior = SandboxBehavior(trade_by_id_route=present)
        async with lifecycle_world(behavior=behavior) as w:
            if not present:
                await _learn_the_route_is_missing(w)
            # 30 followed trades behind 120 newer ones: positions 121-150, page 2 of the CS2 list.
            trades = _followed_behind_newer_trades(w, 30, 120, item_status="reverted")
            pairs = [(t.id, i.id) for t in trades for i in t.items]
            singles, lists = _single_reads(w), _list_reads(w)
            outcomes = await w.session.client(w.token).wait_for_items(pairs, timeout=60)
            assert all(o.status is TradeStatus.REVERTED for o in outcomes)
            # 90 items, 30 trades: two pages (down to the oldest followed trade), not 30 scans of two; and
            # where the single-trade route serves, the same two pages instead of 30 single reads (issue 23).
            assert (_single_reads(w) - singles, _list_reads(w) - lists) == (0, 2)

    run_virtual(main())


def test_the_round_that_learns_the_route_is_missing_scans_once() -> None:
    async def main() -> None:
        async with lifecycle_world(behavior=LIST_ONLY) as w:
            trades = _followed_behind_newer_trades(w, 10, 0, item_status="reverted")
            pairs = [(t.id, i.id) for t in trades for i in t.items]
            outcomes = await w.session.client(w.token).wait_for_items(pairs, timeout=60)
            assert all(o.status is TradeStatus.REVERTED for o in outcomes)
            # One page for all ten, found before the single-trade route is needed at all: no probe (it was one
            # probe per trade before issue 19.4; the limiter counts requests to a route the sandbox lacks).
            assert w.session.limiter_stats("trades-read").granted == 1
            assert _list_reads(w) == 1

    run_virtual(main())


def test_every_round_costs_the_pages_down_to_the_oldest_followed_trade() -> None:
    async def main() -> None:
        async with lifecycle_world(behavior=LIST_ONLY, revert_delay=30.0) as w:
            await _learn_the_route_is_missing(w)
            trades = _followed_behind_newer_trades(w, 30, 120)
            pairs = [(t.id, i.id) for t in trades for i in t.items]
            client = w.session.client(w.token)
            await client.cancel_withdrawal_items(pairs)
            lists = _list_reads(w)
            outcomes = await client.wait_for_items(pairs, first_poll=1.0, max_interval=10.0)
            assert all(o.status is TradeStatus.REVERTED for o in outcomes)
            assert _single_reads(w) == 0
            scans = _list_reads(w) - lists
            # The backoff 1, 1.5, 2.25, ... capped at 10 s reaches 30 s in about 8 rounds of two pages each;
            # one scan per trade would cost 30 x 2 pages a round.
            assert scans % 2 == 0
            assert 6 * 2 <= scans <= 10 * 2

    run_virtual(main())


def test_a_trade_not_listed_ends_its_waiters_after_a_complete_scan() -> None:
    async def main() -> None:
        async with lifecycle_world(behavior=LIST_ONLY) as w:
            await _learn_the_route_is_missing(w)
            (listed,) = _followed_behind_newer_trades(w, 1, 150, item_status="reverted")
            foreign = w.sandbox.add_trade(w.other_user, item_status="reverted")
            absent = str(uuid.uuid4())
            pairs = [
                (listed.id, listed.items[0].id),
                (absent, str(uuid.uuid4())),
                (foreign.id, foreign.items[0].id),
            ]
            lists = _list_reads(w)
            outcomes = await w.session.client(w.token).wait_for_items(pairs, timeout=60)
            assert outcomes[0].status is TradeStatus.REVERTED
            for outcome in outcomes[1:]:
                assert isinstance(outcome.error, TradeNotFoundError)
                assert "game 730 and 252490" in str(outcome.error)
            # One scan for all three: every CS2 page (151 trades: two) and the one Rust page.
            assert _list_reads(w) - lists == 3

    run_virtual(main())


def _trade_json(trade_id: str, item_id: str, status: str) -> dict[str, object]:
    return {
        "id": trade_id,
        "type": "withdraw",
        "status": "active",
        "createdAt": "2026-01-01T00:00:00Z",
        "items": [{"id": item_id, "status": status}],
    }


def test_a_failing_page_leaves_the_unseen_waiters_for_the_next_round() -> None:
    a_trade, a_item, b_trade, b_item = (str(uuid.uuid4()) for _ in range(4))

    async def main() -> None:
        started = asyncio.get_running_loop().time()

        def respond(request: RecordedRequest) -> Reply:
            path, _, query = request.target.partition("?")
            if path != LIST:  # the single-trade route is missing: a bare 404, no envelope
                return Reply(404, b"Not Found", content_type="text/plain")
            if "cursor=" not in query:
                page: dict[str, object] = {
                    "items": [_trade_json(a_trade, a_item, "reverted")],
                    "nextCursor": "c2",
                }
                return Reply(200, success_body(page))
            if asyncio.get_running_loop().time() - started < 0.5:  # the first round's page 2 fails
                return api_error(503, "SERVICE_UNAVAILABLE", 1009)
            page = {"items": [_trade_json(b_trade, b_item, "reverted")], "nextCursor": None}
            return Reply(200, success_body(page))

        async with ScriptedServer() as server:
            server.respond = respond
            async with new_session(server.url, trades_quota=READS) as session:
                outcomes = await session.client(make_token()).wait_for_items(
                    [(a_trade, a_item), (b_trade, b_item)], timeout=60
                )
        assert [o.status for o in outcomes] == [TradeStatus.REVERTED, TradeStatus.REVERTED]
        assert [o.error for o in outcomes] == [None, None]
        targets = [r.target for r in server.requests]
        assert sum(1 for t in targets if not t.startswith(LIST + "?")) == 1  # one probe, for B
        listing = [t for t in targets if t.startswith(LIST + "?")]
        failed = [t for t in listing if "cursor=c2" in t][:-1]
        # Round 1: page 1 (A is final there; the scan may read one page fewer than the single reads it
        # saves), then B's probe finds the route missing and a full scan reads page 1 and page 2, failing
        # after its retries; round 2 reads pages 1 and 2 again for B alone, which is then final.
        assert len(failed) >= 2  # page 2 was retried before the round gave up
        assert len(listing) == 1 + 1 + len(failed) + 2

    run_virtual(main())
