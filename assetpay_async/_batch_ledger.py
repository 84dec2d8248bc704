"""The pair ledger: what a batch sent, what was decided, and what its journal holds, pair by pair."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence

import attrs

from . import _cancel_rules as rules
from . import _journal as journal
from ._batch_plan import Job, PairPlan, from_journal
from ._batch_types import (
    BatchStoppedError,
    CancelOutcome,
    OutcomeDetail,
    OutcomeKind,
    outcome_of,
)
from ._errors import APIError, NotCancellableError
from ._models import CancelResult

__all__ = ["PairLedger"]

logger = logging.getLogger("assetpay_async._batch")

Stop = Callable[[str, BaseException], None]


class PairLedger:
    """Every pair's state in one place: in flight, possibly sent before, journaled, finished.

    Args:
        pairs: the batch's pairs, as given.
        plan: their dedupe (``path_of`` names each distinct pair in the journal).
        stop: called when a journal write after an answer fails (the answer still counts).
    """

    def __init__(self, pairs: Sequence[tuple[object, object]], plan: PairPlan, stop: Stop) -> None:
        self.pairs = pairs
        self.plan = plan
        self.journal: journal.Journal | None = None
        self.outcomes: list[CancelOutcome | None] = [None] * len(pairs)
        self.in_flight: set[int] = set()
        # Possibly sent by an earlier run of the journal, or by a whole-trade cancel whose answer left it out.
        self.sent_before: set[int] = set()
        self.unlisted: list[CancelResult] = []
        self._journaled: set[int] = set()  # recorded as possibly sent by this run
        self._stop = stop

    # -- the journal ---------------------------------------------------------------------------------------

    def open_journal(self, path: str | os.PathLike[str], merchant_id: str, endpoint: str) -> None:
        """Take the journal for this batch (see [`Journal.open`][assetpay_async._journal.Journal.open])."""
        paths = self.plan.path_of.values()
        self.journal = journal.Journal.open(
            path,
            merchant_id=merchant_id,
            endpoint=endpoint,
            digest=journal.pairs_digest(paths),
            pairs=len(self.plan.path_of),
        )

    def close_journal(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    def resume(self, queue: deque[Job]) -> tuple[deque[Job], deque[Job], list[CancelOutcome]]:
        """Split the pairs by what the journal says: possibly sent, never sent, and decided (their outcomes).

        Raises:
            JournalError: the journal is damaged.
        """
        entries = self.journal.read_entries() if self.journal is not None else {}
        if self.journal is not None:
            self.unlisted.extend(self.journal.read_unlisted())  # found by an earlier run
        first: deque[Job] = deque()
        rest: deque[Job] = deque()
        decided: list[CancelOutcome] = []
        for index, call in queue:
            entry = entries.get(call.spec.path)
            if entry is None:
                rest.append((index, call))
            elif entry.state is not journal.PairState.SENT and entry.record is not None:
                decided.append(from_journal(index, self.pairs[index], entry.state, entry.record))
            else:  # possibly sent (or a row without its record): resolved before anything else
                self.sent_before.add(index)
                first.append((index, call))
        if first:
            logger.info("resuming: %d pair(s) may have been sent by an earlier run", len(first))
        return first, rest, decided

    def on_send(self, index: int) -> None:
        """Before an attempt goes on the wire: commit it as possibly sent (if it cannot be, it is not sent).

        Raises:
            JournalError: the journal cannot be written; the attempt must not be sent.
        """
        self.on_send_all([index])

    def on_send_all(self, indices: list[int]) -> None:
        """`on_send` for the pairs of one whole-trade cancel: all marked possibly sent in one commit."""
        fresh = [i for i in indices if i not in self._journaled]
        if self.journal is not None and fresh:
            try:
                if len(fresh) == 1:
                    self.journal.mark_sent(self.plan.path_of[fresh[0]])
                else:
                    self.journal.mark_sent_all([self.plan.path_of[i] for i in fresh])
            except sqlite3.Error as exc:
                raise journal.JournalError(f"cannot write the journal: {exc}") from exc
            self._journaled.update(fresh)
        self.in_flight.update(indices)

    def add_unlisted(self, results: list[CancelResult]) -> None:
        """Keep (and journal) items a whole-trade cancel cancelled that no pair listed."""
        self.unlisted.extend(results)
        if self.journal is not None:
            for result in results:
                self._record(self.journal.record_unlisted, result)

    def record_cancelled(self, index: int, result: CancelResult) -> None:
        if self.journal is not None and index in self.plan.path_of:
            self._record(self.journal.mark_cancelled, self.plan.path_of[index], result)

    def record_failed(self, index: int, error: APIError) -> None:
        if self.journal is not None and index in self.plan.path_of:
            self._record(self.journal.mark_failed, self.plan.path_of[index], error)

    def record_error(self, index: int, exc: BaseException) -> None:
        """Write what an error says about the pair to the journal (if any)."""
        db = self.journal
        if db is None or index not in self.plan.path_of:
            return
        path = self.plan.path_of[index]
        action = rules.journal_action(exc, sent_before=index in self.sent_before)
        if action is rules.JournalAction.FAILED and isinstance(exc, APIError):
            self._record(db.mark_failed, path, exc)
        elif action is rules.JournalAction.OPEN:
            self._record(db.mark_open, path)

    def _record(self, write: Callable[..., None], *args: object) -> None:
        """A journal write after the answer: on failure the answer still counts, but the batch stops."""
        try:
            write(*args)
        except (sqlite3.Error, journal.JournalError) as exc:
            self._stop(f"the journal cannot be written ({exc})", exc)

    # -- outcomes ------------------------------------------------------------------------------------------

    def failure(self, index: int, exc: BaseException, reschedules: int) -> CancelOutcome:
        """The outcome of pair ``index`` ending with ``exc`` (UNKNOWN if an earlier attempt may have won)."""
        self.in_flight.discard(index)
        outcome = outcome_of(index, *self.pairs[index], exc, reschedules)
        if index not in self.sent_before or outcome.kind is not OutcomeKind.FAILED:
            return outcome
        # An earlier run's attempt may have been accepted: only a few answers prove it was not.
        if rules.proves_not_cancelled(exc, same_token=False):
            return outcome
        if isinstance(exc, NotCancellableError):
            return attrs.evolve(
                outcome, kind=OutcomeKind.UNKNOWN, detail=OutcomeDetail.LIKELY_CANCELLED
            )
        return attrs.evolve(outcome, kind=OutcomeKind.UNKNOWN)

    def finish(self, outcome: CancelOutcome) -> int:
        """Keep a pair's outcome; return how many pairs it finishes (its duplicates included)."""
        self.outcomes[outcome.index] = outcome
        self.in_flight.discard(outcome.index)
        return 1 + len(self.plan.dups.get(outcome.index, ()))

    def outcome(self, index: int) -> CancelOutcome:
        """Pair ``index``'s outcome so far (a pair not finished shows as NOT_ATTEMPTED or UNKNOWN)."""
        first = self.plan.dup_of.get(index)
        if first is not None:
            trade_id, item_id = self.pairs[index]
            original = self.outcome(first)
            return attrs.evolve(
                original, index=index, trade_id=trade_id, item_id=item_id, duplicate_of=first
            )
        outcome = self.outcomes[index]
        if outcome is not None:
            return outcome
        in_flight = index in self.in_flight or index in self.sent_before
        kind = OutcomeKind.UNKNOWN if in_flight else OutcomeKind.NOT_ATTEMPTED
        return CancelOutcome(index, *self.pairs[index], kind)

    def left_by_stop(self, stopped: BatchStoppedError) -> list[CancelOutcome]:
        """Outcomes for the pairs a stop left without one: UNKNOWN if they may have been sent."""
        left = []
        for index in sorted(self.plan.path_of):
            if self.outcomes[index] is not None:
                continue
            if index in self.in_flight or index in self.sent_before:
                left.append(CancelOutcome(index, *self.pairs[index], OutcomeKind.UNKNOWN))
            else:
                left.append(
                    CancelOutcome(
                        index,
                        *self.pairs[index],
                        OutcomeKind.NOT_ATTEMPTED,
                        error=stopped,
                        detail=OutcomeDetail.BATCH_STOPPED,
                    )
                )
        return left
