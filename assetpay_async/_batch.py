"""Cancel many items: every pair ends in an outcome, in input order, whatever happens to the batch.

``CancelBatch`` is the ``asyncio.gather`` use case done right: bad pairs fail before any quota is spent, duplicate
pairs are cancelled once, one failure never stops the others, progress is reported as it goes, and if the batch's
task is cancelled, [`CancelBatch.outcomes`][assetpay_async.CancelBatch.outcomes] still says what was done, what
may have been done, and what never ran.

With a journal (a SQLite file, see ``_journal``) the batch survives the death of its process: run it again with the
same journal and the pairs already decided are not sent again. A batch also stops at once when continuing is
pointless: a refused token or a disabled account, or K transport failures in a row with nothing getting through.

With ``whole_trades`` a trade whose every undelivered item is among the pairs is cancelled with one whole-trade
request (after one read of the trade to check that), and each of its pairs gets its outcome from its row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import functools
import inspect
import logging
import os
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypedDict

import attrs

from . import _journal as journal
from . import _protocol as proto
from ._errors import (
    AccountDisabledError,
    APIError,
    APIValidationError,
    AssetPayError,
    AuthenticationError,
    CancelTooSoonError,
    ForbiddenError,
    InvalidRequestError,
    InvalidResponseError,
    ItemNotFoundError,
    NotCancellableError,
    QueueTimeoutError,
    RateLimitedError,
    ServerError,
    SessionClosedError,
    TradeNotFoundError,
    TransportError,
)
from ._models import (
    CancelResult,
    CancelStatus,
    Trade,
    TradeCancelItem,
    TradeCancelResult,
    TradeItem,
)
from ._quota import RouteGroup

if TYPE_CHECKING:
    from ._interfaces import BatchCaller

__all__ = [
    "BatchProgress",
    "BatchStoppedError",
    "CancelBatch",
    "CancelOutcome",
    "OutcomeDetail",
    "OutcomeKind",
]

logger = logging.getLogger("assetpay_async._batch")

CANCEL_AGE: Final = dt.timedelta(minutes=30)
"""AssetPay refuses to cancel an item younger than this (measured from the trade's ``createdAt``)."""

DEFAULT_MAX_TRANSPORT_FAILURES: Final = 20
"""Pairs in a row that fail with nothing getting through before a batch stops (``max_transport_failures``)."""

# Errors that end a batch at once: every further pair would draw the same answer.
_FATAL: Final = (AuthenticationError, AccountDisabledError)
# A refusal about the item itself: recorded as decided in a journal (TOO_SOON is not: it passes with time).
_TRANSIENT_API: Final = (
    RateLimitedError,
    ServerError,
    AuthenticationError,
    AccountDisabledError,
    CancelTooSoonError,
)
# Non-ambiguous answers proving the attempts of this run did nothing (the pair is sent again by the next run).
_NOTHING_HAPPENED: Final = (
    RateLimitedError,
    AuthenticationError,
    AccountDisabledError,
    CancelTooSoonError,
    QueueTimeoutError,
    TransportError,
    SessionClosedError,
    InvalidResponseError,
)
# After an attempt of an earlier run that may have been accepted, only these prove nothing was cancelled
# (the token may differ between runs, so a 401 proves nothing about the earlier attempt).
_PROVES_NOT_CANCELLED: Final = (
    CancelTooSoonError,
    ItemNotFoundError,
    TradeNotFoundError,
    ForbiddenError,
    APIValidationError,
)


class OutcomeKind(enum.StrEnum):
    """How one pair of a batch ended."""

    CANCELLED = "cancelled"
    """The marketplace accepted the cancel (the item becomes ``reverted`` later)."""
    FAILED = "failed"
    """A definite failure: ``error`` says why; nothing was cancelled."""
    UNKNOWN = "unknown"
    """Outcome unknown: a request may have reached AssetPay but no answer came back. Check the trade."""
    NOT_ATTEMPTED = "not-attempted"
    """The batch was cancelled, closed or stopped before this pair was sent."""


class OutcomeDetail(enum.StrEnum):
    """More about how a pair ended, when the kind alone does not say it all."""

    FROM_JOURNAL = "from-journal"
    """Decided by an earlier run of the same journal; not sent again (``result``/``error`` as recorded then)."""
    LIKELY_CANCELLED = "likely-cancelled"
    """UNKNOWN, leaning cancelled: an earlier run's attempt may have been accepted and this run's answer is
    TRADE_NOT_CANCELLABLE, which is also what an item already cancelled (and reverted) answers."""
    BATCH_STOPPED = "batch-stopped"
    """NOT_ATTEMPTED because the batch stopped early.

    Its ``error`` is a [`BatchStoppedError`][assetpay_async.BatchStoppedError].
    """


class BatchStoppedError(AssetPayError):
    """The batch stopped before sending this pair: continuing was pointless.

    Attributes:
        reason: what stopped it, in words.
        cause: the error that stopped it (an ``AuthenticationError``, ``AccountDisabledError``,
            or the last of the transport failures in a row).
    """

    def __init__(self, reason: str, *, cause: BaseException) -> None:
        super().__init__(f"the batch stopped: {reason}; this pair was not sent")
        self.reason = reason
        self.cause = cause


@attrs.frozen
class CancelOutcome:
    """The end of one pair.

    Attributes:
        index: position in the input.
        trade_id: the trade id as given.
        item_id: the item id as given.
        kind: how it ended.
        result: the cancel result when ``kind`` is CANCELLED.
        error: the typed error when FAILED or UNKNOWN (None when the batch was cancelled mid-flight);
            [`SessionClosedError`][assetpay_async.SessionClosedError] for a pair NOT_ATTEMPTED because the
            session was closed.
        duplicate_of: index of the earlier identical pair whose outcome this one shares.
        reschedules: how many times a too-young item was re-tried once eligible.
        detail: more about the outcome (from the journal, likely cancelled, batch stopped), or None.
    """

    index: int
    trade_id: object
    item_id: object
    kind: OutcomeKind
    result: CancelResult | None = None
    error: BaseException | None = None
    duplicate_of: int | None = None
    reschedules: int = 0
    detail: OutcomeDetail | None = None

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.CANCELLED


@attrs.frozen
class BatchProgress:
    """Passed to the progress callback after every finished pair.

    Attributes:
        done: pairs finished (duplicates included).
        total: pairs in the batch.
        failures: pairs that ended FAILED or UNKNOWN so far.
        rate: cancels finished per second over the last few seconds.
        rate_limited: 429s the merchant's cancel limiter has seen so far (shared with other batches).
    """

    done: int
    total: int
    failures: int
    rate: float
    rate_limited: int


ProgressCallback = Callable[[BatchProgress], Awaitable[None] | None]


class BatchOptions(TypedDict, total=False):
    """The options of a batch, spelled once: the keyword arguments that
    [`AssetPayClient.batch`][assetpay_async.AssetPayClient.batch] and
    [`AssetPayClient.cancel_withdrawal_items`][assetpay_async.AssetPayClient.cancel_withdrawal_items] pass on
    to [`CancelBatch`][assetpay_async.CancelBatch], which documents them and holds their defaults."""

    workers: int
    on_progress: ProgressCallback | None
    reschedule_too_soon: bool
    max_reschedule_wait: float
    journal: str | os.PathLike[str] | None
    max_transport_failures: int | None
    whole_trades: bool


def _outcome_of(
    index: int, trade_id: object, item_id: object, exc: BaseException, reschedules: int
) -> CancelOutcome:
    ambiguous = isinstance(exc, AssetPayError) and exc.ambiguous
    if ambiguous:
        kind = OutcomeKind.UNKNOWN
    elif isinstance(exc, SessionClosedError):  # closed before this pair was sent
        kind = OutcomeKind.NOT_ATTEMPTED
    else:
        kind = OutcomeKind.FAILED
    return CancelOutcome(
        index,
        trade_id,
        item_id,
        kind,
        error=exc,
        reschedules=reschedules,
    )


_Job = tuple[int, proto.RequestSpec]
"""One pair to cancel on its own: its index and its cancel request."""


@attrs.frozen
class _TradeJob:
    """Two or more pairs of one trade ref, which may go as one whole-trade cancel (``whole_trades``)."""

    trade_id: object
    members: tuple[_Job, ...]


def _is_open(item: TradeItem) -> bool:
    """Whether a whole-trade cancel would try ``item`` (an unknown or missing status counts as open)."""
    return item.status is None or not item.status.terminal


def _plan_whole_trade(
    trade: Trade, members: Iterable[tuple[_Job, object]]
) -> tuple[list[tuple[_Job, TradeItem]], list[_Job]]:
    """Split a trade's requested pairs into those one whole-trade cancel covers and those sent one by one.

    The whole-trade cancel tries every item of the trade not in a final status, so it is planned only when
    the requested pairs name every one of those items (at least two): it must never cancel an item nobody
    asked for. Requested items that are final, or not in the trade at all, go one by one (they get their own
    answer). Without a plan, every pair goes one by one.
    """
    covered: list[tuple[_Job, TradeItem]] = []
    alone: list[_Job] = []
    for job, item_id in members:
        item = trade.item(proto.parse_id(item_id, "item_id"))
        if item is not None and _is_open(item):
            covered.append((job, item))
        else:
            alone.append(job)
    open_ids = {item.id for item in trade.items if _is_open(item)}
    asked = {item.id for _, item in covered}
    if str(trade.type) != "withdraw" or len(open_ids) < 2 or not open_ids <= asked:
        return [], [job for job, _ in members]
    return covered, alone


def _row_error(row: TradeCancelItem, result: TradeCancelResult) -> APIError:
    """The typed error of a ``failed`` row: the class its ``reason`` key maps to (``APIError`` if unknown)."""
    cls = proto.error_class(row.reason, None, 200)
    return cls(
        f"AssetPay did not cancel item {row.item_id!r} of trade {result.trade_id!r} in the whole-trade "
        f"cancel ({row.reason or 'no reason given'})",
        http_status=200,
        code=None,
        key=row.reason,
        request_id=result.request_id,
    )


def _row_result(row: TradeCancelItem, result: TradeCancelResult) -> CancelResult:
    return CancelResult(
        trade_id=result.trade_id,
        item_id=row.item_id,
        status=row.status,
        external_id=row.external_id,
        request_id=result.request_id,
    )


class CancelBatch:
    """One batch of cancels for one client.

    Create with [`AssetPayClient.batch`][assetpay_async.AssetPayClient.batch]; run with `run`.

    Args:
        client: the client whose token the cancels use.
        pairs: ``(trade_id, item_id)`` pairs; ids as UUIDs or UUID strings.
        workers: how many pairs are in progress at once (the limiter does the pacing; this bounds memory).
        on_progress: called (or awaited) after every finished pair.
        reschedule_too_soon: on TRADE_CANCEL_TOO_SOON, read the trade's ``createdAt`` and cancel again once the
            item is 30 minutes old, instead of failing.
        max_reschedule_wait: give up rescheduling an item that would become eligible later than this (seconds).
        journal: a file path: record every pair before it is sent and every answer, so a run of the same batch
            with the same journal after a crash sends nothing already decided (see ``docs/following.md``).
        max_transport_failures: stop the batch after this many pairs in a row failed with nothing getting
            through (connection refused, timeouts, no AssetPay envelope); None never stops.
        whole_trades: where a trade has two or more pairs, read the trade once and, if the pairs name every
            item of it not in a final status, cancel them with one
            [`cancel_withdrawal_trade`][assetpay_async.AssetPayClient.cancel_withdrawal_trade] request
            instead of one per item; each pair still gets its own outcome, from its row of the answer. It
            never cancels an item not asked for: a trade only partly asked for (or whose read fails) is
            cancelled item by item. A requested item missing from the answer's rows is sent again on its
            own. Costs one trade read per such trade (a list search where the single-trade route is
            missing); see ``docs/following.md``.
    """

    def __init__(
        self,
        client: BatchCaller,
        pairs: Iterable[tuple[object, object]],
        *,
        workers: int = 32,
        on_progress: ProgressCallback | None = None,
        reschedule_too_soon: bool = False,
        max_reschedule_wait: float = 1800.0,
        journal: str | os.PathLike[str] | None = None,
        max_transport_failures: int | None = DEFAULT_MAX_TRANSPORT_FAILURES,
        whole_trades: bool = False,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidRequestError("workers must be an int >= 1")
        if max_transport_failures is not None and (
            isinstance(max_transport_failures, bool)
            or not isinstance(max_transport_failures, int)
            or max_transport_failures < 1
        ):
            raise InvalidRequestError("max_transport_failures must be an int >= 1, or None")
        if not isinstance(whole_trades, bool):
            raise InvalidRequestError("whole_trades must be a bool")
        self._client = client
        self._pairs = [self._pair(p) for p in pairs]
        self._workers = workers
        self._on_progress = on_progress
        self._reschedule = reschedule_too_soon
        self._max_reschedule_wait = max_reschedule_wait
        self._journal_path = None if journal is None else os.fspath(journal)
        self._max_transport_failures = max_transport_failures
        self._whole_trades = whole_trades
        self._wait_first: dict[
            int, tuple[float, int]
        ] = {}  # too young in a whole-trade cancel: (delay, tries)
        self._outcomes: list[CancelOutcome | None] = [None] * len(self._pairs)
        self._dup_of: dict[int, int] = {}
        self._dups: dict[int, list[int]] = {}
        self._in_flight: set[int] = set()
        self._done_times: deque[float] = deque(maxlen=64)
        self._done = 0
        self._failures = 0
        self._ran = False
        self._db: sqlite3.Connection | None = None
        self._path_of: dict[int, str] = {}
        # Possibly sent by an earlier run of the journal, or by a whole-trade cancel whose answer left it out.
        self._sent_before: set[int] = set()
        self._journaled: set[int] = set()  # recorded as possibly sent by this run
        self._lost_in_a_row = 0
        self._stopped: BatchStoppedError | None = None
        self._current: dict[asyncio.Task[None], int] = {}

    @staticmethod
    def _pair(pair: tuple[object, object]) -> tuple[object, object]:
        try:
            trade_id, item_id = pair
        except (TypeError, ValueError):
            return (pair, None)
        return (trade_id, item_id)

    @property
    def total(self) -> int:
        return len(self._pairs)

    @property
    def stopped(self) -> BatchStoppedError | None:
        """Why the batch stopped early (its ``reason`` and ``cause``), or None if it did not."""
        return self._stopped

    @property
    def outcomes(self) -> list[CancelOutcome]:
        """One outcome per pair, in input order; pairs not finished yet show as NOT_ATTEMPTED or UNKNOWN."""
        return [self._outcome(i) for i in range(len(self._pairs))]

    def _outcome(self, index: int) -> CancelOutcome:
        first = self._dup_of.get(index)
        if first is not None:
            trade_id, item_id = self._pairs[index]
            original = self._outcome(first)
            return attrs.evolve(
                original, index=index, trade_id=trade_id, item_id=item_id, duplicate_of=first
            )
        outcome = self._outcomes[index]
        if outcome is not None:
            return outcome
        in_flight = index in self._in_flight or index in self._sent_before
        return CancelOutcome(
            index,
            *self._pairs[index],
            OutcomeKind.UNKNOWN if in_flight else OutcomeKind.NOT_ATTEMPTED,
        )

    async def run(self) -> list[CancelOutcome]:
        """Cancel every pair; return one outcome per pair in input order.

        If the task running this is cancelled, in-flight requests are abandoned (their outcome is UNKNOWN),
        pairs not started are NOT_ATTEMPTED, `outcomes` reports all of it, and CancelledError propagates.

        Raises:
            JournalError: the journal cannot be used, or (``JournalMismatchError``) was written for other
                pairs, another merchant or another endpoint; nothing was sent.
        """
        if self._ran:
            raise InvalidRequestError("a CancelBatch runs once; create a new one")
        self._ran = True
        first_of: dict[str, int] = {}  # by request path: the canonical ids, already checked
        queue: deque[tuple[int, proto.RequestSpec]] = deque()
        invalid: list[CancelOutcome] = []
        for index, (trade_id, item_id) in enumerate(self._pairs):
            try:
                spec = proto.cancel_request(trade_id, item_id)
            except InvalidRequestError as exc:
                invalid.append(_outcome_of(index, trade_id, item_id, exc, 0))
                continue
            key = spec.path
            if key in first_of:
                self._dup_of[index] = first_of[key]
                self._dups.setdefault(first_of[key], []).append(index)
                continue
            first_of[key] = index
            self._path_of[index] = key
            queue.append((index, spec))
        if self._journal_path is not None:
            # Before any outcome is reported: a journal that does not fit stops the batch with nothing done.
            self._db = journal.open_journal(
                self._journal_path,
                merchant_id=self._client.merchant_id,
                endpoint=self._client.session.base_url,
                digest=journal.pairs_digest(first_of),
                pairs=len(first_of),
            )
        try:
            for outcome in invalid:
                await self._finish(outcome)
            if self._db is not None:
                # Possibly-sent pairs are resolved before anything else is sent.
                first, queue = await self._resume(self._db, queue)
                await self._run_workers(first)
            if self._stopped is None:
                await self._run_workers(self._grouped(queue) if self._whole_trades else queue)
            if self._stopped is not None:
                await self._finish_stopped()
        finally:
            if self._db is not None:
                journal.close(self._db)
                self._db = None
        return self.outcomes

    def _grouped(self, queue: deque[_Job]) -> deque[_Job | _TradeJob]:
        """The pairs in input order, those of a trade ref with two or more pairs as one job at its first pair."""
        by_trade: dict[str, list[_Job]] = {}
        for job in queue:
            trade_id, _ = self._pairs[job[0]]
            by_trade.setdefault(proto.canonical_id(trade_id, "trade_id"), []).append(job)
        grouped: deque[_Job | _TradeJob] = deque()
        for jobs in by_trade.values():
            if len(jobs) == 1:
                grouped.append(jobs[0])
            else:
                grouped.append(_TradeJob(self._pairs[jobs[0][0]][0], tuple(jobs)))
        return grouped  # in input order: a dict keeps the order of first appearance

    async def _resume(
        self, db: sqlite3.Connection, queue: deque[tuple[int, proto.RequestSpec]]
    ) -> tuple[deque[tuple[int, proto.RequestSpec]], deque[tuple[int, proto.RequestSpec]]]:
        """Report what the journal decided; return the possibly-sent pairs and the ones never sent."""
        entries = journal.read_entries(db)
        first: deque[tuple[int, proto.RequestSpec]] = deque()
        rest: deque[tuple[int, proto.RequestSpec]] = deque()
        for index, spec in queue:
            entry = entries.get(spec.path)
            if entry is None:
                rest.append((index, spec))
            elif entry.state is journal.PairState.SENT:
                self._sent_before.add(index)
                first.append((index, spec))
            elif entry.record is not None:  # decided: cancelled or failed for good
                await self._finish(self._from_journal(index, entry.state, entry.record))
            else:  # a row without its record: treat it as possibly sent
                self._sent_before.add(index)
                first.append((index, spec))
        if first:
            logger.info("resuming: %d pair(s) may have been sent by an earlier run", len(first))
        return first, rest

    def _from_journal(
        self, index: int, state: journal.PairState, record: Mapping[str, Any]
    ) -> CancelOutcome:
        """The outcome an earlier run decided for pair ``index``, rebuilt from its journal record."""
        trade_id, item_id = self._pairs[index]
        if state is journal.PairState.CANCELLED:
            return CancelOutcome(
                index,
                trade_id,
                item_id,
                OutcomeKind.CANCELLED,
                result=journal.result_from_record(record),
                detail=OutcomeDetail.FROM_JOURNAL,
            )
        return CancelOutcome(
            index,
            trade_id,
            item_id,
            OutcomeKind.FAILED,
            error=journal.error_from_record(record),
            detail=OutcomeDetail.FROM_JOURNAL,
        )

    async def _run_workers(self, queue: deque[_Job] | deque[_Job | _TradeJob]) -> None:
        jobs: deque[_Job | _TradeJob] = deque(queue)
        deciding = 0  # whole-trade jobs under way: they may give pairs back to the queue
        changed = asyncio.Event()

        async def worker() -> None:
            nonlocal deciding
            me = asyncio.current_task()
            while self._stopped is None:
                if not jobs:
                    if deciding == 0:
                        return
                    changed.clear()
                    await changed.wait()
                    continue
                job = jobs.popleft()
                if isinstance(job, _TradeJob):
                    if me is not None:
                        self._current[me] = job.members[0][0]
                    deciding += 1
                    try:
                        jobs.extendleft(reversed(await self._cancel_trade(job)))
                    finally:
                        deciding -= 1
                        changed.set()
                        if me is not None:
                            self._current.pop(me, None)
                    continue
                index, spec = job
                if me is not None:
                    self._current[me] = index
                try:
                    await self._cancel_one(index, spec)
                finally:
                    if me is not None:
                        self._current.pop(me, None)

        pairs = sum(len(j.members) if isinstance(j, _TradeJob) else 1 for j in jobs)
        tasks = [asyncio.create_task(worker()) for _ in range(min(self._workers, pairs))]
        try:
            if tasks:
                # return_exceptions: a worker cancelled by a stop ends quietly; a cancellation of run() itself
                # still propagates (gather cancels the workers and raises).
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _finish_stopped(self) -> None:
        """Give every pair the stop left without an outcome one: UNKNOWN if it may have been sent."""
        for index in sorted(self._path_of):
            if self._outcomes[index] is not None:
                continue
            if index in self._in_flight or index in self._sent_before:
                outcome = CancelOutcome(index, *self._pairs[index], OutcomeKind.UNKNOWN)
            else:
                outcome = CancelOutcome(
                    index,
                    *self._pairs[index],
                    OutcomeKind.NOT_ATTEMPTED,
                    error=self._stopped,
                    detail=OutcomeDetail.BATCH_STOPPED,
                )
            await self._finish(outcome)

    def _stop(self, reason: str, cause: BaseException) -> None:
        """Stop taking pairs; abandon those still waiting for quota (never sent); let those on the wire end."""
        if self._stopped is not None:
            return
        self._stopped = BatchStoppedError(reason, cause=cause)
        logger.warning("stopping the batch: %s", reason)
        me = asyncio.current_task()
        for task, index in list(self._current.items()):
            if task is not me and index not in self._in_flight:
                task.cancel()

    def _on_send(self, index: int) -> None:
        if self._db is not None and index not in self._journaled:
            try:  # committed before the attempt is sent; if it cannot be, the attempt is not sent
                journal.mark_sent(self._db, self._path_of[index])
            except sqlite3.Error as exc:
                raise journal.JournalError(f"cannot write the journal: {exc}") from exc
            self._journaled.add(index)
        self._in_flight.add(index)

    def _on_send_all(self, indices: list[int]) -> None:
        """``_on_send`` for the pairs of one whole-trade cancel: all marked possibly sent in one commit."""
        fresh = [i for i in indices if i not in self._journaled]
        if self._db is not None and fresh:
            try:
                journal.mark_sent_all(self._db, [self._path_of[i] for i in fresh])
            except sqlite3.Error as exc:
                raise journal.JournalError(f"cannot write the journal: {exc}") from exc
            self._journaled.update(fresh)
        self._in_flight.update(indices)

    def _record(self, write: Callable[..., None], *args: object) -> None:
        """A journal write after the answer: on failure the answer still counts, but the batch stops."""
        try:
            write(*args)
        except sqlite3.Error as exc:
            self._stop(f"the journal cannot be written ({exc})", exc)

    async def _cancel_one(self, index: int, spec: proto.RequestSpec) -> None:
        trade_id, item_id = self._pairs[index]
        reschedules = 0
        waiting = self._wait_first.pop(index, None)
        if waiting is not None:  # too young in a whole-trade cancel: wait until it is old enough
            wait, reschedules = waiting
            await asyncio.sleep(wait)
        while True:
            try:
                # In flight only from the first attempt on the wire: a pair still queued for quota when the
                # batch is cancelled was never sent (NOT_ATTEMPTED), not "maybe sent" (UNKNOWN).
                result = await self._client._call(
                    spec,
                    proto.cancel_decoder(trade_id, item_id),
                    on_send=lambda: self._on_send(index),
                )
            except CancelTooSoonError as exc:
                self._in_flight.discard(index)
                self._lost_in_a_row = 0
                self._record_error(index, exc)
                delay = await self._eligible_in(trade_id) if self._reschedule else None
                if delay is None or reschedules >= 3:
                    await self._finish(self._failure(index, exc, reschedules))
                    return
                reschedules += 1
                logger.debug("trade %s is too young; cancelling again in %.1fs", trade_id, delay)
                await asyncio.sleep(delay)
                continue
            except asyncio.CancelledError:
                raise
            except journal.JournalError as exc:  # raised by _on_send: this pair was not sent
                self._stop(str(exc), exc)
                trade_id, item_id = self._pairs[index]
                outcome = CancelOutcome(
                    index, trade_id, item_id, OutcomeKind.NOT_ATTEMPTED, error=exc
                )
                await self._finish(outcome)
                return
            except Exception as exc:  # every pair must end with an outcome, even on a bug
                self._in_flight.discard(index)
                self._record_error(index, exc)
                await self._finish(self._failure(index, exc, reschedules))
                self._after_failure(exc)
                return
            self._in_flight.discard(index)
            self._lost_in_a_row = 0
            if self._db is not None:
                self._record(journal.mark_cancelled, self._db, self._path_of[index], result)
            await self._finish(
                CancelOutcome(
                    index,
                    trade_id,
                    item_id,
                    OutcomeKind.CANCELLED,
                    result=result,
                    reschedules=reschedules,
                )
            )
            return

    async def _cancel_trade(self, job: _TradeJob) -> list[_Job]:
        """Cancel a trade's pairs with one whole-trade request where that is safe; return the pairs left to
        cancel one by one."""
        members = list(job.members)
        try:
            trade = await self._client.get_trade(job.trade_id)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            raise
        except (
            Exception
        ) as exc:  # any failure to read: the pairs go one by one, as without the option
            logger.debug("cannot read trade %s for a whole-trade cancel: %s", job.trade_id, exc)
            return members
        covered, alone = _plan_whole_trade(trade, [(m, self._pairs[m[0]][1]) for m in members])
        if not covered:
            return members
        indices = [index for (index, _), _ in covered]
        me = asyncio.current_task()
        if me is not None:
            # A stop leaves the task alone once this pair (and so every covered pair) is on the wire.
            self._current[me] = indices[0]
        try:
            result = await self._client._call(
                proto.cancel_trade_request(job.trade_id),
                functools.partial(
                    proto.decode_trade_cancel,
                    trade_ref=proto.parse_id(job.trade_id, "trade_id"),
                ),
                on_send=lambda: self._on_send_all(indices),
            )
        except asyncio.CancelledError:
            raise
        except journal.JournalError as exc:  # raised by _on_send_all: nothing was sent
            self._stop(str(exc), exc)
            for index in indices:
                await self._finish(
                    CancelOutcome(index, *self._pairs[index], OutcomeKind.NOT_ATTEMPTED, error=exc)
                )
            return alone
        except (
            CancelTooSoonError
        ) as exc:  # the whole trade is too young: as a TOO_SOON row for each pair
            self._lost_in_a_row = 0
            return alone + await self._too_soon_in_trade(trade, indices, exc)
        except Exception as exc:  # every pair of the request shares its error
            for index in indices:
                self._in_flight.discard(index)
                self._record_error(index, exc)
                await self._finish(self._failure(index, exc, 0))
                self._after_failure(exc)
            return alone
        self._lost_in_a_row = 0
        again: list[_Job] = []
        for (index, spec), item in covered:
            self._in_flight.discard(index)
            row = result.item(item.id) or result.item(
                proto.parse_id(self._pairs[index][1], "item_id")
            )
            if row is None:  # not tried: sent again on its own, as possibly sent already
                self._sent_before.add(index)
                again.append((index, spec))
            elif row.cancelled:
                cancelled = _row_result(row, result)
                if self._db is not None:
                    self._record(journal.mark_cancelled, self._db, self._path_of[index], cancelled)
                await self._finish(
                    CancelOutcome(
                        index, *self._pairs[index], OutcomeKind.CANCELLED, result=cancelled
                    )
                )
            elif row.status is CancelStatus.FAILED:
                error = _row_error(row, result)
                if isinstance(error, CancelTooSoonError):
                    again += await self._too_soon_in_trade(trade, [index], error)
                    continue
                self._record_error(index, error)
                await self._finish(self._failure(index, error, 0))
                self._after_failure(error)
            else:  # a row status this SDK does not know: it may have been cancelled
                unknown = InvalidResponseError(
                    f"the whole-trade cancel answered status {str(row.status)!r} for item "
                    f"{row.item_id!r}",
                    http_status=200,
                    content_type=None,
                    snippet="",
                    request_id=result.request_id,
                )
                unknown.ambiguous = True
                await self._finish(self._failure(index, unknown, 0))
        return alone + again

    async def _too_soon_in_trade(
        self, trade: Trade, indices: list[int], error: CancelTooSoonError
    ) -> list[_Job]:
        """Pairs a whole-trade cancel found too young: FAILED, or (``reschedule_too_soon``) given back to
        be cancelled one by one once the trade read moments ago says they are old enough."""
        delay = self._delay_for(trade) if self._reschedule else None
        again: list[_Job] = []
        for index in indices:
            self._in_flight.discard(index)
            self._record_error(index, error)
            if delay is None:
                await self._finish(self._failure(index, error, 0))
            else:
                self._wait_first[index] = (delay, 1)
                again.append((index, proto.cancel_request(*self._pairs[index])))
        return again

    def _failure(self, index: int, exc: BaseException, reschedules: int) -> CancelOutcome:
        trade_id, item_id = self._pairs[index]
        outcome = _outcome_of(index, trade_id, item_id, exc, reschedules)
        if index not in self._sent_before or outcome.kind is not OutcomeKind.FAILED:
            return outcome
        # An earlier run's attempt may have been accepted: only a few answers prove it was not.
        if isinstance(exc, _PROVES_NOT_CANCELLED):
            return outcome
        if isinstance(exc, NotCancellableError):
            return attrs.evolve(
                outcome, kind=OutcomeKind.UNKNOWN, detail=OutcomeDetail.LIKELY_CANCELLED
            )
        return attrs.evolve(outcome, kind=OutcomeKind.UNKNOWN)

    def _record_error(self, index: int, exc: BaseException) -> None:
        """Write what an error says about the pair to the journal (if any)."""
        db = self._db
        if db is None or index not in self._path_of:
            return
        path = self._path_of[index]
        ambiguous = isinstance(exc, AssetPayError) and exc.ambiguous
        if ambiguous:
            return  # stays possibly sent
        if index in self._sent_before:
            if isinstance(exc, _PROVES_NOT_CANCELLED) and isinstance(exc, APIError):
                if isinstance(exc, CancelTooSoonError):
                    self._record(journal.mark_open, db, path)
                else:
                    self._record(journal.mark_failed, db, path, exc)
            return  # otherwise it stays possibly sent: the earlier attempt may have been accepted
        if isinstance(exc, APIError) and not isinstance(exc, _TRANSIENT_API):
            if exc.http_status < 500:
                self._record(journal.mark_failed, db, path, exc)
            return  # an unknown 5xx: it stays possibly sent
        if isinstance(exc, _NOTHING_HAPPENED):
            self._record(journal.mark_open, db, path)  # sent again by the next run
        # Anything else (a 5xx, a bug): it stays possibly sent.

    def _after_failure(self, exc: BaseException) -> None:
        if isinstance(exc, _FATAL):
            key = exc.key or type(exc).__name__
            self._stop(f"AssetPay refused the client token ({key}): {type(exc).__name__}", exc)
            return
        lost = isinstance(exc, TransportError) or (
            isinstance(exc, InvalidResponseError) and not 200 <= exc.http_status < 300
        )
        if not lost:
            self._lost_in_a_row = 0
            return
        self._lost_in_a_row += 1
        limit = self._max_transport_failures
        if limit is not None and self._lost_in_a_row >= limit:
            self._stop(
                f"{self._lost_in_a_row} pairs in a row failed with nothing getting through "
                f"(last: {type(exc).__name__})",
                exc,
            )

    async def _eligible_in(self, trade_id: object) -> float | None:
        """Seconds until the trade is old enough to cancel, or None when that cannot be known or is too far."""
        try:
            trade = await self._client.get_trade(trade_id)  # type: ignore[arg-type]
        except AssetPayError as exc:
            logger.debug("cannot read trade %s to reschedule: %s", trade_id, exc)
            return None
        return self._delay_for(trade)

    def _delay_for(self, trade: Trade) -> float | None:
        """Seconds until ``trade`` is old enough to cancel, or None when that cannot be known or is too far."""
        # A small margin covers clock skew between us and AssetPay; a second TOO_SOON just reschedules again.
        delay = (
            trade.created_at + CANCEL_AGE - self._client.session.wall_clock()
        ).total_seconds() + 2.0
        delay = max(delay, 1.0)
        return delay if delay <= self._max_reschedule_wait else None

    async def _finish(self, outcome: CancelOutcome) -> None:
        self._outcomes[outcome.index] = outcome
        finished = 1 + len(self._dups.get(outcome.index, ()))
        self._done += finished
        if outcome.kind in (OutcomeKind.FAILED, OutcomeKind.UNKNOWN):
            self._failures += finished
        self._done_times.append(asyncio.get_running_loop().time())
        if self._on_progress is None:
            return
        progress = BatchProgress(
            done=self._done,
            total=self.total,
            failures=self._failures,
            rate=self._rate(),
            # limiter_stats, unlike limiter_for, also answers once the session is closed mid-batch.
            rate_limited=self._client.session.limiter_stats(RouteGroup.CANCEL_ITEM).rate_limited,
        )
        maybe = self._on_progress(progress)
        if inspect.isawaitable(maybe):
            await maybe

    def _rate(self) -> float:
        if len(self._done_times) < 2:
            return 0.0
        span = self._done_times[-1] - self._done_times[0]
        return (len(self._done_times) - 1) / span if span > 0 else 0.0
