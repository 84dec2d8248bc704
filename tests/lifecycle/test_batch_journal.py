"""CancelBatch with a journal: nothing decided is sent twice, possibly-sent pairs go first, misuse is refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from assetpay_async import (
    AssetPaySession,
    CancelBatch,
    JournalError,
    JournalMismatchError,
    NotCancellableError,
    OutcomeDetail,
    OutcomeKind,
)
from assetpay_async import _journal as journal
from assetpay_async import _protocol as proto
from assetpay_async.testing import run_virtual
from tests.support.core import (
    ITEM_ID,
    TRADE_ID,
    RecordedRequest,
    Reply,
    ScriptedServer,
    echo_cancel,
    make_token,
    new_session,
)
from tests.support.lifecycle import CANCELS, READS, World, lifecycle_world

HOUR = dt.timedelta(hours=1)


def _path(pair: tuple[str, str]) -> str:
    return proto.cancel_request(*pair).path


def _cancels(world: World) -> Counter[str]:
    return Counter(r.path for r in world.sandbox.requests if r.path.endswith("/cancel"))


def _states(path: Path) -> dict[str, str]:
    with closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT path, state FROM pairs").fetchall())


def test_a_resumed_batch_sends_nothing_decided_and_reports_every_pair(tmp_path: Path) -> None:
    db = tmp_path / "batch.journal"

    async def main() -> None:
        async with lifecycle_world(seed=3, revert_delay=10_000.0) as w:
            trades = [w.sandbox.add_trade(w.user, items=5, age=HOUR) for _ in range(8)]
            rust = w.sandbox.add_trade(w.user, game="rust", age=HOUR)
            pairs = [(t.id, i.id) for t in trades for i in t.items]
            pairs.append((rust.id, rust.items[0].id))
            pairs.insert(0, pairs[-1])  # a duplicate: one row per input line, one send
            client = w.session.client(w.token)
            first = CancelBatch(client, pairs, workers=8, journal=db)
            task = asyncio.create_task(first.run())
            await asyncio.sleep(0.5)  # virtual: about a quarter of the pairs answered
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            decided_first = {
                _path((str(o.trade_id), str(o.item_id)))
                for o in first.outcomes
                if o.kind in (OutcomeKind.CANCELLED, OutcomeKind.FAILED)
            }
            sent_first = _cancels(w)
            assert 0 < len(decided_first) < len(set(pairs))
            states = _states(db)
            assert {p for p, s in states.items() if s in ("cancelled", "failed")} == decided_first
            # Whatever was on the wire at the interruption is still marked possibly sent.
            assert set(states) == set(sent_first)

            second = CancelBatch(client, pairs, workers=8, journal=db)
            outcomes = await second.run()

            sent_second = _cancels(w) - sent_first
            assert not decided_first & set(sent_second)  # nothing decided was sent again
            assert len(outcomes) == len(pairs)
            for outcome, pair in zip(outcomes, pairs, strict=True):
                assert (outcome.trade_id, outcome.item_id) == pair
                if pair[0] == rust.id:
                    assert outcome.kind is OutcomeKind.FAILED
                    assert isinstance(outcome.error, NotCancellableError)
                else:
                    assert outcome.kind is OutcomeKind.CANCELLED, outcome
                    assert outcome.result is not None
                    assert str(outcome.result.item_id) == pair[1]
                if _path(pair) in decided_first:
                    assert outcome.detail is OutcomeDetail.FROM_JOURNAL
                else:
                    assert outcome.detail is None
            assert outcomes[-1].duplicate_of == 0
            assert all(s in ("cancelled", "failed") for s in _states(db).values())
            # Every eligible item was accepted once (the possibly-sent ones maybe twice: repeatable).
            accepted = Counter(r.path for r in w.sandbox.requests if r.status == 200)
            assert set(accepted) == {_path(p) for p in pairs if p[0] != rust.id}

    run_virtual(main())


def test_possibly_sent_pairs_are_resolved_first_and_not_cancellable_leans_cancelled(
    tmp_path: Path,
) -> None:
    db = tmp_path / "batch.journal"

    async def main() -> None:
        async with lifecycle_world(revert_delay=1.0) as w:
            gone, open_, fresh = (w.sandbox.add_trade(w.user, age=HOUR) for _ in range(3))
            client = w.session.client(w.token)
            # An earlier run sent `gone` and `open_` and died before recording the answers; `gone` was
            # accepted and has reverted since, `open_` never reached AssetPay.
            await client.cancel_withdrawal_item(gone.id, gone.items[0].id)
            await asyncio.sleep(2.0)
            pairs = [(t.id, t.items[0].id) for t in (fresh, gone, open_)]
            paths = [_path(p) for p in pairs]
            conn = journal.Journal.open(
                db,
                merchant_id=w.merchant.id,
                endpoint=w.session.base_url,
                digest=journal.pairs_digest(paths),
                pairs=3,
            )
            conn.mark_sent(paths[1])
            conn.mark_sent(paths[2])
            conn.close()
            before = len(w.sandbox.requests)
            # The first two cancels to arrive are slow: a pair sent alongside them would be answered first.
            w.sandbox.faults.add("latency", group="cancel-item", times=2, delay=1.0)

            outcomes = await CancelBatch(client, pairs, workers=8, journal=db).run()

            order = [r.path for r in w.sandbox.requests[before:] if r.method == "POST"]
            # Possibly-sent pairs are resolved (answered) before anything else is sent, even with 8 workers.
            assert set(order[:2]) == {paths[1], paths[2]}
            assert order[2:] == [paths[0]]
            # Issue 19.7: TRADE_NOT_CANCELLABLE after an earlier attempt leans cancelled, and a read of the
            # trade settles it (the item is reverted): recorded, so no later run sends it again.
            assert outcomes[1].kind is OutcomeKind.CANCELLED
            assert outcomes[1].detail is OutcomeDetail.CONFIRMED_BY_READ
            assert outcomes[1].result is not None
            assert outcomes[1].result.item_id == gone.items[0].id
            assert [outcomes[0].kind, outcomes[2].kind] == [OutcomeKind.CANCELLED] * 2
            assert _states(db)[paths[1]] == "cancelled"

    run_virtual(main())


def _session(base_url: str) -> AssetPaySession:
    return AssetPaySession(cancel_quota=CANCELS, trades_quota=READS, base_url=base_url)


def test_a_journal_for_other_pairs_merchant_or_endpoint_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    db = tmp_path / "batch.journal"

    async def main() -> None:
        async with lifecycle_world() as w:
            t = w.sandbox.add_trade(w.user, items=2, age=HOUR)
            pairs = [(t.id, i.id) for i in t.items]
            client = w.session.client(w.token)
            await CancelBatch(client, pairs[:1], journal=db).run()
            sent = len(w.sandbox.requests)

            with pytest.raises(JournalMismatchError) as other_pairs:
                await CancelBatch(client, pairs, journal=db).run()
            assert other_pairs.value.field == "pairs"
            assert "other pairs" in str(other_pairs.value)

            other_merchant = w.sandbox.add_merchant("verified", quotas={"cancel-item": CANCELS})
            token = w.sandbox.token(w.sandbox.add_user(other_merchant))
            async with _session(w.sandbox.base_url) as theirs:
                with pytest.raises(JournalMismatchError) as merchant:
                    await CancelBatch(theirs.client(token), pairs[:1], journal=db).run()
            assert merchant.value.field == "merchant"

            async with _session(w.sandbox.base_url.replace("127.0.0.1", "localhost")) as elsewhere:
                with pytest.raises(JournalMismatchError) as endpoint:
                    await CancelBatch(elsewhere.client(w.token), pairs[:1], journal=db).run()
            assert endpoint.value.field == "endpoint"
            assert len(w.sandbox.requests) == sent

            not_a_journal = tmp_path / "notes.txt"
            not_a_journal.write_text("hello " * 100)
            with pytest.raises(JournalError):
                await CancelBatch(client, pairs, journal=not_a_journal).run()
            assert len(w.sandbox.requests) == sent

    run_virtual(main())


def test_each_pair_is_committed_as_possibly_sent_before_it_reaches_the_server(
    tmp_path: Path,
) -> None:
    """A crash between the commit and the send loses nothing: the server never sees an unrecorded pair."""
    db = tmp_path / "batch.journal"
    seen: list[str | None] = []

    def respond(request: RecordedRequest) -> Reply:
        with closing(
            sqlite3.connect(db)
        ) as reader:  # another connection, as a process started after a crash
            row = reader.execute("SELECT state FROM pairs WHERE path = ?", (request.target,))
            found = row.fetchone()
        seen.append(None if found is None else found[0])
        return echo_cancel(request)

    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = respond
            async with new_session(server.url) as session:
                pairs = [(TRADE_ID, ITEM_ID), (uuid.uuid4(), uuid.uuid4())]
                outcomes = await CancelBatch(session.client(make_token()), pairs, journal=db).run()
        assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * 2

    run_virtual(main())
    assert seen == ["sent", "sent"]
    assert set(_states(db).values()) == {"cancelled"}


def test_answers_that_prove_nothing_happened_leave_the_pair_to_the_next_run(
    tmp_path: Path,
) -> None:
    db = tmp_path / "batch.journal"

    async def main() -> None:
        async with lifecycle_world() as w:
            young = w.sandbox.add_trade(w.user, age=dt.timedelta(minutes=5))
            missing = (w.sandbox.add_trade(w.user, age=HOUR).id, str(uuid.uuid4()))
            pairs = [(young.id, young.items[0].id), missing]
            client = w.session.client(w.token)
            outcomes = await CancelBatch(client, pairs, journal=db).run()
            assert [o.kind for o in outcomes] == [OutcomeKind.FAILED] * 2
            # TOO_SOON passes with time: not recorded, so the next run tries again; a missing item is decided.
            assert _states(db) == {_path(missing): "failed"}
            w.sandbox.advance(dt.timedelta(minutes=30))
            again = await CancelBatch(client, pairs, journal=db).run()
            assert again[0].kind is OutcomeKind.CANCELLED
            assert again[1].kind is OutcomeKind.FAILED
            assert again[1].detail is OutcomeDetail.FROM_JOURNAL
            assert type(again[1].error) is type(outcomes[1].error)
            assert Counter(r.path for r in w.sandbox.requests)[_path(missing)] == 1

    run_virtual(main())


def test_a_journal_that_cannot_be_written_stops_the_batch_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pair is never sent unrecorded: when the commit fails, the pair is not sent and the batch stops."""
    db = tmp_path / "batch.journal"
    real = journal.Journal.mark_sent
    calls = 0

    def failing_third(conn: journal.Journal, path: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise sqlite3.OperationalError("disk I/O error")
        real(conn, path)

    monkeypatch.setattr(journal.Journal, "mark_sent", failing_third)

    async def main() -> None:
        async with lifecycle_world() as w:
            t = w.sandbox.add_trade(w.user, items=5, age=HOUR)
            pairs = [(t.id, i.id) for i in t.items]
            batch = CancelBatch(w.session.client(w.token), pairs, workers=1, journal=db)
            outcomes = await batch.run()
            assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * 2 + [
                OutcomeKind.NOT_ATTEMPTED
            ] * 3
            assert isinstance(outcomes[2].error, JournalError)
            assert _path(pairs[2]) not in _cancels(w)  # the unrecorded pair was never sent
            assert len(w.sandbox.requests) == 2
            assert batch.stopped is not None
            assert "cannot write the journal" in batch.stopped.reason

    run_virtual(main())


def test_an_answer_that_cannot_be_recorded_still_counts_and_stops_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "batch.journal"

    def broken(*_: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(journal.Journal, "mark_cancelled", broken)

    async def main() -> None:
        async with lifecycle_world() as w:
            t = w.sandbox.add_trade(w.user, items=3, age=HOUR)
            pairs = [(t.id, i.id) for i in t.items]
            batch = CancelBatch(w.session.client(w.token), pairs, workers=1, journal=db)
            outcomes = await batch.run()
            assert outcomes[0].kind is OutcomeKind.CANCELLED  # AssetPay's answer is reported
            assert [o.kind for o in outcomes[1:]] == [OutcomeKind.NOT_ATTEMPTED] * 2
            assert batch.stopped is not None
            assert _states(db) == {_path(pairs[0]): "sent"}  # the next run asks again: harmless

    run_virtual(main())
