"""Merchants' own UUID-shaped externalIds (issue 19.5), and the hint of a plain 404 (issue 22).

A cancel answer names AssetPay's ids, never the trade's externalId: a UUID-shaped ref the answer does not
name may be that externalId. The client resolves the ref with one read before it calls the answer a
mismatch; an accepted cancel is reported as accepted, an answer about another trade stays an ambiguous
``InvalidResponseError``.
"""

from __future__ import annotations

import json
import uuid

import pytest

from assetpay_async import CancelResult, CancelStatus, InvalidResponseError, TradeCancelResult
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual
from tests.support.core import (
    ITEM_ID,
    TRADE_ID,
    Reply,
    ScriptedServer,
    make_token,
    new_session,
    success_body,
)
from tests.support.sandbox_world import virtual, world

HOUR = 3600.0


def _cancels(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.method == "POST")


def test_an_item_cancel_by_a_uuid_trade_external_id_is_reported_as_accepted() -> None:
    async def body() -> None:
        async with world() as w:
            external = str(uuid.uuid4())
            trade = w.sandbox.add_trade(w.user, age=HOUR, items=2, external_id=external)
            client = w.session.client(w.token)
            result = await client.cancel_withdrawal_item(external, trade.items[0].id)
            assert isinstance(result, CancelResult)
            assert result.trade_id == trade.id
            assert result.item_id == trade.items[0].id
            assert _cancels(w.sandbox) == 1  # the cancel was sent once, then confirmed by a read

    virtual(body)


def test_a_whole_trade_cancel_by_a_uuid_external_id_is_reported_as_accepted() -> None:
    async def body() -> None:
        async with world() as w:
            external = str(uuid.uuid4()).upper()  # any case: the merchant's own spelling
            trade = w.sandbox.add_trade(w.user, age=HOUR, items=3, external_id=external)
            client = w.session.client(w.token)
            result = await client.cancel_withdrawal_trade(external)
            assert isinstance(result, TradeCancelResult)
            assert result.trade_id == trade.id
            assert result.cancelled == 3
            assert _cancels(w.sandbox) == 1

    virtual(body)


def test_a_uuid_item_external_id_the_answer_does_not_echo_is_resolved_by_a_read() -> None:
    """A server that leaves out the item's externalId: the read shows the item the ref names."""
    item_external = str(uuid.uuid4())

    def respond(path: str) -> Reply:
        if path.startswith("/client/trades/"):
            trade = {
                "id": str(TRADE_ID),
                "type": "withdraw",
                "status": "active",
                "createdAt": "2026-01-01T00:00:00Z",
                "items": [{"id": str(ITEM_ID), "appid": 730, "externalId": item_external}],
            }
            return Reply(200, success_body(trade))
        answer = {"tradeId": str(TRADE_ID), "itemId": str(ITEM_ID), "status": "cancelled"}
        return Reply(200, success_body(answer))

    async def scenario() -> tuple[CancelResult, list[str]]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.respond = lambda request: respond(request.target)
            result = await session.client(make_token()).cancel_withdrawal_item(
                TRADE_ID, item_external
            )
            return result, [r.method + " " + r.target for r in server.requests]

    result, requests = run_virtual(scenario())
    assert result.item_id == str(ITEM_ID)
    assert result.status == CancelStatus.CANCELLED
    assert requests == [
        f"POST /client/trading/withdraw/{TRADE_ID}/items/{item_external}/cancel",
        f"GET /client/trades/{TRADE_ID}",
    ]


def test_an_answer_about_another_trade_stays_an_ambiguous_mismatch() -> None:
    """The read resolves the ref to a trade that is not the one the answer names: fail closed."""
    other = str(uuid.uuid4())

    def respond(path: str) -> Reply:
        if path.startswith("/client/trades/"):
            trade = {
                "id": str(TRADE_ID),
                "type": "withdraw",
                "status": "active",
                "createdAt": "2026-01-01T00:00:00Z",
                "items": [],
            }
            return Reply(200, success_body(trade))
        answer = {"tradeId": other, "itemId": str(ITEM_ID), "status": "cancelled"}
        return Reply(200, success_body(answer))

    async def scenario() -> InvalidResponseError:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.respond = lambda request: respond(request.target)
            with pytest.raises(InvalidResponseError) as caught:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return caught.value

    error = run_virtual(scenario())
    assert error.ambiguous
    assert other in str(error)


def test_a_mismatch_stays_ambiguous_when_the_read_fails() -> None:
    other = str(uuid.uuid4())

    def respond(path: str) -> Reply:
        if path.startswith("/client/trades/"):
            body = {"success": False, "error": {"key": "FORBIDDEN", "code": 1300, "message": "no"}}
            return Reply(403, json.dumps(body).encode())
        answer = {"requested": 1, "cancelled": 1, "failed": 0, "items": [], "tradeId": other}
        return Reply(200, success_body(answer))

    async def scenario() -> InvalidResponseError:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.respond = lambda request: respond(request.target)
            with pytest.raises(InvalidResponseError) as caught:
                await session.client(make_token()).cancel_withdrawal_trade(TRADE_ID)
            return caught.value

    error = run_virtual(scenario())
    assert error.ambiguous


@pytest.mark.parametrize("status", [404, 405])
def test_a_plain_404_hints_at_the_base_url(status: int) -> None:
    async def scenario() -> str:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(Reply(status, b"<h1>Not Found</h1>", content_type="text/html"))
            with pytest.raises(InvalidResponseError) as caught:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return str(caught.value)

    text = run_virtual(scenario())
    assert "base_url=" in text
    assert "--base-url" in text
