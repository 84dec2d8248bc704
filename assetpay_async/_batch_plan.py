"""Planning a batch, with no I/O: dedupe, grouping by trade, the whole-trade plan, rows and reads to outcomes."""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from . import _journal as journal
from . import _protocol as proto
from ._batch_types import CancelOutcome, OutcomeDetail, OutcomeKind, outcome_of
from ._errors import APIError, InvalidRequestError
from ._models import (
    CancelResult,
    CancelStatus,
    Trade,
    TradeCancelItem,
    TradeCancelResult,
    TradeItem,
    TradeStatus,
)
from ._refs import names

__all__ = [
    "CANCEL_AGE",
    "Job",
    "PairPlan",
    "TradeJob",
    "delay_for",
    "from_journal",
    "grouped",
    "plan_pairs",
    "plan_whole_trade",
    "row_error",
    "row_result",
    "settle_by_read",
    "unlisted_rows",
]

CANCEL_AGE: Final = dt.timedelta(minutes=30)
"""AssetPay refuses to cancel an item younger than this (measured from the trade's ``createdAt``)."""

Job = tuple[int, proto.Call[CancelResult]]
"""One pair to cancel on its own: its index and its cancel request."""


@attrs.frozen
class TradeJob:
    """Two or more pairs of one trade ref, which may go as one whole-trade cancel (``whole_trades``)."""

    trade_id: object
    members: tuple[Job, ...]


def is_open(item: TradeItem) -> bool:
    """Whether a whole-trade cancel would try ``item`` (an unknown or missing status counts as open)."""
    return item.status is None or not item.status.terminal


def plan_whole_trade(
    trade: Trade, members: Iterable[tuple[Job, object]]
) -> tuple[list[tuple[Job, TradeItem]], list[Job]]:
    """Split a trade's requested pairs into those one whole-trade cancel covers and those sent one by one.

    The whole-trade cancel tries every item of the trade not in a final status, so it is planned only when
    the requested pairs name every one of those items (at least two): it must never cancel an item nobody
    asked for. Requested items that are final, or not in the trade at all, go one by one (they get their own
    answer). Without a plan, every pair goes one by one.
    """
    covered: list[tuple[Job, TradeItem]] = []
    alone: list[Job] = []
    for job, item_id in members:
        item = trade.item(proto.parse_id(item_id, "item_id"))
        if item is not None and is_open(item):
            covered.append((job, item))
        else:
            alone.append(job)
    open_ids = {item.id for item in trade.items if is_open(item)}
    asked = {item.id for _, item in covered}
    if str(trade.type) != "withdraw" or len(open_ids) < 2 or not open_ids <= asked:
        return [], [job for job, _ in members]
    return covered, alone


def row_error(row: TradeCancelItem, result: TradeCancelResult) -> APIError:
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


def row_result(row: TradeCancelItem, result: TradeCancelResult) -> CancelResult:
    return CancelResult(
        trade_id=result.trade_id,
        item_id=row.item_id,
        status=row.status,
        external_id=row.external_id,
        request_id=result.request_id,
    )


@attrs.define
class PairPlan:
    """The pairs of a batch, checked and deduplicated, before anything is sent.

    Attributes:
        queue: the distinct valid pairs, in input order, each with its cancel request.
        invalid: the outcomes of pairs refused before sending (bad refs).
        dup_of: for a repeated pair, the index of its first occurrence.
        dups: for a first occurrence, the indices repeating it.
        path_of: each distinct pair's request path (its key in the journal).
    """

    queue: deque[Job] = attrs.field(factory=deque)
    invalid: list[CancelOutcome] = attrs.field(factory=list)
    dup_of: dict[int, int] = attrs.field(factory=dict)
    dups: dict[int, list[int]] = attrs.field(factory=dict)
    path_of: dict[int, str] = attrs.field(factory=dict)


