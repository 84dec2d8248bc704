"""The whole-trade route of a batch (``whole_trades=True``): one read, one cancel, one outcome per row.

Mixed into [`CancelBatch`][assetpay_async.CancelBatch]'s runner. What keeps it from cancelling an item nobody
listed: the plan (``_batch_plan.plan_whole_trade``) sends a whole-trade cancel only when the pairs name every
open item of the trade that was read; the cancel names that trade by AssetPay's id from the read (never by
the pair's ref, which may be one trade's id and another's externalId); and an answer naming an item that
was not listed (it joined after the read) is logged and reported in ``CancelBatch.unlisted``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from . import _journal as journal
from . import _protocol as proto
from ._batch_plan import Job, TradeJob, plan_whole_trade, row_error, row_result, unlisted_rows
from ._batch_types import CancelOutcome, OutcomeDetail, OutcomeKind
from ._errors import CancelTooSoonError, InvalidResponseError
from ._models import CancelStatus, Trade, TradeCancelResult, TradeItem

if TYPE_CHECKING:
    from ._batch_ledger import PairLedger
    from ._interfaces import BatchCaller

__all__ = ["WholeTrades"]

logger = logging.getLogger("assetpay_async._batch")

_Covered = list[tuple[Job, TradeItem]]


class WholeTrades:
    """The whole-trade part of the batch runner (the runner provides the attributes declared here)."""

    _client: BatchCaller
    _ledger: PairLedger
    _pairs: list[tuple[object, object]]
    _reschedule: bool
    _wait_first: dict[int, tuple[float, int]]
    _current: dict[asyncio.Task[None], int]
    _lost_in_a_row: int

    async def _finish(self, outcome: CancelOutcome) -> None:
        raise NotImplementedError

    async def _failed(self, index: int, exc: BaseException, reschedules: int) -> None:
        raise NotImplementedError

    async def _not_sent(self, indices: list[int], exc: journal.JournalError) -> None:
        raise NotImplementedError

    def _delay_for(self, trade: Trade) -> float | None:
        raise NotImplementedError

    async def _cancel_trade(self, job: TradeJob) -> list[Job]:
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
        covered, alone = plan_whole_trade(trade, [(m, self._pairs[m[0]][1]) for m in members])
        if not covered:
            return members
        indices = [index for (index, _), _ in covered]
        me = asyncio.current_task()
        if me is not None:
            # A stop leaves the task alone once this pair (and so every covered pair) is on the wire.
            self._current[me] = indices[0]
        try:
            # AssetPay's id of the trade that was read, never the pair's ref: the plan was made on it.
            result = await self._client._send(
                proto.cancel_trade_call(trade.id), on_send=lambda: self._ledger.on_send_all(indices)
            )
        except asyncio.CancelledError:
            raise
        except journal.JournalError as exc:  # raised by on_send_all: nothing was sent
            await self._not_sent(indices, exc)
            return alone
        except (
            CancelTooSoonError
        ) as exc:  # the whole trade is too young: a TOO_SOON row for each pair
            self._lost_in_a_row = 0
            return alone + await self._too_soon_in_trade(trade, indices, exc)
        except Exception as exc:  # every pair of the request shares its error
            for index in indices:
                await self._failed(index, exc, 0)
            return alone
        self._lost_in_a_row = 0
        extra = self._report_unlisted(covered, result)
        return alone + await self._apply_rows(trade, covered, result, extra=extra)

    def _report_unlisted(self, covered: _Covered, result: TradeCancelResult) -> bool:
        """Log and keep the items the answer names that no pair listed (their users need a refund too);
        True if there are any."""
        unlisted = unlisted_rows(result, [item.id for _, item in covered])
        for row in unlisted:
            logger.warning(
                "the whole-trade cancel of trade %s also cancelled item %s, which no pair listed (it "
                "joined after the read, or the read was stale): refund that user too",
                row.trade_id,
                row.item_id,
            )
        self._ledger.add_unlisted(unlisted)
        return bool(unlisted)

    async def _apply_rows(
        self, trade: Trade, covered: _Covered, result: TradeCancelResult, *, extra: bool
    ) -> list[Job]:
        """Give each covered pair the outcome of its row; return the pairs to send again on their own."""
        ledger = self._ledger
        again: list[Job] = []
        for (index, spec), item in covered:
            ledger.in_flight.discard(index)
            row = result.item(item.id) or result.item(
                proto.parse_id(self._pairs[index][1], "item_id")
            )
            if row is None:  # not tried: sent again on its own, as possibly sent already
                ledger.sent_before.add(index)
                again.append((index, spec))
            elif row.cancelled:
                cancelled = row_result(row, result)
                ledger.record_cancelled(index, cancelled)
                detail = OutcomeDetail.UNLISTED_CANCELLED if extra else None
                outcome = CancelOutcome(
                    index,
                    *self._pairs[index],
                    OutcomeKind.CANCELLED,
                    result=cancelled,
                    detail=detail,
                )
                await self._finish(outcome)
            elif row.status is CancelStatus.FAILED:
                error = row_error(row, result)
                if isinstance(error, CancelTooSoonError):
                    again += await self._too_soon_in_trade(trade, [index], error)
                    continue
                await self._failed(index, error, 0)
            else:  # a row status this SDK does not know: it may have been cancelled
                await self._finish(self._unknown_row(index, str(row.status), row.item_id, result))
        return again

    def _unknown_row(
        self, index: int, status: str, item_id: str, result: TradeCancelResult
    ) -> CancelOutcome:
        unknown = InvalidResponseError(
            f"the whole-trade cancel answered status {status!r} for item {item_id!r}",
            http_status=200,
            content_type=None,
            snippet="",
            request_id=result.request_id,
        )
        unknown.ambiguous = True
        return self._ledger.failure(index, unknown, 0)

    async def _too_soon_in_trade(
        self, trade: Trade, indices: list[int], error: CancelTooSoonError
    ) -> list[Job]:
        """Pairs a whole-trade cancel found too young: FAILED, or (``reschedule_too_soon``) given back to
        be cancelled one by one once the trade read moments ago says they are old enough."""
        delay = self._delay_for(trade) if self._reschedule else None
        again: list[Job] = []
        for index in indices:
            self._ledger.in_flight.discard(index)
            self._ledger.record_error(index, error)
            if delay is None:
                await self._finish(self._ledger.failure(index, error, 0))
            else:
                self._wait_first[index] = (delay, 1)
                again.append((index, proto.cancel_item_call(*self._pairs[index])))
        return again
