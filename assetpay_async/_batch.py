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

The batch is three parts: pure planning (``_batch_plan``), the pair ledger that owns what was sent, decided and
journaled (``_batch_ledger``), and this runner (workers, stopping, progress); the whole-trade route is in
``_batch_trades``, and the rules of what proves an item was not cancelled in ``_cancel_rules``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import attrs

from . import _cancel_rules as rules
from . import _journal as journal
from . import _protocol as proto
from ._batch_ledger import PairLedger
from ._batch_plan import Job, TradeJob, delay_for, grouped, plan_pairs, settle_by_read
from ._batch_trades import WholeTrades
from ._batch_types import (
    BatchOptions,
    BatchProgress,
    BatchStoppedError,
    CancelOutcome,
    OutcomeDetail,
    OutcomeKind,
    ProgressCallback,
)
from ._errors import (
    APIError,
    AssetPayError,
    CancelTooSoonError,
    InvalidRequestError,
    InvalidResponseError,
    TransportError,
)
from ._models import CancelResult, Trade
from ._quota import RouteGroup

if TYPE_CHECKING:
    from ._interfaces import BatchCaller

__all__ = [
    "BatchOptions",
    "BatchProgress",
    "BatchStoppedError",
    "CancelBatch",
    "CancelOutcome",
    "OutcomeDetail",
    "OutcomeKind",
]

logger = logging.getLogger("assetpay_async._batch")

DEFAULT_MAX_TRANSPORT_FAILURES: Final = 20
"""Pairs in a row that fail with nothing getting through before a batch stops (``max_transport_failures``)."""


