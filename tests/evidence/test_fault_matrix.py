"""The fault matrix: every fault between the SDK and AssetPay, met by a batch over loopback on virtual time.

Each cell runs ``client.cancel_withdrawal_items`` on one trade of three items, plus a path-escaping pair and a
duplicate, against the sandbox with the cell's faults scheduled, and checks:

- the typed outcome of every pair (kind, exception class, ``ambiguous``), one outcome per pair, in input order;
- how often each call reached the sandbox (its request log counted per ``X-Request-Id``: retries reuse it);
- whether the sandbox acted on the items (an accepted cancel), so UNKNOWN means "may have happened" and FAILED
  means "did not happen".

``docs/evidence.md`` lists the cells with their outcomes and the other tests that cover a fault too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest

from assetpay_async import (
    APIError,
    AssetPayError,
    AssetPaySession,
    BatchProgress,
    CancelBatch,
    CancelOutcome,
    InvalidRequestError,
    InvalidResponseError,
    OutcomeKind,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    SessionClosedError,
    TransportError,
)
from assetpay_async.testing import run_virtual
from tests.support.evidence import (
    ESCAPING_ID,
    FAST_CANCEL,
    World,
    acted_on,
    attempts_per_request_id,
    kinds,
    mixed_pairs,
    request_id_of,
    valid_outcomes,
    world,
)

CANCELLED, FAILED, UNKNOWN = OutcomeKind.CANCELLED, OutcomeKind.FAILED, OutcomeKind.UNKNOWN
NOT_ATTEMPTED = OutcomeKind.NOT_ATTEMPTED
RETRIES = RetryPolicy().max_retries


@attrs.frozen
class Cell:
    """One fault and what the SDK must make of it.

    Attributes:
        faults: keyword arguments of ``sandbox.faults.add`` (cancel route only), one dict per fault.
        kind: the outcome of each of the three items.
        error: the exact exception class of a FAILED or UNKNOWN outcome.
        attempts: requests the sandbox saw per call (per item, in order).
        acted: whether the sandbox accepted the cancel of each item.
        session: extra session options.
        workers: the batch's workers (1 makes "the next request" faults hit the first item only).
        min_elapsed: virtual seconds the batch must at least take (a 429's pause).
    """

    faults: tuple[dict[str, Any], ...]
    kind: OutcomeKind
    error: type[AssetPayError] | None
    attempts: tuple[int, int, int]
    acted: tuple[bool, bool, bool]
    session: dict[str, Any] = attrs.field(factory=dict)
    workers: int = 32
    min_elapsed: float = 0.0


ALL, NONE = (True, True, True), (False, False, False)
ONCE, RETRIED_ALL = (1, 1, 1), (1 + RETRIES,) * 3
FIRST_RETRIED_ONCE = (2, 1, 1)
TIMEOUT_2S = {"timeout": 2.0}

CELLS: dict[str, Cell] = {
    "no fault": Cell((), CANCELLED, None, ONCE, ALL),
    "reset before handling, every attempt": Cell(
        ({"kind": "reset-before"},), UNKNOWN, TransportError, RETRIED_ALL, NONE
    ),
    "reset before handling, once": Cell(
        ({"kind": "reset-before", "times": 1},), CANCELLED, None, FIRST_RETRIED_ONCE, ALL, workers=1
    ),
    "reset after handling, every attempt": Cell(
        ({"kind": "reset-after"},), UNKNOWN, TransportError, RETRIED_ALL, ALL
    ),
    "reset after handling, once": Cell(
        ({"kind": "reset-after", "times": 1},), CANCELLED, None, FIRST_RETRIED_ONCE, ALL, workers=1
    ),
    "slow headers past the timeout": Cell(
        ({"kind": "slow-headers", "delay": 10.0},),
        UNKNOWN,
        RequestTimeoutError,
        RETRIED_ALL,
        ALL,
        TIMEOUT_2S,
    ),
    "slow headers within the timeout": Cell(
        ({"kind": "slow-headers", "delay": 1.5},), CANCELLED, None, ONCE, ALL, TIMEOUT_2S
    ),
    "slow body past the timeout": Cell(
        ({"kind": "slow-body", "delay": 10.0},),
        UNKNOWN,
        RequestTimeoutError,
        RETRIED_ALL,
        ALL,
        TIMEOUT_2S,
    ),
    "slow body within the timeout": Cell(
        ({"kind": "slow-body", "delay": 1.5},), CANCELLED, None, ONCE, ALL, TIMEOUT_2S
    ),
    # The server is slow before handling: the client gives up, the server handles every attempt afterwards.
    "timeout before the server acts": Cell(
        ({"kind": "latency", "delay": 10.0},),
        UNKNOWN,
        RequestTimeoutError,
        RETRIED_ALL,
        ALL,
        TIMEOUT_2S,
    ),
    "timeout once, then answered": Cell(
        ({"kind": "latency", "delay": 10.0, "times": 1},),
        CANCELLED,
        None,
        FIRST_RETRIED_ONCE,
        ALL,
        TIMEOUT_2S,
        workers=1,
    ),
    "500 with an HTML page": Cell(
        ({"kind": "html-5xx", "status": 500},), UNKNOWN, InvalidResponseError, ONCE, NONE
    ),
    # A gateway's 502/504 may hide an upstream that acted (here it did not): unknown, never retried.
    "504 with an HTML page": Cell(
        ({"kind": "html-5xx", "status": 504},), UNKNOWN, InvalidResponseError, ONCE, NONE
    ),
    "502 with an empty body": Cell(
        ({"kind": "empty-502"},), UNKNOWN, InvalidResponseError, ONCE, NONE
    ),
    # A 2xx means AssetPay accepted the cancel: an unreadable answer to it is "unknown", not "failed".
    "200 with malformed JSON": Cell(
        ({"kind": "malformed-json"},), UNKNOWN, InvalidResponseError, ONCE, ALL
    ),
    "success envelope missing fields": Cell(
        ({"kind": "missing-fields"},), UNKNOWN, InvalidResponseError, ONCE, ALL
    ),
    "unknown error key": Cell(({"kind": "unknown-error-key"},), FAILED, APIError, ONCE, NONE),
    "429 with Retry-After, once": Cell(
        ({"kind": "rate-limited", "times": 1, "retry_after": 7.0},),
        CANCELLED,
        None,
        FIRST_RETRIED_ONCE,
        ALL,
        workers=1,
        min_elapsed=7.0,
    ),
    "429 without Retry-After, once": Cell(
        ({"kind": "rate-limited", "times": 1},),
        CANCELLED,
        None,
        FIRST_RETRIED_ONCE,
        ALL,
        workers=1,
        min_elapsed=3.0,  # a whole window of the quota
    ),
    "503 SYSTEM_MAINTENANCE": Cell(({"kind": "maintenance"},), UNKNOWN, ServerError, ONCE, NONE),
}


def _check_accounting(outcomes: list[CancelOutcome], pairs: list[tuple[object, object]]) -> None:
    """One outcome per pair, in input order; the escaping pair refused; the duplicate shares the first."""
    assert [(o.index, o.trade_id, o.item_id) for o in outcomes] == [
        (index, *pair) for index, pair in enumerate(pairs)
    ]
    refused = outcomes[1]
    assert refused.trade_id == ESCAPING_ID
    assert refused.kind is FAILED
    assert type(refused.error) is InvalidRequestError
    duplicate = outcomes[-1]
    assert duplicate.duplicate_of == 0
    assert (duplicate.kind, duplicate.error, duplicate.result) == (
        outcomes[0].kind,
        outcomes[0].error,
        outcomes[0].result,
    )


async def _run_cell(cell: Cell) -> None:
    async with world(**cell.session) as w:
        for fault in cell.faults:
            w.sandbox.faults.add(group="cancel-item", **fault)
        pairs = mixed_pairs(w.trade)
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcomes = await w.client.cancel_withdrawal_items(pairs, workers=cell.workers)
        elapsed = loop.time() - started
        await asyncio.sleep(60)  # let the sandbox finish handlers the client gave up on
        attempts = attempts_per_request_id(w.sandbox)
        acted = acted_on(w.trade)

    _check_accounting(outcomes, pairs)
    items = valid_outcomes(outcomes)
    assert kinds(items) == [cell.kind] * 3
    for outcome in items:
        if cell.error is None:
            assert outcome.error is None
            assert outcome.result is not None
        else:
            assert type(outcome.error) is cell.error, repr(outcome.error)
            assert outcome.error.ambiguous is (cell.kind is UNKNOWN)
    assert tuple(attempts[request_id_of(o)] for o in items) == cell.attempts
    assert sum(attempts.values()) == sum(
        cell.attempts
    )  # nothing sent for the escaping pair or the duplicate
    assert tuple(acted) == cell.acted
    assert elapsed >= cell.min_elapsed


@pytest.mark.parametrize("cell", CELLS.values(), ids=CELLS.keys())
def test_fault_cell(cell: Cell) -> None:
    run_virtual(_run_cell(cell))


def test_connection_refused_fails_every_pair_definitely(closed_port: int) -> None:
    """Nothing listens: each call is retried on the grant it had (AssetPay saw nothing), then FAILED."""

    async def scenario() -> tuple[list[CancelOutcome], list[tuple[object, object]], int]:
        async with world() as w:
            pairs = mixed_pairs(w.trade)
        async with AssetPaySession(
            cancel_quota=FAST_CANCEL, base_url=f"http://127.0.0.1:{closed_port}"
        ) as session:
            client = session.client(w.sandbox.token(w.user))
            outcomes = await client.cancel_withdrawal_items(pairs)
            return outcomes, pairs, session.limiter_stats().granted

    outcomes, pairs, granted = run_virtual(scenario())
    _check_accounting(outcomes, pairs)
    items = valid_outcomes(outcomes)
    assert kinds(items) == [FAILED] * 3
    assert all(type(o.error) is TransportError and not o.error.ambiguous for o in items)
    assert granted == 3  # a refused connection never reached AssetPay: its retries keep their grant


def test_a_429_storm_pauses_then_fails_each_call_without_spending_quota() -> None:
    """Every request answered 429 (someone else spends the quota): the calls pause and requeue together,
    then give up after ``max_rate_limited_wait`` with RateLimitedError; the storm is not amplified."""
    wait = 20.0

    async def scenario() -> None:
        retry = RetryPolicy(max_rate_limited_wait=wait)
        async with world(retry=retry) as w:
            w.sandbox.faults.add("rate-limited", group="cancel-item", retry_after=2.0)
            pairs = mixed_pairs(w.trade)
            loop = asyncio.get_running_loop()
            outcomes = await w.client.cancel_withdrawal_items(pairs)
            elapsed = loop.time()
            attempts = attempts_per_request_id(w.sandbox)
            totals = w.sandbox.totals(w.merchant)
            stats = w.session.limiter_stats()

        _check_accounting(outcomes, pairs)
        items = valid_outcomes(outcomes)
        assert kinds(items) == [FAILED] * 3
        assert all(type(o.error) is RateLimitedError and o.error.retry_after == 2.0 for o in items)
        per_call = [attempts[request_id_of(o)] for o in items]
        assert all(n > 1 for n in per_call), (
            per_call
        )  # each call went back to the queue after a 429
        # Not amplified: across all callers, at most one request per Retry-After pause.
        assert sum(per_call) <= elapsed / 2.0 + 1
        # Each call gives up at its first 429 after `wait`; callers take turns, one per pause.
        assert wait <= elapsed <= wait + 2.0 * len(items) * 2
        assert (totals.accepted, totals.rate_limited) == (0, 0)  # none reached the quota
        assert stats.rate_limited == sum(per_call)
        assert acted_on(w.trade) == [False] * 3

    run_virtual(scenario())


async def _two_done_two_in_flight(
    w: World, pairs: list[tuple[object, object]]
) -> tuple[CancelBatch, asyncio.Task[list[CancelOutcome]]]:
    """Start a batch of ``pairs`` (two workers, every answer one second late); return once the first two
    items are done and the next two are on the wire."""
    w.sandbox.faults.add("latency", group="cancel-item", delay=1.0)
    two_done = asyncio.Event()

    def on_progress(progress: BatchProgress) -> None:
        if (
            progress.done == 4
        ):  # the escaping pair, then the first item with its duplicate, then the second
            two_done.set()

    batch = w.client.batch(pairs, workers=2, on_progress=on_progress)
    batch_task = asyncio.create_task(batch.run())
    await two_done.wait()
    await asyncio.sleep(
        0.5
    )  # the workers have sent the next two pairs; their answers are due in 0.5 s
    assert len(w.sandbox.requests) == 2  # the sandbox records a request when it handles it
    return batch, batch_task


def _check_interrupted(outcomes: list[CancelOutcome], pairs: list[tuple[object, object]]) -> None:
    _check_accounting(outcomes, pairs)
    items = valid_outcomes(outcomes)
    assert kinds(items) == [CANCELLED, CANCELLED, UNKNOWN, UNKNOWN, NOT_ATTEMPTED, NOT_ATTEMPTED]


def test_session_closed_mid_batch() -> None:
    """Closing the session under a running batch: done pairs stay CANCELLED, pairs on the wire are UNKNOWN
    (the sandbox did act on them), pairs never sent are NOT_ATTEMPTED and nothing more is sent."""

    async def scenario() -> None:
        async with world(items=6) as w:
            pairs = mixed_pairs(w.trade)
            batch, batch_task = await _two_done_two_in_flight(w, pairs)
            await w.session.aclose()
            outcomes = await batch_task
            await asyncio.sleep(60)
            _check_interrupted(outcomes, pairs)
            items = valid_outcomes(outcomes)
            assert all(type(o.error) is SessionClosedError for o in items[2:])
            assert acted_on(w.trade) == [True] * 4 + [False] * 2
            assert len(attempts_per_request_id(w.sandbox)) == 4
            assert batch.outcomes == outcomes

    run_virtual(scenario())


def test_batch_task_cancelled_mid_flight() -> None:
    """Cancelling the task running a batch: CancelledError propagates, ``batch.outcomes`` still says what was
    done (CANCELLED), what may have been (UNKNOWN, no error) and what never ran (NOT_ATTEMPTED); no worker
    is left behind and the session keeps working."""

    async def scenario() -> None:
        async with world(items=6) as w:
            pairs = mixed_pairs(w.trade)
            batch, batch_task = await _two_done_two_in_flight(w, pairs)
            batch_task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await batch_task
            outcomes = batch.outcomes
            leftovers = [t for t in asyncio.all_tasks() if "CancelBatch" in repr(t.get_coro())]
            await asyncio.sleep(60)
            _check_interrupted(outcomes, pairs)
            items = valid_outcomes(outcomes)
            assert [o.error for o in items[2:]] == [None] * 4
            assert leftovers == []
            assert acted_on(w.trade) == [True] * 4 + [False] * 2
            w.sandbox.faults.clear()
            not_attempted = w.trade.items[4]
            result = await w.client.cancel_withdrawal_item(w.trade.id, not_attempted.id)
            assert result.item_id == not_attempted.id

    run_virtual(scenario())
