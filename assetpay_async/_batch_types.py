"""What a batch reports: the outcome of each pair, progress, and why a batch stopped (the public types)."""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypedDict

import attrs

from ._errors import APIError, AssetPayError, SessionClosedError
from ._models import CancelResult

__all__ = [
    "BatchOptions",
    "BatchProgress",
    "BatchStoppedError",
    "CancelOutcome",
    "OutcomeDetail",
    "OutcomeKind",
    "ProgressCallback",
    "error_dict",
    "outcome_of",
    "ref_text",
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
    TRADE_NOT_CANCELLABLE, which is also what an item already cancelled (and reverted) answers. The batch
    reads the trade first; this stays only when the read cannot tell (the item still open, or no read), and
    the pair stays possibly sent in a journal (the next run asks again)."""
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


def ref_text(ref: object) -> str:
    """A pair's ref as text: a string as given, anything else (a ``uuid.UUID``) as ``str()`` of it."""
    return ref if isinstance(ref, str) else str(ref)


@attrs.frozen
class CancelOutcome:
    """The end of one pair.

    Attributes:
        index: position in the input.
        trade_id: the trade ref as given, as text (a ``uuid.UUID`` as its canonical string).
        item_id: the item ref as given, as text.
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
    trade_id: str = attrs.field(converter=ref_text)
    item_id: str = attrs.field(converter=ref_text)
    kind: OutcomeKind
    result: CancelResult | None = None
    error: BaseException | None = None
    duplicate_of: int | None = None
    reschedules: int = 0
    detail: OutcomeDetail | None = None

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.CANCELLED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: enums as their values, the result as a dict, the error as
        ``{type, key, code, message, ambiguous}`` (``key``/``code`` None for errors that have none; a
        token-shaped string in a message is replaced by ``[redacted]``)."""
        result = self.result
        return {
            "index": self.index,
            "trade_id": self.trade_id,
            "item_id": self.item_id,
            "kind": self.kind.value,
            "result": None
            if result is None
            else {
                "trade_id": str(result.trade_id),
                "item_id": str(result.item_id),
                "status": str(result.status.value),
                "external_id": result.external_id,
                "request_id": result.request_id,
            },
            "error": None if self.error is None else error_dict(self.error),
            "duplicate_of": self.duplicate_of,
            "reschedules": self.reschedules,
            "detail": None if self.detail is None else self.detail.value,
        }


# A token (JWT-shaped: three base64url parts) or a bearer credential in a message: never in a result row.
_TOKENISH: Final = re.compile(
    r"(?:Bearer\s+\S+)|(?:[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)


def error_dict(error: BaseException) -> dict[str, Any]:
    """``{type, key, code, message, ambiguous}`` for an outcome's error, JSON-ready and without secrets."""
    message = error.message if isinstance(error, APIError) else str(error)
    return {
        "type": type(error).__name__,
        "key": error.key if isinstance(error, APIError) else None,
        "code": error.code if isinstance(error, APIError) else None,
        "message": _TOKENISH.sub("[redacted]", message),
        "ambiguous": isinstance(error, AssetPayError) and error.ambiguous,
    }


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
