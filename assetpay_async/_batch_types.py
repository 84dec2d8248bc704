"""What a batch reports: the outcome of each pair, progress, and why a batch stopped (the public types)."""

from __future__ import annotations

import enum
import os
from collections.abc import Awaitable, Callable
from typing import TypedDict

import attrs

from ._errors import AssetPayError, SessionClosedError
from ._models import CancelResult

__all__ = [
    "BatchOptions",
    "BatchProgress",
    "BatchStoppedError",
    "CancelOutcome",
    "OutcomeDetail",
    "OutcomeKind",
    "ProgressCallback",
    "outcome_of",
]


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
    CONFIRMED_BY_READ = "confirmed-by-read"
    """Settled by reading the trade after an answer that left it in doubt (TRADE_NOT_CANCELLABLE after an
    earlier attempt): CANCELLED when the item is ``reverted``, FAILED when it ended otherwise (delivered)."""
    UNLISTED_CANCELLED = "unlisted-cancelled"
    """CANCELLED by a whole-trade cancel that also cancelled items of the trade no pair listed (they joined
    after the read, or the read was stale). They are in
    [`CancelBatch.unlisted`][assetpay_async.CancelBatch.unlisted]: refund those users too."""
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


def outcome_of(
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
