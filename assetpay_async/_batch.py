"""Cancel many items: every pair ends in an outcome, in input order, whatever happens to the batch.

``CancelBatch`` is the ``asyncio.gather`` use case done right: bad pairs fail before any quota is spent, duplicate
pairs are cancelled once, one failure never stops the others, progress is reported as it goes, and if the batch's
task is cancelled, :attr:`CancelBatch.outcomes` still says what was done, what may have been done, and what never ran.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Final, TypedDict

import attrs

from . import _protocol as proto
from ._errors import AssetPayError, CancelTooSoonError, InvalidRequestError, SessionClosedError
from ._models import CancelResult
from ._quota import RouteGroup

if TYPE_CHECKING:
    from ._interfaces import BatchCaller

__all__ = ["BatchProgress", "CancelBatch", "CancelOutcome", "OutcomeKind"]

logger = logging.getLogger("assetpay_async._batch")

CANCEL_AGE: Final = dt.timedelta(minutes=30)
"""AssetPay refuses to cancel an item younger than this (measured from the trade's ``createdAt``)."""


class OutcomeKind(enum.StrEnum):
    """How one pair of a batch ended."""

    CANCELLED = "cancelled"
    """The marketplace accepted the cancel (the item becomes ``reverted`` later)."""
    FAILED = "failed"
    """A definite failure: ``error`` says why; nothing was cancelled."""
    UNKNOWN = "unknown"
    """Outcome unknown: a request may have reached AssetPay but no answer came back. Check the trade."""
    NOT_ATTEMPTED = "not-attempted"
    """The batch was cancelled or closed before this pair was sent."""


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
            :class:`SessionClosedError` for a pair NOT_ATTEMPTED because the session was closed.
        duplicate_of: index of the earlier identical pair whose outcome this one shares.
        reschedules: how many times a too-young item was re-tried once eligible.
    """

    index: int
    trade_id: object
    item_id: object
    kind: OutcomeKind
    result: CancelResult | None = None
    error: BaseException | None = None
    duplicate_of: int | None = None
    reschedules: int = 0

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


class CancelBatch:
    """One batch of cancels for one client. Create with :meth:`AssetPayClient.batch`; run with :meth:`run`.

    Args:
        client: the client whose token the cancels use.
        pairs: ``(trade_id, item_id)`` pairs; ids as UUIDs or UUID strings.
        workers: how many pairs are in progress at once (the limiter does the pacing; this bounds memory).
        on_progress: called (or awaited) after every finished pair.
        reschedule_too_soon: on TRADE_CANCEL_TOO_SOON, read the trade's ``createdAt`` and cancel again once the
            item is 30 minutes old, instead of failing.
        max_reschedule_wait: give up rescheduling an item that would become eligible later than this (seconds).
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
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidRequestError("workers must be an int >= 1")
        self._client = client
        self._pairs = [self._pair(p) for p in pairs]
        self._workers = workers
        self._on_progress = on_progress
        self._reschedule = reschedule_too_soon
        self._max_reschedule_wait = max_reschedule_wait
        self._outcomes: list[CancelOutcome | None] = [None] * len(self._pairs)
        self._dup_of: dict[int, int] = {}
        self._dups: dict[int, list[int]] = {}
        self._in_flight: set[int] = set()
        self._done_times: deque[float] = deque(maxlen=64)
        self._done = 0
        self._failures = 0
        self._ran = False

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
        in_flight = index in self._in_flight
        return CancelOutcome(
            index,
            *self._pairs[index],
            OutcomeKind.UNKNOWN if in_flight else OutcomeKind.NOT_ATTEMPTED,
        )

    async def run(self) -> list[CancelOutcome]:
        """Cancel every pair; return one outcome per pair in input order.

        If the task running this is cancelled, in-flight requests are abandoned (their outcome is UNKNOWN),
        pairs not started are NOT_ATTEMPTED, :attr:`outcomes` reports all of it, and CancelledError propagates.
        """
        if self._ran:
            raise InvalidRequestError("a CancelBatch runs once; create a new one")
        self._ran = True
        first_of: dict[str, int] = {}  # by request path: the canonical ids, already checked
        queue: deque[tuple[int, proto.RequestSpec]] = deque()
        for index, (trade_id, item_id) in enumerate(self._pairs):
            try:
                spec = proto.cancel_request(trade_id, item_id)
            except InvalidRequestError as exc:
                await self._finish(_outcome_of(index, trade_id, item_id, exc, 0))
                continue
            key = spec.path
            if key in first_of:
                self._dup_of[index] = first_of[key]
                self._dups.setdefault(first_of[key], []).append(index)
                continue
            first_of[key] = index
            queue.append((index, spec))

        async def worker() -> None:
            while queue:
                index, spec = queue.popleft()
                await self._cancel_one(index, spec)

        tasks = [asyncio.create_task(worker()) for _ in range(min(self._workers, len(queue)))]
        try:
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        return self.outcomes

    async def _cancel_one(self, index: int, spec: proto.RequestSpec) -> None:
        trade_id, item_id = self._pairs[index]
        reschedules = 0
        while True:
            try:
                # In flight only from the first attempt on the wire: a pair still queued for quota when the
                # batch is cancelled was never sent (NOT_ATTEMPTED), not "maybe sent" (UNKNOWN).
                result = await self._client._call(
                    spec,
                    proto.decode_cancel,
                    on_send=lambda: self._in_flight.add(index),
                )
            except CancelTooSoonError as exc:
                self._in_flight.discard(index)
                delay = await self._eligible_in(trade_id) if self._reschedule else None
                if delay is None or reschedules >= 3:
                    await self._finish(_outcome_of(index, trade_id, item_id, exc, reschedules))
                    return
                reschedules += 1
                logger.debug("trade %s is too young; cancelling again in %.1fs", trade_id, delay)
                await asyncio.sleep(delay)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every pair must end with an outcome, even on a bug
                self._in_flight.discard(index)
                await self._finish(_outcome_of(index, trade_id, item_id, exc, reschedules))
                return
            self._in_flight.discard(index)
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

    async def _eligible_in(self, trade_id: object) -> float | None:
        """Seconds until the trade is old enough to cancel, or None when that cannot be known or is too far."""
        try:
            trade = await self._client.get_trade(trade_id)  # type: ignore[arg-type]
        except AssetPayError as exc:
            logger.debug("cannot read trade %s to reschedule: %s", trade_id, exc)
            return None
        if trade.created_at is None:
            return None
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
