"""CancelBatch(whole_trades=True): one whole-trade cancel where the pairs name every open item of a trade.

Against the sandbox in both readings of the API (the single-trade route present or absent) for what the
option does and must never do; against a scripted server for the answers the sandbox does not give.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import attrs
import pytest

from assetpay_async import (
    APIError,
    BatchProgress,
    CancelBatch,
    CancelTooSoonError,
    ForbiddenError,
    InvalidRequestError,
    InvalidResponseError,
    OutcomeDetail,
    OutcomeKind,
    ServerError,
)
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
from tests.support.lifecycle import World, lifecycle_world

HOUR = dt.timedelta(hours=1)


@pytest.fixture(params=["single-trade-route", "list-only"])
def route(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Sandbox options for each reading of the API: the single-trade route present, or absent."""
    return {"behavior": SandboxBehavior(trade_by_id_route=request.param == "single-trade-route")}


def _whole_trade_cancels(w: World) -> list[str]:
    return [
        r.path
        for r in w.sandbox.requests
        if r.method == "POST" and r.path.endswith("/cancel") and "/items/" not in r.path
    ]


def _item_cancels(w: World) -> list[str]:
    return [r.path for r in w.sandbox.requests if r.method == "POST" and "/items/" in r.path]


def _reads(w: World) -> int:
    return sum(r.method == "GET" for r in w.sandbox.requests)


def test_a_fully_requested_trade_takes_one_read_and_one_cancel(route: dict[str, Any]) -> None:
    async def main() -> None:
        async with lifecycle_world(revert_delay=5.0, **route) as w:
            trade = w.sandbox.add_trade(w.user, items=4, age=HOUR, item_external_ids=True)
            pairs: list[tuple[object, object]] = [
                (trade.id, trade.items[0].id),
                (uuid.UUID(trade.id), uuid.UUID(trade.items[1].id)),  # the same trade, as UUIDs
                (trade.id, trade.items[2].external_id),  # an item named by its externalId
                (trade.id, trade.items[3].id),
                (trade.id, trade.items[0].id),  # a duplicate: one outcome shared
                (trade.id, ".."),  # a bad ref: failed before anything is sent
            ]
            outcomes = await w.session.client(w.token).cancel_withdrawal_items(
                pairs, whole_trades=True
            )
            assert _whole_trade_cancels(w) == [f"/client/trading/withdraw/{trade.id}/cancel"]
            assert _item_cancels(w) == []
            if route["behavior"].trade_by_id_route:
                assert _reads(w) == 1
            assert [o.kind for o in outcomes[:5]] == [OutcomeKind.CANCELLED] * 5
            for o, item in zip(outcomes[:4], trade.items, strict=True):
                assert o.result is not None
                assert (o.result.trade_id, o.result.item_id) == (trade.id, item.id)
                assert o.result.external_id == item.external_id
                assert o.result.request_id is not None
            assert outcomes[4].duplicate_of == 0
            assert outcomes[5].kind is OutcomeKind.FAILED
            assert isinstance(outcomes[5].error, InvalidRequestError)
            await w.sandbox.settle()
            assert [it.status for it in trade.items] == ["reverted"] * 4

    run_virtual(main())


def test_a_partly_requested_trade_is_cancelled_item_by_item_and_the_rest_untouched(
    route: dict[str, Any],
) -> None:
    async def main() -> None:
        async with lifecycle_world(revert_delay=5.0, **route) as w:
            partial = w.sandbox.add_trade(w.user, items=3, age=HOUR)
            # An item already final does not need asking for: the other two are every open item.
            with_done = w.sandbox.add_trade(w.user, items=3, age=HOUR)
            with_done.items[0].status = "completed"
            pairs = [(partial.id, partial.items[0].id), (partial.id, partial.items[1].id)]
            pairs += [(with_done.id, it.id) for it in with_done.items[1:]]
            outcomes = await w.session.client(w.token).cancel_withdrawal_items(
                pairs, whole_trades=True
            )
            assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * 4
            assert _whole_trade_cancels(w) == [f"/client/trading/withdraw/{with_done.id}/cancel"]
            assert sorted(_item_cancels(w)) == sorted(
                f"/client/trading/withdraw/{partial.id}/items/{it.id}/cancel"
                for it in partial.items[:2]
            )
            await w.sandbox.settle()
            assert [it.status for it in partial.items] == ["reverted", "reverted", "active"]
            assert [it.status for it in with_done.items] == ["completed", "reverted", "reverted"]

    run_virtual(main())


