"""``cancel-batch`` in merchant mode: the file's pairs grouped by end user, one batch per user, one session.

Each user's client comes from ``session.client_for(steam_id, trade_url)`` (its token minted with the API
secret, or issued by ``/auth/authenticate-client``); every batch shares the merchant's limiter, so the users
together stay within the quota. The outcomes come back in the file's order, as one batch's would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import attrs

from assetpay_async._batch import BatchProgress, BatchStoppedError, CancelBatch, CancelOutcome
from assetpay_async._client import AssetPayClient
from assetpay_async._models import CancelResult

from ._batch_file import BatchLine

__all__ = ["PerUserBatch"]


class PerUserBatch:
    """One [`CancelBatch`][assetpay_async.CancelBatch] per end user, seen as one batch.

    Args:
        lines: the batch file's pairs, each with its user (``steam_id``/``trade_url``), or None for the
            command's own client.
        client_for: the client of a user (None: the command's client).
        on_progress: called with the progress of every batch together.
        options: the options of each ``CancelBatch`` (workers, reschedule_too_soon, ...).
    """

    def __init__(
        self,
        lines: Sequence[BatchLine],
        client_for: Callable[[str | None, str | None], AssetPayClient],
        on_progress: Callable[[BatchProgress], None],
        **options: object,
    ) -> None:
        groups: dict[tuple[str | None, str | None], list[int]] = {}
        for index, line in enumerate(lines):
            groups.setdefault((line.steam_id, line.trade_url), []).append(index)
        self._on_progress = on_progress
        self._total = len(lines)
        self._latest: dict[int, BatchProgress] = {}
        self._parts: list[tuple[CancelBatch, list[int]]] = []
        self._indexes: dict[int, list[int]] = {}
        self._where: dict[int, tuple[CancelBatch, int]] = {}
        for number, ((steam_id, trade_url), indexes) in enumerate(groups.items()):
            batch = CancelBatch(
                client_for(steam_id, trade_url),
                [(lines[i].trade_id, lines[i].item_id) for i in indexes],
                on_progress=self._progress_of(number),
                **options,  # type: ignore[arg-type]
            )
            self._parts.append((batch, indexes))
            self._indexes[id(batch)] = indexes
            for local, index in enumerate(indexes):
                self._where[index] = (batch, local)

    def _progress_of(self, number: int) -> Callable[[BatchProgress], None]:
        def update(progress: BatchProgress) -> None:
            self._latest[number] = progress
            parts = self._latest.values()
            self._on_progress(
                BatchProgress(
                    done=sum(p.done for p in parts),
                    total=self._total,
                    failures=sum(p.failures for p in parts),
                    rate=sum(p.rate for p in parts),
                    rate_limited=max(p.rate_limited for p in parts),
                )
            )

        return update

    async def run(self) -> list[CancelOutcome]:
        """Run every user's batch at once; the outcomes in the file's order."""
        await asyncio.gather(*(batch.run() for batch, _ in self._parts))
        return self.outcomes

    @property
    def outcomes(self) -> list[CancelOutcome]:
        """Every outcome so far, indexed by the file's pairs (as one batch's would be)."""
        merged: list[CancelOutcome | None] = [None] * self._total
        for batch, indexes in self._parts:
            for outcome in batch.outcomes:
                duplicate = outcome.duplicate_of
                merged[indexes[outcome.index]] = attrs.evolve(
                    outcome,
                    index=indexes[outcome.index],
                    duplicate_of=None if duplicate is None else indexes[duplicate],
                )
        return [o for o in merged if o is not None]

    def decided(self, index: int) -> CancelOutcome | None:
        """Pair ``index`` of the file's final outcome, or None while it is queued or in flight."""
        batch, local = self._where[index]
        outcome = batch.decided(local)
        if outcome is None:
            return None
        indexes = self._indexes[id(batch)]
        duplicate = outcome.duplicate_of
        return attrs.evolve(
            outcome, index=index, duplicate_of=None if duplicate is None else indexes[duplicate]
        )

    @property
    def unlisted(self) -> list[CancelResult]:
        """Every user's batch's ``unlisted``: items a whole-trade cancel cancelled that no pair listed."""
        return [result for batch, _ in self._parts for result in batch.unlisted]

    @property
    def stopped(self) -> BatchStoppedError | None:
        """The first user's batch that stopped early (its ``stopped``), or None."""
        return next((b.stopped for b, _ in self._parts if b.stopped is not None), None)
