"""What an answer to a cancel proves: the one set of rules the request path and the batch share.

Pure functions of an error (or its class). A cancel whose earlier attempt may have reached AssetPay is in doubt
until an answer proves that nothing was cancelled; only a few answers do. The batch also decides here what its
journal keeps of an answer and which answers end a batch.
"""

from __future__ import annotations

import enum
from typing import Final

from . import _errors as e

__all__ = [
    "FATAL",
    "JournalAction",
    "ends_batch",
    "is_setup_error",
    "journal_action",
    "proves_not_cancelled",
]

# Proof whatever token the earlier attempt used: the item cannot be cancelled by anyone, or the request was bad.
_ALWAYS: Final = (
    e.CancelTooSoonError,
    e.ItemNotFoundError,
    e.TradeNotFoundError,
    e.ForbiddenError,
    e.APIValidationError,
)
# Proof only about an attempt made with the same token (the retries of one call, not an earlier run's send).
_SAME_TOKEN: Final = (e.AuthenticationError, e.AccountDisabledError)

FATAL: Final = _SAME_TOKEN
"""Errors that end a batch at once: every further pair would draw the same answer."""

# A refusal that passes (or is about the caller, not the item): not recorded as the pair's decision.
_TRANSIENT_API: Final = (e.RateLimitedError, e.ServerError, *_SAME_TOKEN, e.CancelTooSoonError)
# Non-ambiguous answers proving this run's attempts did nothing (the pair is sent again by the next run).
_NOTHING_HAPPENED: Final = (
    e.RateLimitedError,
    *_SAME_TOKEN,
    e.CancelTooSoonError,
    e.QueueTimeoutError,
    e.TransportError,
    e.SessionClosedError,
    e.InvalidResponseError,
)


def proves_not_cancelled(error: BaseException | type[BaseException], *, same_token: bool) -> bool:
    """Whether ``error`` proves that no attempt of the cancel it answers cancelled the item.

    Args:
        error: the error (or its class) the cancel ended with.
        same_token: the attempts in doubt used the same token as the one answered (the retries of one call);
            False for an attempt of an earlier run, whose token may have differed.
    """
    cls = error if isinstance(error, type) else type(error)
    proofs = _ALWAYS + _SAME_TOKEN if same_token else _ALWAYS
    return issubclass(cls, proofs)


def ends_batch(error: BaseException) -> bool:
    """Whether ``error`` stops a batch at once: a refused token, a disabled account, or a setting that cannot
    work (a Redis limiter that refuses its credentials, ...: every further pair would meet it too)."""
    return isinstance(error, FATAL) or is_setup_error(error)


def is_setup_error(error: BaseException | None) -> bool:
    """A [`ConfigurationError`][assetpay_async.ConfigurationError] met by a call (not a bad ref of one pair):
    the limiter's store or the session's settings cannot work; nothing was sent for it."""
    return isinstance(error, e.ConfigurationError) and not isinstance(error, e.InvalidRequestError)


class JournalAction(enum.Enum):
    """What a batch journal does with a pair after an error."""

    KEEP = "keep"
    """Leave the pair possibly sent: an attempt may have been accepted."""
    OPEN = "open"
    """Forget it: nothing happened, the next run sends it again."""
    FAILED = "failed"
    """Record the refusal as the pair's decision."""


def journal_action(error: BaseException, *, sent_before: bool) -> JournalAction:
    """What the journal records for a pair whose cancel ended with ``error``.

    Args:
        error: the error of this run's cancel.
        sent_before: an earlier run (or a whole-trade cancel) may have sent the pair already.
    """
    if isinstance(error, e.AssetPayError) and error.ambiguous:
        return JournalAction.KEEP
    if sent_before:
        if not isinstance(error, e.APIError) or not proves_not_cancelled(error, same_token=False):
            return JournalAction.KEEP  # the earlier attempt may have been accepted
        return (
            JournalAction.OPEN if isinstance(error, e.CancelTooSoonError) else JournalAction.FAILED
        )
    if isinstance(error, e.APIError) and not isinstance(error, _TRANSIENT_API):
        return JournalAction.FAILED if error.http_status < 500 else JournalAction.KEEP
    if isinstance(error, _NOTHING_HAPPENED):
        return JournalAction.OPEN
    return JournalAction.KEEP  # a 5xx, a bug: it stays possibly sent