class CancelBatch(WholeTrades):
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
            cancelled item by item. The whole-trade cancel names the trade by AssetPay's id of the trade
            that was read, never by the pair's ref. A requested item missing from the answer's rows is
            sent again on its own; an item in the answer that no pair listed (it joined after the read)
            is logged as a WARNING and reported in `unlisted` (and its trade's pairs say
            ``UNLISTED_CANCELLED``). Costs one trade read per such trade (a list search where the
            single-trade route is missing); see ``docs/following.md``.
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
        self._journal_path = journal
        self._max_transport_failures = max_transport_failures
        self._whole_trades = whole_trades
        self._plan = plan_pairs(self._pairs)
        self._ledger = PairLedger(self._pairs, self._plan, self._stop)
        self._wait_first: dict[int, tuple[float, int]] = {}  # too young in a whole-trade cancel
        self._done_times: deque[float] = deque(maxlen=64)
        self._done = 0
        self._failures = 0
        self._ran = False
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
        return [self._ledger.outcome(i) for i in range(len(self._pairs))]

    def decided(self, index: int) -> CancelOutcome | None:
        """Pair ``index``'s final outcome, or None while it is queued or in flight (a duplicate: its first's)."""
        first = self._ledger.plan.dup_of.get(index, index)
        return None if self._ledger.outcomes[first] is None else self._ledger.outcome(index)

    @property
    def unlisted(self) -> list[CancelResult]:
        """Items a whole-trade cancel of this batch cancelled that no pair listed, each once.

        They joined the trade after its read, or the read was stale (``whole_trades`` only; see
        ``docs/following.md``). Their users must be refunded like the others'. With a journal, those an
        earlier run of it found are included. Empty in the usual case.
        """
        return list(self._ledger.unlisted)

    async def run(self) -> list[CancelOutcome]:
        """Cancel every pair; return one outcome per pair in input order.

        If the task running this is cancelled, in-flight requests are abandoned (their outcome is UNKNOWN),
        pairs not started are NOT_ATTEMPTED, `outcomes` reports all of it, and CancelledError propagates.

        Raises:
            JournalError: the journal cannot be used: damaged, held by another run (``JournalLockedError``),
                or (``JournalMismatchError``) written for other pairs, another merchant or another
                endpoint; nothing was sent.
        """
        if self._ran:
            raise InvalidRequestError("a CancelBatch runs once; create a new one")
        self._ran = True
        queue = self._plan.queue
        ledger = self._ledger
        if self._journal_path is not None:
            # Before any outcome is reported: a journal that does not fit stops the batch with nothing done.
            ledger.open_journal(
                self._journal_path, self._client.merchant_id, self._client.session.base_url
            )
        try:
            first: deque[Job] = deque()
            decided: list[CancelOutcome] = []
            if ledger.journal is not None:
                first, queue, decided = ledger.resume(queue)  # before anything is sent
            for outcome in [*self._plan.invalid, *decided]:
                await self._finish(outcome)
            await self._run_workers(first)  # possibly-sent pairs are resolved first
            if self._stopped is None:
                await self._run_workers(
                    grouped(queue, self._pairs) if self._whole_trades else queue
                )
            if self._stopped is not None:
                for outcome in ledger.left_by_stop(self._stopped):
                    await self._finish(outcome)
        finally:
            ledger.close_journal()
        return self.outcomes

    async def _run_workers(self, queue: deque[Job] | deque[Job | TradeJob]) -> None:
        jobs: deque[Job | TradeJob] = deque(queue)
        pairs = sum(len(j.members) if isinstance(j, TradeJob) else 1 for j in jobs)
        state = _Jobs(jobs)
        tasks = [asyncio.create_task(self._worker(state)) for _ in range(min(self._workers, pairs))]
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

    async def _worker(self, state: _Jobs) -> None:
        me = asyncio.current_task()
        while self._stopped is None:
            if not state.jobs:
                if state.deciding == 0:
                    return
                state.changed.clear()
                await state.changed.wait()
                continue
            job = state.jobs.popleft()
            if me is not None:
                self._current[me] = job.members[0][0] if isinstance(job, TradeJob) else job[0]
            try:
                if isinstance(job, TradeJob):
                    # A whole-trade job may give pairs back to the queue: the others wait for it.
                    state.deciding += 1
                    try:
                        state.jobs.extendleft(reversed(await self._cancel_trade(job)))
                    finally:
                        state.deciding -= 1
                        state.changed.set()
                else:
                    await self._cancel_one(*job)
            finally:
                if me is not None:
                    self._current.pop(me, None)

    def _stop(self, reason: str, cause: BaseException) -> None:
        """Stop taking pairs; abandon those still waiting for quota (never sent); let those on the wire end."""
        if self._stopped is not None:
            return
        self._stopped = BatchStoppedError(reason, cause=cause)
        logger.warning("stopping the batch: %s", reason)
        me = asyncio.current_task()
        for task, index in list(self._current.items()):
            if task is not me and index not in self._ledger.in_flight:
                task.cancel()

    async def _cancel_one(self, index: int, call: proto.Call[CancelResult]) -> None:
        trade_id, item_id = self._pairs[index]
        ledger = self._ledger
        reschedules = 0
        waiting = self._wait_first.pop(index, None)
        if waiting is not None:  # too young in a whole-trade cancel: wait until it is old enough
            wait, reschedules = waiting
            await asyncio.sleep(wait)
        while True:
            try:
                # In flight only from the first attempt on the wire: a pair still queued for quota when the
                # batch is cancelled was never sent (NOT_ATTEMPTED), not "maybe sent" (UNKNOWN).
                result = await self._client._send(call, on_send=lambda: ledger.on_send(index))
            except CancelTooSoonError as exc:
                ledger.in_flight.discard(index)
                self._lost_in_a_row = 0
                ledger.record_error(index, exc)
                delay = await self._eligible_in(trade_id) if self._reschedule else None
                if delay is None or reschedules >= 3:
                    await self._finish(ledger.failure(index, exc, reschedules))
                    return
                reschedules += 1
                logger.debug("trade %s is too young; cancelling again in %.1fs", trade_id, delay)
                await asyncio.sleep(delay)
                continue
            except asyncio.CancelledError:
                raise
            except journal.JournalError as exc:  # raised by on_send: this pair was not sent
                await self._not_sent([index], exc)
                return
            except Exception as exc:  # every pair must end with an outcome, even on a bug
                await self._failed(index, exc, reschedules)
                return
            self._lost_in_a_row = 0
            ledger.record_cancelled(index, result)
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

    async def _not_sent(self, indices: list[int], exc: journal.JournalError) -> None:
        """The journal could not record the pairs as possibly sent: they were not sent; the batch stops."""
        self._stop(str(exc), exc)
        for index in indices:
            await self._finish(
                CancelOutcome(index, *self._pairs[index], OutcomeKind.NOT_ATTEMPTED, error=exc)
            )

    async def _failed(self, index: int, exc: BaseException, reschedules: int) -> None:
        """Pair ``index`` ended with ``exc``: record it, settle a likely cancel by a read, finish it."""
        ledger = self._ledger
        ledger.in_flight.discard(index)
        ledger.record_error(index, exc)
        outcome = ledger.failure(index, exc, reschedules)
        if outcome.detail is OutcomeDetail.LIKELY_CANCELLED:
            outcome = await self._settle(outcome)
        await self._finish(outcome)
        self._after_failure(exc)

    async def _settle(self, outcome: CancelOutcome) -> CancelOutcome:
        """Confirm a likely cancel by reading the trade: the item's status says how it ended, if final."""
        try:
            trade = await self._client.get_trade(outcome.trade_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the read failed: it stays in doubt
            logger.debug("cannot read trade %s to settle a cancel: %s", outcome.trade_id, exc)
            return outcome
        try:
            settled = settle_by_read(trade, outcome.item_id)
        except AssetPayError:
            return outcome
        if settled is None:
            return outcome
        detail = OutcomeDetail.CONFIRMED_BY_READ
        if isinstance(settled, CancelResult):
            self._ledger.record_cancelled(outcome.index, settled)
            return CancelOutcome(
                outcome.index,
                outcome.trade_id,
                outcome.item_id,
                OutcomeKind.CANCELLED,
                result=settled,
                reschedules=outcome.reschedules,
                detail=detail,
            )
        if isinstance(outcome.error, APIError):
            self._ledger.record_failed(outcome.index, outcome.error)
        return attrs.evolve(outcome, kind=OutcomeKind.FAILED, detail=detail)

    def _after_failure(self, exc: BaseException) -> None:
        if rules.is_setup_error(exc):
            self._stop(f"a setting cannot work ({type(exc).__name__}): {exc}", exc)
            return
        if rules.ends_batch(exc):
            key = getattr(exc, "key", None) or type(exc).__name__
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
        now = self._client.session.wall_clock()
        return delay_for(trade, now, self._max_reschedule_wait)

    async def _finish(self, outcome: CancelOutcome) -> None:
        finished = self._ledger.finish(outcome)
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


class _Jobs:
    """The jobs the workers of one phase share, and the whole-trade jobs still deciding."""

    def __init__(self, jobs: deque[Job | TradeJob]) -> None:
        self.jobs = jobs
        self.deciding = 0
        self.changed = asyncio.Event()
