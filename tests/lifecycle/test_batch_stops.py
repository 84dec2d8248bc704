"""A batch stops at once when continuing is pointless: a refused token, a disabled account, a dead endpoint."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

import pytest

from assetpay_async import (
    AccountDisabledError,
    AuthenticationError,
    BatchStoppedError,
    CancelBatch,
    InvalidRequestError,
    OutcomeDetail,
    OutcomeKind,
    TransportError,
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
)
from tests.support.lifecycle import lifecycle_world

HOUR = dt.timedelta(hours=1)


def _pairs(n: int) -> list[tuple[object, object]]:
    return [(uuid.uuid4(), uuid.uuid4()) for _ in range(n)]


def test_an_expired_token_ends_the_batch_at_once() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            trades = [w.sandbox.add_trade(w.user, items=5, age=HOUR) for _ in range(40)]
            pairs = [(t.id, i.id) for t in trades for i in t.items]
            expired = w.sandbox.token(
                w.user, issued_at=w.sandbox.clock.wall() - dt.timedelta(days=2)
            )
            batch = CancelBatch(w.session.client(expired), pairs, workers=32)
            outcomes = await batch.run()
            sent = len(w.sandbox.requests)
            kinds = Counter(o.kind for o in outcomes)
            assert kinds[OutcomeKind.FAILED] == sent  # every request sent was answered 401
            assert sent < 40  # not 200 requests: the batch stopped after the first answers
            assert kinds[OutcomeKind.NOT_ATTEMPTED] == 200 - sent
            assert batch.stopped is not None
            assert isinstance(batch.stopped.cause, AuthenticationError)
            assert "refused the client token" in batch.stopped.reason
            for o in outcomes:
                if o.kind is OutcomeKind.NOT_ATTEMPTED:
                    assert o.detail is OutcomeDetail.BATCH_STOPPED
                    assert isinstance(o.error, BatchStoppedError)
                else:
                    assert isinstance(o.error, AuthenticationError)
            assert w.sandbox.totals(w.merchant).rate_limited == 0

    run_virtual(main())


def test_a_disabled_account_ends_the_batch_and_in_flight_pairs_get_their_answer() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            answers = iter([echo_cancel, None])

            def respond(request: RecordedRequest) -> Reply:
                first = next(answers, None)
                if first is not None:
                    return first(request)
                return api_error(403, "ACCOUNT_DISABLED", 1301)

            server.respond = respond
            async with new_session(server.url) as session:
                batch = CancelBatch(session.client(make_token()), _pairs(50), workers=1)
                outcomes = await batch.run()
        assert [o.kind for o in outcomes[:2]] == [OutcomeKind.CANCELLED, OutcomeKind.FAILED]
        assert isinstance(outcomes[1].error, AccountDisabledError)
        assert all(o.kind is OutcomeKind.NOT_ATTEMPTED for o in outcomes[2:])
        assert len(server.requests) == 2
        assert batch.stopped is not None
        assert isinstance(batch.stopped.cause, AccountDisabledError)

    run_virtual(main())


def test_k_transport_failures_in_a_row_stop_the_batch(closed_port: int) -> None:
    async def main() -> None:
        async with new_session(f"http://127.0.0.1:{closed_port}") as session:
            batch = CancelBatch(
                session.client(make_token()), _pairs(100), workers=1, max_transport_failures=5
            )
            outcomes = await batch.run()
        kinds = [o.kind for o in outcomes]
        assert kinds[:5] == [OutcomeKind.FAILED] * 5
        assert all(isinstance(o.error, TransportError) for o in outcomes[:5])
        assert kinds[5:] == [OutcomeKind.NOT_ATTEMPTED] * 95
        assert batch.stopped is not None
        assert "5 pairs in a row failed with nothing getting through" in batch.stopped.reason

    run_virtual(main())


def test_an_answer_between_transport_failures_resets_the_count() -> None:
    async def main() -> None:
        async with ScriptedServer() as server:
            count = 0

            def respond(request: RecordedRequest) -> Reply:
                nonlocal count
                count += 1
                # Every fourth pair is answered; the others lose their connection on every attempt.
                return echo_cancel(request) if count % 16 == 0 else Reply(hang_up=True)

            server.respond = respond
            async with new_session(server.url) as session:
                batch = CancelBatch(
                    session.client(make_token()), _pairs(20), workers=1, max_transport_failures=5
                )
                outcomes = await batch.run()
        assert batch.stopped is None
        assert all(o.kind is not OutcomeKind.NOT_ATTEMPTED for o in outcomes)
        assert sum(o.kind is OutcomeKind.CANCELLED for o in outcomes) == 5

    run_virtual(main())


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_max_transport_failures_is_checked(bad: object) -> None:
    async def main() -> None:
        async with new_session("http://127.0.0.1:9") as session:
            with pytest.raises(InvalidRequestError):
                CancelBatch(session.client(make_token()), [], max_transport_failures=bad)  # type: ignore[arg-type]

    run_virtual(main())
