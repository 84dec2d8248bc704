"""CancelBatch against the sandbox: every pair ends in an outcome, in order, with zero 429s."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter

import pytest

from assetpay_async import (
    BatchProgress,
    CancelTooSoonError,
    ForbiddenError,
    InvalidRequestError,
    ItemNotFoundError,
    NotCancellableError,
    OutcomeKind,
    TradeNotFoundError,
)
from assetpay_async.sandbox import Sandbox, User
from assetpay_async.testing import run_virtual
from tests.support.lifecycle import CANCELS, lifecycle_world

HOUR = dt.timedelta(hours=1)


def _mixed_backlog(
    sandbox: Sandbox, user: User, other: User
) -> tuple[list[tuple[object, object]], list[type[BaseException] | None]]:
    """300 pairs of every kind, shuffled deterministically, with what each must end as."""
    pairs: list[tuple[object, object]] = []
    expected: list[type[BaseException] | None] = []

    def add(pair: tuple[object, object], outcome: type[BaseException] | None) -> None:
        pairs.append(pair)
        expected.append(outcome)

    for _ in range(38):  # eligible CS2 trades of 5 items
        t = sandbox.add_trade(user, items=5, age=HOUR)
        for item in t.items:
            add((t.id, item.id), None)
    for _ in range(20):
        t = sandbox.add_trade(user, age=dt.timedelta(minutes=10))
        add((t.id, t.items[0].id), CancelTooSoonError)
    for _ in range(20):
        t = sandbox.add_trade(user, game="rust", age=HOUR)
        add((t.id, t.items[0].id), NotCancellableError)
    for _ in range(15):
        t = sandbox.add_trade(other, age=HOUR)
        add((t.id, t.items[0].id), ForbiddenError)
    for _ in range(15):
        t = sandbox.add_trade(user, age=HOUR)
        add((t.id, str(uuid.uuid4())), ItemNotFoundError)
    for _ in range(10):
        add((str(uuid.uuid4()), str(uuid.uuid4())), TradeNotFoundError)
    for _ in range(15):
        t = sandbox.add_trade(user, age=HOUR, item_status="completed")
        add((t.id, t.items[0].id), NotCancellableError)
    for bad in ["", "..", " ", "x" * 10_000, None, 42]:
        add((bad, str(uuid.uuid4())), InvalidRequestError)
    for bad in [".", "\r\nX: y"]:
        add((str(uuid.uuid4()), bad), InvalidRequestError)
    # Duplicates of eligible pairs: cancelled once, reported at each position.
    for k in range(7):
        add(pairs[k * 3], None)
    assert len(pairs) == 300
    return pairs, expected


def test_a_300_item_mixed_batch_gives_each_pair_its_outcome_with_zero_429s() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            pairs, expected = _mixed_backlog(w.sandbox, w.user, w.other_user)
            progress: list[BatchProgress] = []
            outcomes = await w.session.client(w.token).cancel_withdrawal_items(
                pairs, on_progress=progress.append
            )

            assert [o.index for o in outcomes] == list(range(300))
            for outcome, pair, want in zip(outcomes, pairs, expected, strict=True):
                # Issue 22: the refs as text (a refused None or 42 as "None", "42"; strings as given).
                assert (outcome.trade_id, outcome.item_id) == (str(pair[0]), str(pair[1]))
                if want is None:
                    assert outcome.kind is OutcomeKind.CANCELLED, outcome
                    assert outcome.result is not None
                    assert outcome.result.item_id == str(pair[1])
                else:
                    assert outcome.kind is OutcomeKind.FAILED, outcome
                    assert type(outcome.error) is want, outcome

            duplicates = [o for o in outcomes if o.duplicate_of is not None]
            assert [o.duplicate_of for o in duplicates] == [k * 3 for k in range(7)]
            sent = Counter(r.path for r in w.sandbox.requests)
            assert max(sent.values()) == 1  # every distinct pair was sent exactly once
            assert len(sent) == 300 - 8 - 7  # no bad pair and no duplicate reached the server

            totals = w.sandbox.totals(w.merchant)
            assert totals.rate_limited == 0
            assert w.sandbox.max_in_window(w.merchant) <= CANCELS.limit
            assert progress[-1].done == progress[-1].total == 300
            assert progress[-1].failures == sum(1 for e in expected if e is not None)
            assert [p.done for p in progress] == sorted(p.done for p in progress)
            assert progress[-1].rate_limited == 0

    run_virtual(main())


def test_bad_pairs_fail_without_spending_quota() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            client = w.session.client(w.token)
            outcomes = await client.cancel_withdrawal_items(
                [("..", "nope"), (uuid.uuid4(),), "garbage"]  # type: ignore[list-item]
            )
            assert [o.kind for o in outcomes] == [OutcomeKind.FAILED] * 3
            assert all(isinstance(o.error, InvalidRequestError) for o in outcomes)
            assert w.sandbox.requests == ()
            assert w.session.limiter_stats().granted == 0

    run_virtual(main())


def test_reschedule_cancels_young_items_once_they_come_of_age() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            young = [w.sandbox.add_trade(w.user, age=dt.timedelta(minutes=m)) for m in (20, 25, 29)]
            old = w.sandbox.add_trade(w.user, age=HOUR)
            pairs = [(t.id, t.items[0].id) for t in [*young, old]]
            started = w.sandbox.clock.wall()
            outcomes = await w.session.client(w.token).cancel_withdrawal_items(
                pairs, reschedule_too_soon=True
            )
            assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * 4
            assert [o.reschedules for o in outcomes] == [1, 1, 1, 0]
            elapsed = w.sandbox.clock.wall() - started
            # The oldest young item waited about 10 minutes: not a poll loop, one timed retry each.
            assert dt.timedelta(minutes=10) <= elapsed < dt.timedelta(minutes=11)
            too_soon = [r for r in w.sandbox.requests if r.key == "TRADE_CANCEL_TOO_SOON"]
            assert len(too_soon) == 3

    run_virtual(main())


def test_reschedule_gives_up_when_the_item_is_too_far_from_eligible() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            t = w.sandbox.add_trade(w.user, age=dt.timedelta(minutes=1))
            outcomes = await w.session.client(w.token).cancel_withdrawal_items(
                [(t.id, t.items[0].id)], reschedule_too_soon=True, max_reschedule_wait=60
            )
            assert outcomes[0].kind is OutcomeKind.FAILED
            assert isinstance(outcomes[0].error, CancelTooSoonError)

    run_virtual(main())


def test_cancelling_the_batch_task_reports_what_was_done() -> None:
    async def main() -> None:
        async with lifecycle_world(seed=3) as w:
            trades = [w.sandbox.add_trade(w.user, items=5, age=HOUR) for _ in range(40)]
            pairs = [(t.id, i.id) for t in trades for i in t.items]
            batch = w.session.client(w.token).batch(pairs, workers=8)
            task = asyncio.create_task(batch.run())
            await asyncio.sleep(2.0)  # virtual: about 40 of 200 granted at 60 per 3 s
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

            outcomes = batch.outcomes
            kinds = Counter(o.kind for o in outcomes)
            assert sum(kinds.values()) == 200
            assert kinds[OutcomeKind.CANCELLED] > 0
            assert kinds[OutcomeKind.NOT_ATTEMPTED] > 0
            accepted = {r.path for r in w.sandbox.requests if r.status == 200}
            for o, (trade_id, item_id) in zip(outcomes, pairs, strict=True):
                path = f"/client/trading/withdraw/{trade_id}/items/{item_id}/cancel"
                if o.kind is OutcomeKind.CANCELLED:
                    assert path in accepted
                if o.kind is OutcomeKind.NOT_ATTEMPTED:
                    assert path not in accepted  # nothing half-counted: never sent
            # The limiter stranded nothing: a new batch runs at full pace afterwards.
            rest = [p for p, o in zip(pairs, outcomes, strict=True) if not o.ok]
            again = await w.session.client(w.token).cancel_withdrawal_items(rest)
            assert all(o.ok for o in again)
            assert w.sandbox.totals(w.merchant).rate_limited == 0

    run_virtual(main())


def test_a_batch_runs_once() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            batch = w.session.client(w.token).batch([])
            assert await batch.run() == []
            with pytest.raises(InvalidRequestError):
                await batch.run()

    run_virtual(main())


def test_async_progress_callbacks_are_awaited() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            t = w.sandbox.add_trade(w.user, items=3, age=HOUR)
            seen: list[int] = []

            async def report(p: BatchProgress) -> None:
                await asyncio.sleep(0)
                seen.append(p.done)

            await w.session.client(w.token).cancel_withdrawal_items(
                [(t.id, i.id) for i in t.items], on_progress=report
            )
            assert seen == [1, 2, 3]

    run_virtual(main())


def test_pairs_still_queued_for_quota_are_not_attempted_when_the_batch_is_cancelled() -> None:
    """Regression: workers waiting in the limiter were reported UNKNOWN although nothing was sent."""

    async def main() -> None:
        async with lifecycle_world(seed=4) as w:
            trade = w.sandbox.add_trade(w.user, items=20, age=HOUR)
            pairs = [(trade.id, i.id) for i in trade.items]
            batch = w.session.client(w.token).batch(pairs, workers=8)
            task = asyncio.create_task(batch.run())
            await asyncio.sleep(
                0.5
            )  # virtual: 60 per 3 s grants about 10; 8 workers wait for quota
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            kinds = Counter(o.kind for o in batch.outcomes)
            sent = len(w.sandbox.requests)
            assert kinds[OutcomeKind.CANCELLED] == sent  # every request the server saw was answered
            assert kinds[OutcomeKind.UNKNOWN] == 0  # nothing was on the wire at the cancellation
            assert kinds[OutcomeKind.NOT_ATTEMPTED] == 20 - sent

    run_virtual(main())
