"""``whole_trades=True`` never cancels an item nobody listed without saying so (issue 19, point 2).

(a) The whole-trade cancel goes to AssetPay's id of the trade that was read, never to the caller's ref (a ref
that is one trade's id and another trade's externalId names two trades). (b) When the answer names an item
no pair listed (it joined after the read, or the read was stale), a WARNING names it and the batch reports it.
A scripted server plays AssetPay: the sandbox never answers either way.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from assetpay_async import CancelBatch, OutcomeDetail, OutcomeKind
from assetpay_async.testing import run_virtual
from tests.support.core import (
    RecordedRequest,
    Reply,
    ScriptedServer,
    make_token,
    new_session,
    success_body,
)

REF = "5a0d3b8e-3c1f-4e5b-9a57-0d3e8f1c2b4a"  # trade A's id, and trade B's externalId
B_ID = "b1b2b3b4-0000-4000-8000-000000000001"
A_ITEMS = [str(uuid.UUID(int=100 + k)) for k in range(2)]
B_ITEMS = [str(uuid.UUID(int=200 + k)) for k in range(2)]


def _trade(trade_id: str, items: list[str], external_id: str | None = None) -> dict[str, Any]:
    trade: dict[str, Any] = {
        "id": trade_id,
        "type": "withdraw",
        "status": "active",
        "items": [{"id": i, "status": "active"} for i in items],
        "createdAt": "2026-01-01T00:00:00.000Z",
    }
    if external_id is not None:
        trade["externalId"] = external_id
    return trade


def _cancelled(trade_id: str, items: list[str]) -> Reply:
    data = {
        "tradeId": trade_id,
        "requested": len(items),
        "cancelled": len(items),
        "failed": 0,
        "items": [{"itemId": i, "status": "cancelled"} for i in items],
    }
    return Reply(200, success_body(data, "whole-req"))


def test_the_whole_trade_cancel_names_the_trade_that_was_read() -> None:
    """The read found trade B by its externalId; a cancel sent to the ref would cancel trade A's items."""

    def respond(request: RecordedRequest) -> Reply:
        if request.method == "GET":  # the read resolves the ref to trade B (by externalId)
            return Reply(200, success_body(_trade(B_ID, B_ITEMS, external_id=REF)))
        if request.target == f"/client/trading/withdraw/{B_ID}/cancel":
            return _cancelled(B_ID, B_ITEMS)
        if request.target == f"/client/trading/withdraw/{REF}/cancel":
            return _cancelled(REF, A_ITEMS)  # AssetPay resolves the ref by id: trade A
        return Reply(599, b"unexpected", content_type="text/plain")

    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = respond
            async with new_session(server.url) as session:
                batch = CancelBatch(
                    session.client(make_token()), [(REF, i) for i in B_ITEMS], whole_trades=True
                )
                outcomes = await batch.run()
            posts = [r.target for r in server.requests if r.method == "POST"]
        assert posts == [f"/client/trading/withdraw/{B_ID}/cancel"]
        assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * 2
        assert all(o.result is not None and o.result.trade_id == B_ID for o in outcomes)
        assert batch.unlisted == []

    run_virtual(main())


def test_an_item_that_joined_after_the_read_is_warned_about_and_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trade_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    listed = [str(uuid.UUID(int=k + 1)) for k in range(2)]
    joined = str(uuid.UUID(int=99))

    def respond(request: RecordedRequest) -> Reply:
        if request.method == "GET":  # a stale read: two items
            return Reply(200, success_body(_trade(trade_id, listed)))
        return _cancelled(trade_id, [*listed, joined])  # the cancel tried three

    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = respond
            async with new_session(server.url) as session:
                batch = CancelBatch(
                    session.client(make_token()),
                    [(trade_id, i) for i in listed],
                    whole_trades=True,
                )
                with caplog.at_level(logging.WARNING, logger="assetpay_async"):
                    outcomes = await batch.run()
            posts = Counter(r.method for r in server.requests)
        assert posts == {"GET": 1, "POST": 1}
        assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * 2
        # Every pair of that trade says so, and the batch lists the unlisted cancel once.
        assert [o.detail for o in outcomes] == [OutcomeDetail.UNLISTED_CANCELLED] * 2
        assert [(r.trade_id, r.item_id) for r in batch.unlisted] == [(trade_id, joined)]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any(trade_id in r.getMessage() and joined in r.getMessage() for r in warnings)

    run_virtual(main())


def test_an_unlisted_cancel_is_kept_in_the_journal_and_reported_by_a_resume(tmp_path: Path) -> None:
    trade_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    listed = [str(uuid.UUID(int=k + 1)) for k in range(2)]
    joined = str(uuid.UUID(int=99))
    db = tmp_path / "batch.journal"

    def respond(request: RecordedRequest) -> Reply:
        if request.method == "GET":
            return Reply(200, success_body(_trade(trade_id, listed)))
        return _cancelled(trade_id, [*listed, joined])

    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = respond
            async with new_session(server.url) as session:
                client = session.client(make_token())
                pairs = [(trade_id, i) for i in listed]
                first = CancelBatch(client, pairs, whole_trades=True, journal=db)
                await first.run()
                sent = len(server.requests)
                again = CancelBatch(client, pairs, whole_trades=True, journal=db)
                outcomes = await again.run()
            assert len(server.requests) == sent  # decided: nothing sent again
        assert [o.detail for o in outcomes] == [OutcomeDetail.FROM_JOURNAL] * 2
        assert [(r.trade_id, r.item_id) for r in first.unlisted] == [(trade_id, joined)]
        assert [(r.trade_id, r.item_id) for r in again.unlisted] == [(trade_id, joined)]

    run_virtual(main())
