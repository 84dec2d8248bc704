"""``cancel-batch`` shows what the batch layer settled beyond the pairs' answers: items a whole-trade cancel
cancelled that no line listed (named in the summary, a row each in ``--results``), and the pairs settled by a
read of their trade (``OutcomeDetail.CONFIRMED_BY_READ``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from assetpay_async import AssetPaySession
from assetpay_async import _journal as journal
from assetpay_async import _protocol as proto
from assetpay_async.cli import ExitCode, main_async
from assetpay_async.testing import run_virtual
from tests.support.cli import FAST_QUOTA, World, on_world
from tests.support.core import RecordedRequest, Reply, ScriptedServer, make_token, success_body

TRADE = "5a0d3b8e-3c1f-4e5b-9a57-0d3e8f1c2b4a"
LISTED = [str(uuid.UUID(int=100 + k)) for k in range(2)]
JOINED = str(uuid.UUID(int=199))  # joined the trade after the batch read it


def _trade(items: list[str]) -> dict[str, Any]:
    return {
        "id": TRADE,
        "type": "withdraw",
        "status": "active",
        "items": [{"id": i, "status": "active"} for i in items],
        "createdAt": "2026-01-01T00:00:00.000Z",
    }


def _respond(request: RecordedRequest) -> Reply:
    if request.method == "GET" and request.target.startswith("/client/trades?"):
        return Reply(200, success_body({"items": [_trade(LISTED)], "nextCursor": None}))
    if request.method == "GET":
        return Reply(200, success_body(_trade(LISTED)))
    if request.target == f"/client/trading/withdraw/{TRADE}/cancel":
        everything = [*LISTED, JOINED]
        data = {
            "tradeId": TRADE,
            "requested": 3,
            "cancelled": 3,
            "failed": 0,
            "items": [{"itemId": i, "status": "cancelled"} for i in everything],
        }
        return Reply(200, success_body(data, "whole-req"))
    return Reply(599, b"unexpected", content_type="text/plain")


def test_items_a_whole_trade_cancel_cancelled_unlisted_are_named_and_get_a_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, results = tmp_path / "items.csv", tmp_path / "results.jsonl"
    source.write_text("trade_id,item_id\n" + "".join(f"{TRADE},{i}\n" for i in LISTED))

    async def main() -> int:
        async with ScriptedServer() as server:
            server.respond = _respond
            argv = ["cancel-batch", *FAST_QUOTA, "--whole-trades", "--results", str(results)]
            env = {"ASSETPAY_CLIENT_TOKEN": make_token(), "ASSETPAY_BASE_URL": server.url}
            return await main_async([*argv, str(source)], environ=env)

    code = run_virtual(main())
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    assert "1 item cancelled by a whole-trade cancel that no line listed" in out
    assert f"item {JOINED} of trade {TRADE}" in out
    assert "refund those users too" in out
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["item_id"] for r in rows] == [*LISTED, JOINED]
    assert [r["detail"] for r in rows] == ["unlisted-cancelled"] * 2 + ["unlisted"]
    assert rows[2]["line"] is None
    assert rows[2]["outcome"] == "cancelled"
    assert rows[2]["result"]["request_id"] == "whole-req"


def test_a_pair_settled_by_a_read_is_counted_in_the_summary_and_its_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, results, db = tmp_path / "items.csv", tmp_path / "r.jsonl", tmp_path / "batch.journal"

    async def test(world: World) -> None:
        gone, fresh = world.eligible.items[0], world.eligible.items[1]
        pairs = [(world.eligible.id, gone.id), (world.eligible.id, fresh.id)]
        source.write_text("".join(f"{t},{i}\n" for t, i in pairs))
        # An earlier run sent `gone` (accepted, reverted since) and died before recording the answer.
        async with AssetPaySession(
            tier="verified", base_url=world.sandbox.base_url, wall_clock=world.sandbox.clock.wall
        ) as session:
            await session.client(world.token).cancel_withdrawal_item(*pairs[0])
        await asyncio.sleep(world.sandbox.revert_delay + 1)
        paths = [proto.cancel_request(*pair).path for pair in pairs]
        conn = journal.Journal.open(
            db,
            merchant_id=world.merchant.id,
            endpoint=world.sandbox.base_url,
            digest=journal.pairs_digest(paths),
            pairs=2,
        )
        conn.mark_sent(paths[0])
        conn.close()
        argv = ["cancel-batch", *FAST_QUOTA, "--journal", str(db), "--results", str(results)]
        run = await world.run([*argv, str(source)], capsys)
        assert run.code == ExitCode.OK, run.err
        assert "1 pair settled by a read of the trade" in run.out
        assert "confirmed by a read" in run.out  # its reason in the table

    on_world(test)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["detail"] for r in rows] == ["confirmed-by-read", None]
    assert [r["outcome"] for r in rows] == ["cancelled", "cancelled"]