def plan_pairs(pairs: Sequence[tuple[object, object]]) -> PairPlan:
    """Check every pair's refs and keep the first of each distinct pair (by its canonical request path)."""
    plan = PairPlan()
    first_of: dict[str, int] = {}
    for index, (trade_id, item_id) in enumerate(pairs):
        try:
            call = proto.cancel_item_call(trade_id, item_id)
        except InvalidRequestError as exc:
            plan.invalid.append(outcome_of(index, trade_id, item_id, exc, 0))
            continue
        key = call.spec.path
        if key in first_of:
            plan.dup_of[index] = first_of[key]
            plan.dups.setdefault(first_of[key], []).append(index)
            continue
        first_of[key] = index
        plan.path_of[index] = key
        plan.queue.append((index, call))
    return plan


def grouped(queue: Iterable[Job], pairs: Sequence[tuple[object, object]]) -> deque[Job | TradeJob]:
    """The pairs in input order, those of a trade ref with two or more pairs as one job at its first pair."""
    by_trade: dict[str, list[Job]] = {}
    for job in queue:
        trade_id, _ = pairs[job[0]]
        by_trade.setdefault(proto.canonical_id(trade_id, "trade_id"), []).append(job)
    jobs: deque[Job | TradeJob] = deque()
    for members in by_trade.values():
        if len(members) == 1:
            jobs.append(members[0])
        else:
            jobs.append(TradeJob(pairs[members[0][0]][0], tuple(members)))
    return jobs  # in input order: a dict keeps the order of first appearance


def unlisted_rows(result: TradeCancelResult, listed: Iterable[str]) -> list[CancelResult]:
    """The rows of a whole-trade cancel naming an item that none of ``listed`` (AssetPay's item ids) is.

    A row counts unless it says ``failed``: an unknown status may have cancelled the item too.
    """
    ids = list(listed)
    return [
        row_result(row, result)
        for row in result.items
        if row.status is not CancelStatus.FAILED
        and not any(names(i, row.item_id, None) for i in ids)
    ]


def delay_for(trade: Trade, now: dt.datetime, max_wait: float) -> float | None:
    """Seconds until ``trade`` is old enough to cancel, or None when that cannot be known or is too far."""
    # A small margin covers clock skew between us and AssetPay; a second TOO_SOON just reschedules again.
    delay = (trade.created_at + CANCEL_AGE - now).total_seconds() + 2.0
    delay = max(delay, 1.0)
    return delay if delay <= max_wait else None


def settle_by_read(trade: Trade, item_ref: object) -> CancelResult | bool | None:
    """What a read of the trade says about an item whose cancel is in doubt (likely cancelled).

    Returns:
        A ``CancelResult`` when the item is ``reverted`` (what an accepted cancel ends in; the refund is due
        either way); False when it ended otherwise (delivered, failed: nothing to refund); None when the
        read cannot tell (still open, or not in the trade).
    """
    item = trade.item(proto.parse_id(item_ref, "item_id"))
    if item is None or item.status is None or not item.status.terminal:
        return None
    if item.status is TradeStatus.REVERTED:
        return CancelResult(
            trade_id=trade.id,
            item_id=item.id,
            status=CancelStatus.CANCELLED,
            external_id=item.external_id,
        )
    return False


def from_journal(
    index: int, pair: tuple[object, object], state: journal.PairState, record: Mapping[str, Any]
) -> CancelOutcome:
    """The outcome an earlier run decided for pair ``index``, rebuilt from its journal record."""
    if state is journal.PairState.CANCELLED:
        return CancelOutcome(
            index,
            *pair,
            OutcomeKind.CANCELLED,
            result=journal.result_from_record(record),
            detail=OutcomeDetail.FROM_JOURNAL,
        )
    return CancelOutcome(
        index,
        *pair,
        OutcomeKind.FAILED,
        error=journal.error_from_record(record),
        detail=OutcomeDetail.FROM_JOURNAL,
    )
