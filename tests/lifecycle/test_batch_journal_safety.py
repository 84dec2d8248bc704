"""A journal fails closed: one run at a time, a damaged file is a ``JournalError``, likely-cancelled pairs settle.

Issue 19, points 1 and 7. Two batches in one process share a journal here; two real processes do in
``tests/cli/test_cli_journal_processes.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import attrs
import pytest

from assetpay_async import (
    CancelBatch,
    InvalidRequestError,
    JournalError,
    JournalLockedError,
    OutcomeDetail,
    OutcomeKind,
    _journal,
)
from assetpay_async import _protocol as proto
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
from tests.support.lifecycle import lifecycle_world

HOUR = dt.timedelta(hours=1)


def _pairs(n: int) -> list[tuple[str, str]]:
    return [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(n)]


def _slow_echo(request: RecordedRequest) -> Reply:
    return attrs.evolve(echo_cancel(request), delay=5.0)


def test_a_second_batch_on_a_held_journal_ends_at_once_and_sends_nothing(tmp_path: Path) -> None:
    db = tmp_path / "batch.journal"
    pairs = _pairs(3)

    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = _slow_echo
            async with new_session(server.url) as session:
                client = session.client(make_token())
                first = asyncio.create_task(CancelBatch(client, pairs, journal=db).run())
                await server.wait_for_requests(
                    1
                )  # the first run holds the journal, a cancel on the wire
                second = CancelBatch(client, pairs, journal=db)
                with pytest.raises(JournalLockedError) as locked:
                    await second.run()
                assert isinstance(locked.value, JournalError)
                assert "another run" in str(locked.value)
                assert [o.kind for o in second.outcomes] == [OutcomeKind.NOT_ATTEMPTED] * 3
                outcomes = await first
                assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * 3
                # The first run ended: its lock went with it, and a third run resumes from the journal.
                again = await CancelBatch(client, pairs, journal=db).run()
            sent = Counter(r.target for r in server.requests)
        assert sum(sent.values()) == 3
        assert max(sent.values()) == 1  # nothing sent twice
        assert [o.detail for o in again] == [OutcomeDetail.FROM_JOURNAL] * 3

    run_virtual(main())


def test_journal_error_is_not_an_invalid_request_error() -> None:
    """A journal problem is not a bad argument: code catching InvalidRequestError must not swallow it."""
    assert not issubclass(JournalError, InvalidRequestError)
    assert issubclass(JournalLockedError, JournalError)


def _damaged_resume(db: Path, damage: Callable[[list[tuple[str, str]]], None]) -> JournalError:
    """A finished run writes the journal, ``damage`` spoils it, and a resume must fail sending nothing."""
    pairs = _pairs(40)

    async def main() -> JournalError:
        async with ScriptedServer() as server:
            server.respond = echo_cancel
            async with new_session(server.url) as session:
                client = session.client(make_token())
                outcomes = await CancelBatch(client, pairs, journal=db).run()
                assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * len(pairs)
                sent = len(server.requests)
                damage(pairs)
                with pytest.raises(JournalError) as raised:
                    await CancelBatch(client, pairs, journal=db).run()
            assert len(server.requests) == sent
        return raised.value

    return run_virtual(main())


def _update(db: Path, statement: str, *parameters: object) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(statement, parameters)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("record", "{not json"),
        ("record", '{"item_id": "x"}'),  # a cancelled record without its trade
        ("record", '["a", "list"]'),
        ("state", "exploded"),
    ],
)
def test_a_damaged_record_is_a_journal_error(tmp_path: Path, column: str, value: str) -> None:
    db = tmp_path / "batch.journal"

    def damage(pairs: list[tuple[str, str]]) -> None:
        _update(db, f"UPDATE pairs SET {column} = ? WHERE path = ?", value, _path(pairs[7]))  # noqa: S608

    error = _damaged_resume(db, damage)
    assert "damaged" in str(error)


def test_a_failed_record_with_a_bad_status_is_a_journal_error(tmp_path: Path) -> None:
    db = tmp_path / "batch.journal"
    record = '{"key": "ITEM_NOT_FOUND", "code": 2201, "http_status": "four hundred"}'

    def damage(pairs: list[tuple[str, str]]) -> None:
        statement = "UPDATE pairs SET state = 'failed', record = ? WHERE path = ?"
        _update(db, statement, record, _path(pairs[3]))

    assert "damaged" in str(_damaged_resume(db, damage))


def test_a_damaged_page_is_a_journal_error(tmp_path: Path) -> None:
    db = tmp_path / "batch.journal"

    def damage(_: list[tuple[str, str]]) -> None:
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
        assert pages >= 4
        data = bytearray(db.read_bytes())
        for page in range(
            2, pages
        ):  # every page but the first two (schema, meta): the pairs' b-tree
            start = page * page_size
            data[start : start + 64] = b"\xa5" * 64
        db.write_bytes(bytes(data))

    error = _damaged_resume(db, damage)
    assert "damaged" in str(error)


def _path(pair: tuple[str, str]) -> str:
    return proto.cancel_request(*pair).path


def test_a_likely_cancelled_pair_is_settled_by_a_read_and_not_sent_again(tmp_path: Path) -> None:
    """Killed between AssetPay's 200 and its record: the resume's TRADE_NOT_CANCELLABLE is confirmed by a read."""
    db = tmp_path / "batch.journal"

    async def main() -> None:
        async with lifecycle_world(revert_delay=5.0) as w:
            trade = w.sandbox.add_trade(w.user, items=2, age=HOUR)
            pairs = [(trade.id, i.id) for i in trade.items]
            client = w.session.client(w.token)
            first = await CancelBatch(client, pairs, journal=db).run()
            assert [o.kind for o in first] == [OutcomeKind.CANCELLED] * 2
            with (
                closing(sqlite3.connect(db)) as conn,
                conn,
            ):  # as a kill before the record leaves it
                conn.execute("UPDATE pairs SET state = 'sent', record = NULL")
            await asyncio.sleep(10.0)  # the items are reverted now: a cancel is refused
            second = await CancelBatch(client, pairs, journal=db).run()
            assert [o.kind for o in second] == [OutcomeKind.CANCELLED] * 2
            assert [o.detail for o in second] == [OutcomeDetail.CONFIRMED_BY_READ] * 2
            assert all(o.result is not None and o.result.trade_id == trade.id for o in second)
            sent = len(w.sandbox.requests)
            third = await CancelBatch(client, pairs, journal=db).run()
            assert [o.detail for o in third] == [OutcomeDetail.FROM_JOURNAL] * 2
            assert [o.kind for o in third] == [OutcomeKind.CANCELLED] * 2
            assert len(w.sandbox.requests) == sent  # settled: never sent again

    run_virtual(main())


def test_a_likely_cancelled_pair_whose_item_completed_is_settled_as_failed(tmp_path: Path) -> None:
    db = tmp_path / "batch.journal"
    trade_id, item_id = str(uuid.uuid4()), str(uuid.uuid4())

    def respond(request: RecordedRequest) -> Reply:
        if request.method == "GET":
            item = {"id": item_id, "status": "completed"}
            trade = {
                "id": trade_id,
                "type": "withdraw",
                "status": "completed",
                "createdAt": "2026-01-01T00:00:00Z",
                "items": [item],
            }
            return Reply(200, success_body(trade))
        return api_error(400, "TRADE_NOT_CANCELLABLE", 28)

    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = respond
            async with new_session(server.url) as session:
                client = session.client(make_token())
                # A first run against the same journal leaves the pair possibly sent.
                j = _journal.Journal.open(
                    db,
                    merchant_id=client.merchant_id,
                    endpoint=session.base_url,
                    digest=_journal.pairs_digest([_path((trade_id, item_id))]),
                    pairs=1,
                )
                j.mark_sent(_path((trade_id, item_id)))
                j.close()
                outcomes = await CancelBatch(client, [(trade_id, item_id)], journal=db).run()
                assert outcomes[0].kind is OutcomeKind.FAILED
                assert outcomes[0].detail is OutcomeDetail.CONFIRMED_BY_READ
                again = await CancelBatch(client, [(trade_id, item_id)], journal=db).run()
            posts = [r for r in server.requests if r.method == "POST"]
        assert again[0].detail is OutcomeDetail.FROM_JOURNAL
        assert len(posts) == 1

    run_virtual(main())
