"""Pure views of results for the command line: one-line descriptions, JSON objects, counts by outcome.

No rich and no I/O here: `._render` draws these, the tests read them directly.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, Final

import attrs

from assetpay_async._batch import CancelOutcome, OutcomeDetail, OutcomeKind
from assetpay_async._errors import (
    APIError,
    AssetPayError,
    InvalidResponseError,
    QueueTimeoutError,
    TransportError,
)
from assetpay_async._models import CancelResult

__all__ = [
    "OutcomeCount",
    "count_outcomes",
    "describe_error",
    "describe_result",
    "error_json",
    "outcome_json",
    "result_json",
    "unlisted_json",
]

_KIND_ORDER = {kind: rank for rank, kind in enumerate(OutcomeKind)}


def describe_result(result: CancelResult) -> str:
    """One line for an accepted cancel."""
    return (
        f"cancelled: item {result.item_id} of trade {result.trade_id} "
        f"(request id {result.request_id}); it turns 'reverted' later: refund the user then"
    )


# The SDK's advice names its Python API; on the command line the same setting is a flag.
_CLI_WORDS: Final = (
    (
        "pass merchant_id= to AssetPaySession",
        "pass --merchant-id ID (or set $ASSETPAY_MERCHANT_ID)",
    ),
)


def cli_words(text: str) -> str:
    """``text`` with the SDK's Python-level advice replaced by the command line's flags."""
    for sdk, cli in _CLI_WORDS:
        text = text.replace(sdk, cli)
    return text


def describe_error(exc: BaseException) -> str:
    """One line for a failed call: the error class, then what AssetPay or the network said."""
    unknown = isinstance(exc, AssetPayError) and exc.ambiguous
    prefix = "outcome unknown" if unknown else "failed"
    if isinstance(exc, APIError):
        # str() carries key, code, HTTP status, message, request id and the ambiguity note.
        return cli_words(f"{prefix}: {type(exc).__name__} {exc}")
    text = " ".join(str(exc).split()) or "(no message)"
    return cli_words(f"{prefix}: {type(exc).__name__}: {text}")


def result_json(result: CancelResult) -> dict[str, Any]:
    """A JSON-ready object for an accepted cancel."""
    return {
        "trade_id": str(result.trade_id),
        "item_id": str(result.item_id),
        "status": result.status.value,
        "external_id": result.external_id,
        "request_id": result.request_id,
    }


def error_json(exc: BaseException) -> dict[str, Any]:
    """A JSON-ready object for an error: its class and every field a program may branch on."""
    body: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": exc.message if isinstance(exc, APIError) else str(exc),
        "ambiguous": isinstance(exc, AssetPayError) and exc.ambiguous,
    }
    if isinstance(exc, APIError):
        body |= {
            "key": exc.key,
            "code": exc.code,
            "http_status": exc.http_status,
            "request_id": exc.request_id,
        }
    elif isinstance(exc, InvalidResponseError):
        body |= {"http_status": exc.http_status, "request_id": exc.request_id}
    elif isinstance(exc, TransportError):
        body |= {"request_id": exc.request_id}
    elif isinstance(exc, QueueTimeoutError):
        body |= {"waited": exc.waited}
    return body


def outcome_json(outcome: CancelOutcome, *, line: int | None = None) -> dict[str, Any]:
    """One JSON line of ``--results``: the pair (and its line in the batch file), how it ended, the result or error."""
    return {
        "index": outcome.index,
        "line": line,
        "trade_id": str(outcome.trade_id),
        "item_id": str(outcome.item_id),
        "outcome": outcome.kind.value,
        "result": None if outcome.result is None else result_json(outcome.result),
        "error": None if outcome.error is None else error_json(outcome.error),
        "duplicate_of": outcome.duplicate_of,
        "reschedules": outcome.reschedules,
        "detail": None if outcome.detail is None else outcome.detail.value,
    }


def unlisted_json(result: CancelResult) -> dict[str, Any]:
    """The ``--results`` row of an item a whole-trade cancel cancelled that no line listed: the keys of a
    pair's row, ``line`` and ``index`` null, ``detail`` ``"unlisted"`` (refund that user too)."""
    return {
        "index": None,
        "line": None,
        "trade_id": str(result.trade_id),
        "item_id": str(result.item_id),
        "outcome": OutcomeKind.CANCELLED.value,
        "result": result_json(result),
        "error": None,
        "duplicate_of": None,
        "reschedules": 0,
        "detail": "unlisted",
    }


@attrs.frozen
class OutcomeCount:
    """How many pairs ended one way: the kind and, for failures, the error key (or class)."""

    kind: OutcomeKind
    reason: str
    count: int


def _reason(outcome: CancelOutcome) -> str:
    error = outcome.error
    if outcome.detail is OutcomeDetail.BATCH_STOPPED:
        return "batch stopped"
    if error is None:
        base = ""
    elif isinstance(error, APIError) and error.key:
        base = error.key
    else:
        base = type(error).__name__
    if outcome.detail is OutcomeDetail.LIKELY_CANCELLED:
        return f"likely cancelled ({base})"
    if outcome.detail is OutcomeDetail.FROM_JOURNAL:
        return f"{base}, earlier run" if base else "earlier run"
    if outcome.detail is OutcomeDetail.CONFIRMED_BY_READ:
        return f"{base}, confirmed by a read" if base else "confirmed by a read"
    if outcome.detail is OutcomeDetail.UNLISTED_CANCELLED:
        return "whole trade, unlisted items too"
    return base


def count_outcomes(outcomes: Iterable[CancelOutcome]) -> list[OutcomeCount]:
    """Counts by (kind, reason), cancelled first, then failed, unknown, not attempted; most frequent first.

    A duplicated pair is counted once: its copies (``duplicate_of`` set) share the first one's outcome.
    """
    counts = Counter((o.kind, _reason(o)) for o in outcomes if o.duplicate_of is None)
    ordered = sorted(counts.items(), key=lambda kv: (_KIND_ORDER[kv[0][0]], -kv[1], kv[0][1]))
    return [OutcomeCount(kind, reason, n) for (kind, reason), n in ordered]


class _NotABatch(logging.Filter):
    """Drops the batch's "stopping the batch" warning: the command says why it stopped in its own words."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("stopping the batch")


@contextlib.contextmanager
def quiet_batch_stop() -> Iterator[None]:
    quiet = _NotABatch()
    logger = logging.getLogger("assetpay_async._batch")
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