def test_too_young_rows_fail_as_cancel_too_soon_or_are_rescheduled_item_by_item() -> None:
    async def main() -> None:
        async with lifecycle_world(revert_delay=5.0) as w:
            young = w.sandbox.add_trade(w.user, items=3, age=dt.timedelta(minutes=10))
            pairs = [(young.id, it.id) for it in young.items]
            client = w.session.client(w.token)
            failed = await client.cancel_withdrawal_items(pairs, whole_trades=True)
            assert [o.kind for o in failed] == [OutcomeKind.FAILED] * 3
            for o in failed:
                assert isinstance(o.error, CancelTooSoonError)
                assert o.error.key == "TRADE_CANCEL_TOO_SOON"
            assert len(_whole_trade_cancels(w)) == 1

            start = w.sandbox.clock.now()
            later = await client.cancel_withdrawal_items(
                pairs, whole_trades=True, reschedule_too_soon=True
            )
            assert [o.kind for o in later] == [OutcomeKind.CANCELLED] * 3
            assert [o.reschedules for o in later] == [1] * 3
            assert (
                w.sandbox.clock.now() - start >= 20 * 60
            )  # waited until the trade was 30 minutes old
            # The second too-young answer came from one more whole-trade cancel, the retry item by item.
            assert len(_whole_trade_cancels(w)) == 2
            assert len(_item_cancels(w)) == 3

    run_virtual(main())


def test_a_whole_trade_attempt_is_journaled_and_resumed(tmp_path: Path) -> None:
    db = tmp_path / "batch.journal"

    async def main() -> None:
        async with lifecycle_world(revert_delay=10_000.0) as w:
            trade = w.sandbox.add_trade(w.user, items=3, age=HOUR)
            pairs = [(trade.id, it.id) for it in trade.items]
            client = w.session.client(w.token)
            # The cancel takes effect, then its answer is slow: the run is killed meanwhile.
            w.sandbox.faults.add("slow-headers", group="cancel-item", times=1, delay=100.0)
            first = CancelBatch(client, pairs, journal=db, whole_trades=True)
            task = asyncio.create_task(first.run())
            await asyncio.sleep(5.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert [o.kind for o in first.outcomes] == [OutcomeKind.UNKNOWN] * 3
            with closing(sqlite3.connect(db)) as conn:
                states = dict(conn.execute("SELECT path, state FROM pairs").fetchall())
            assert sorted(states.values()) == ["sent"] * 3

            second = await CancelBatch(client, pairs, journal=db, whole_trades=True).run()
            # Possibly-sent pairs are resolved one by one, as after any interrupted run.
            assert [o.kind for o in second] == [OutcomeKind.CANCELLED] * 3
            assert len(_whole_trade_cancels(w)) == 1
            assert len(_item_cancels(w)) == 3

            third = await CancelBatch(client, pairs, journal=db, whole_trades=True).run()
            assert [o.detail for o in third] == [OutcomeDetail.FROM_JOURNAL] * 3
            assert len(_item_cancels(w)) == 3
            assert len(_whole_trade_cancels(w)) == 1

    run_virtual(main())


def test_a_finished_whole_trade_cancel_is_recorded_per_pair(tmp_path: Path) -> None:
    db = tmp_path / "batch.journal"

    async def main() -> None:
        async with lifecycle_world(revert_delay=10_000.0) as w:
            trade = w.sandbox.add_trade(w.user, items=3, age=HOUR)
            pairs = [(trade.id, it.id) for it in trade.items]
            client = w.session.client(w.token)
            first = await CancelBatch(client, pairs, journal=db, whole_trades=True).run()
            assert [o.kind for o in first] == [OutcomeKind.CANCELLED] * 3
            before = len(w.sandbox.requests)
            again = await CancelBatch(client, pairs, journal=db, whole_trades=True).run()
            assert len(w.sandbox.requests) == before  # nothing sent again
            assert [o.detail for o in again] == [OutcomeDetail.FROM_JOURNAL] * 3
            assert [o.result for o in again] == [o.result for o in first]

    run_virtual(main())


def test_cancelling_the_batch_during_the_read_sends_nothing_and_reports_every_pair() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            trade = w.sandbox.add_trade(w.user, items=3, age=HOUR)
            pairs = [(trade.id, it.id) for it in trade.items]
            w.sandbox.faults.add("latency", group="trades-read", times=1, delay=50.0)
            progress: list[BatchProgress] = []
            batch = CancelBatch(
                w.session.client(w.token), pairs, whole_trades=True, on_progress=progress.append
            )
            task = asyncio.create_task(batch.run())
            await asyncio.sleep(5.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert [o.kind for o in batch.outcomes] == [OutcomeKind.NOT_ATTEMPTED] * 3
            assert _whole_trade_cancels(w) == []
            assert _item_cancels(w) == []
            assert progress == []

    run_virtual(main())


def test_progress_is_reported_for_every_pair_of_a_whole_trade_cancel() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            trades = [w.sandbox.add_trade(w.user, items=3, age=HOUR) for _ in range(2)]
            pairs = [(t.id, it.id) for t in trades for it in t.items]
            progress: list[BatchProgress] = []
            outcomes = await w.session.client(w.token).cancel_withdrawal_items(
                pairs, whole_trades=True, on_progress=progress.append
            )
            assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * 6
            assert [p.done for p in progress] == list(range(1, 7))
            assert {p.total for p in progress} == {6}
            assert len(_whole_trade_cancels(w)) == 2

    run_virtual(main())


def test_whole_trades_must_be_a_bool() -> None:
    async def main() -> None:
        async with new_session("http://127.0.0.1:9") as session:
            with pytest.raises(InvalidRequestError, match="whole_trades"):
                CancelBatch(session.client(make_token()), [], whole_trades="yes")  # type: ignore[arg-type]

    run_virtual(main())


# -- a scripted server: answers the sandbox does not give ---------------------------------------------------

TRADE = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
ITEMS = [str(uuid.UUID(int=k + 1)) for k in range(4)]


def _trade_reply() -> Reply:
    items = [{"id": i, "status": "active"} for i in ITEMS]
    trade = {
        "id": TRADE,
        "type": "withdraw",
        "status": "active",
        "items": items,
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    return Reply(200, success_body(trade))


def _serve(cancel: Reply) -> Any:
    def respond(request: RecordedRequest) -> Reply:
        if request.method == "GET":
            return _trade_reply()
        if "/items/" in request.target:
            return Reply(599, b"no item cancel expected here", content_type="text/plain")
        return cancel

    return respond


async def _run_scripted(
    cancel: Reply, **options: Any
) -> tuple[list[Any], list[RecordedRequest], CancelBatch]:
    async with ScriptedServer() as server:
        server.respond = _serve(cancel)
        async with new_session(server.url) as session:
            batch = CancelBatch(
                session.client(make_token()),
                [(TRADE, i) for i in ITEMS],
                whole_trades=True,
                **options,
            )
            outcomes = await batch.run()
        return outcomes, server.requests, batch


def _rows_reply(*rows: dict[str, Any]) -> Reply:
    cancelled = sum(r["status"] == "cancelled" for r in rows)
    data = {
        "tradeId": TRADE,
        "requested": len(rows),
        "cancelled": cancelled,
        "failed": len(rows) - cancelled,
        "items": list(rows),
    }
    return Reply(200, success_body(data, "whole-req"))


def test_each_row_gives_its_pair_a_typed_outcome() -> None:
    async def main() -> None:
        reply = _rows_reply(
            {"itemId": ITEMS[0], "status": "cancelled", "externalId": "mine-0"},
            {"itemId": ITEMS[1], "status": "failed", "reason": "TRADE_CANCEL_TOO_SOON"},
            {"itemId": ITEMS[2], "status": "failed", "reason": "SOMETHING_NEW"},
            {"itemId": ITEMS[3], "status": "on-hold"},
        )
        outcomes, requests, _ = await _run_scripted(reply)
        assert Counter(r.method for r in requests) == {"GET": 1, "POST": 1}
        assert [o.kind for o in outcomes] == [
            OutcomeKind.CANCELLED,
            OutcomeKind.FAILED,
            OutcomeKind.FAILED,
            OutcomeKind.UNKNOWN,  # a row status the SDK does not know: it may have been cancelled
        ]
        assert outcomes[0].result is not None
        assert outcomes[0].result.external_id == "mine-0"
        assert outcomes[0].result.request_id == "whole-req"
        assert isinstance(outcomes[1].error, CancelTooSoonError)
        assert type(outcomes[2].error) is APIError
        assert outcomes[2].error.key == "SOMETHING_NEW"
        assert isinstance(outcomes[3].error, InvalidResponseError)
        assert outcomes[3].error.ambiguous

    run_virtual(main())


def test_a_requested_item_missing_from_the_rows_is_sent_again_on_its_own() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            rows = [{"itemId": i, "status": "cancelled"} for i in ITEMS[:3]]
            whole = _rows_reply(*rows)

            def respond(request: RecordedRequest) -> Reply:
                if request.method == "GET":
                    return _trade_reply()
                if "/items/" in request.target:
                    return api_error(400, "TRADE_NOT_CANCELLABLE", 28)
                return whole

            server.respond = respond
            async with new_session(server.url) as session:
                outcomes = await CancelBatch(
                    session.client(make_token()), [(TRADE, i) for i in ITEMS], whole_trades=True
                ).run()
            posts = [r.target for r in server.requests if r.method == "POST"]
        assert posts == [
            f"/client/trading/withdraw/{TRADE}/cancel",
            f"/client/trading/withdraw/{TRADE}/items/{ITEMS[3]}/cancel",
        ]
        assert [o.kind for o in outcomes[:3]] == [OutcomeKind.CANCELLED] * 3
        # The whole-trade cancel may have acted on it: a refusal now leans cancelled, it does not prove failure.
        assert outcomes[3].kind is OutcomeKind.UNKNOWN
        assert outcomes[3].detail is OutcomeDetail.LIKELY_CANCELLED

    run_virtual(main())


def test_a_5xx_on_the_whole_trade_cancel_leaves_its_pairs_unknown() -> None:
    async def main() -> None:
        outcomes, requests, _ = await _run_scripted(api_error(500, "SERVER_ERROR", 1006))
        assert [o.kind for o in outcomes] == [OutcomeKind.UNKNOWN] * 4
        assert all(isinstance(o.error, ServerError) for o in outcomes)
        assert not any("/items/" in r.target for r in requests)

    run_virtual(main())


def test_a_refusal_of_the_whole_trade_cancel_fails_each_pair_with_it() -> None:
    async def main() -> None:
        outcomes, requests, batch = await _run_scripted(api_error(403, "FORBIDDEN", 1300))
        assert [o.kind for o in outcomes] == [OutcomeKind.FAILED] * 4
        assert all(isinstance(o.error, ForbiddenError) for o in outcomes)
        assert sum(r.method == "POST" for r in requests) == 1
        assert batch.stopped is None

    run_virtual(main())


def test_a_refused_token_on_the_whole_trade_cancel_stops_the_batch() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = _serve(api_error(401, "TOKEN_EXPIRED", 1111))
            other = str(uuid.uuid4())
            pairs = [(TRADE, i) for i in ITEMS] + [(other, str(uuid.uuid4()))]
            async with new_session(server.url) as session:
                batch = CancelBatch(
                    session.client(make_token()), pairs, whole_trades=True, workers=1
                )
                outcomes = await batch.run()
        assert [o.kind for o in outcomes] == [OutcomeKind.FAILED] * 4 + [OutcomeKind.NOT_ATTEMPTED]
        assert outcomes[4].detail is OutcomeDetail.BATCH_STOPPED
        assert batch.stopped is not None

    run_virtual(main())


def test_a_failed_read_falls_back_to_one_cancel_per_item() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:

            def respond(request: RecordedRequest) -> Reply:
                if request.method == "GET":
                    return api_error(403, "FORBIDDEN", 1300)
                parts = request.target.split("/")
                data = {"tradeId": parts[4], "itemId": parts[6], "status": "cancelled"}
                return Reply(200, success_body(data))

            server.respond = respond
            async with new_session(server.url) as session:
                outcomes = await CancelBatch(
                    session.client(make_token()), [(TRADE, i) for i in ITEMS], whole_trades=True
                ).run()
            posts = [r.target for r in server.requests if r.method == "POST"]
        assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * 4
        assert sorted(posts) == sorted(
            f"/client/trading/withdraw/{TRADE}/items/{i}/cancel" for i in ITEMS
        )

    run_virtual(main())


def test_a_stop_lets_a_whole_trade_cancel_on_the_wire_finish() -> None:
    async def main() -> None:
        other_trade, other_item, missing = (str(uuid.uuid4()) for _ in range(3))
        async with ScriptedServer() as server:
            rows = _rows_reply(*({"itemId": i, "status": "cancelled"} for i in ITEMS))
            slow_rows = attrs.evolve(rows, delay=1.0)

            def respond(request: RecordedRequest) -> Reply:
                if request.method == "GET":
                    return _trade_reply()
                if other_trade in request.target:
                    return attrs.evolve(api_error(401, "TOKEN_EXPIRED", 1111), delay=0.5)
                if "/items/" in request.target:
                    return Reply(599, b"no item cancel expected here", content_type="text/plain")
                return slow_rows

            server.respond = respond
            # The trade's first pair names an item it does not have: sent alone, after the whole-trade cancel.
            pairs = [(TRADE, missing), *((TRADE, i) for i in ITEMS), (other_trade, other_item)]
            async with new_session(server.url) as session:
                batch = CancelBatch(
                    session.client(make_token()), pairs, whole_trades=True, workers=2
                )
                outcomes = await batch.run()
        assert batch.stopped is not None
        assert [o.kind for o in outcomes] == [
            OutcomeKind.NOT_ATTEMPTED,
            *[OutcomeKind.CANCELLED] * 4,
            OutcomeKind.FAILED,
        ]
        assert outcomes[0].detail is OutcomeDetail.BATCH_STOPPED

    run_virtual(main())
