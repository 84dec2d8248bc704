"""``cancel-batch`` in merchant mode: the file's pairs grouped by end user, one batch per user, one session.

Each user's client comes from ``session.client_for(steam_id, trade_url)`` (its token minted with the API
secret, or issued by ``/auth/authenticate-client``); every batch shares the merchant's limiter, so the users
together stay within the quota. The outcomes come back in the file's order, as one batch's would.

With ``--journal PATH`` each user's batch has a journal of its own, derived from PATH (`journal_path`): the
pairs of the command's own client (lines without a user) in PATH itself, each user's in
``PATH.user-<16 hex digits>`` (a hash of the Steam id and trade URL: neither shows in the file name). The
file's grouping is deterministic, so the same command finds the same journals. Every journal is opened (and
checked: pairs, merchant, endpoint, lock) before any user's batch starts, so a journal that does not fit stops
the command with nothing sent.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence

import attrs

from assetpay_async import _protocol as proto
from assetpay_async._batch import (
    BatchProgress,
    BatchStoppedError,
    CancelBatch,
    CancelOutcome,
    OutcomeKind,
)
from assetpay_async._client import AssetPayClient
from assetpay_async._journal import Journal, JournalError, pairs_digest
from assetpay_async._models import CancelResult

from ._batch_file import BatchLine

__all__ = ["PerUserBatch", "journal_path"]


def journal_path(base: str, steam_id: str | None, trade_url: str | None) -> str:
    """The journal of one user's pairs: ``base`` for the command's own client, else
    ``base.user-<hash>`` (16 hex digits of SHA-256 over the Steam id and trade URL)."""
    if steam_id is None or trade_url is None:
        return base
    digest = hashlib.sha256(f"{steam_id}\n{trade_url}".encode()).hexdigest()[:16]
    return f"{base}.user-{digest}"


class PerUserBatch:
    """One [`CancelBatch`][assetpay_async.CancelBatch] per end user, seen as one batch.

    Args:
        lines: the batch file's pairs, each with its user (``steam_id``/``trade_url``), or None for the
            command's own client.
        client_for: the client of a user (None: the command's client).
        on_progress: called with the progress of every batch together.
        journal: the base path of the users' journals (see `journal_path`), or None.
        options: the options of each ``CancelBatch`` (workers, reschedule_too_soon, ...).
    """

    def __init__(
        self,
        lines: Sequence[BatchLine],
        client_for: Callable[[str | None, str | None], AssetPayClient],
        on_progress: Callable[[BatchProgress], None],
        *,
        journal: str | None = None,
        **options: object,
    ) -> None:
        self._lines = lines
        self._journals: list[tuple[str, AssetPayClient, list[str]]] = []
        self._refused: dict[int, JournalError] = {}
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
            client = client_for(steam_id, trade_url)
            pairs = [(lines[i].trade_id, lines[i].item_id) for i in indexes]
            path = None if journal is None else journal_path(journal, steam_id, trade_url)
            if path is not None:
                self._journals.append(
                    (path, client, [proto.cancel_request(*p).path for p in pairs])
                )
            batch = CancelBatch(
                client,
                pairs,
                on_progress=self._progress_of(number),
                journal=path,
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

    def _check_journals(self) -> None:
        """Open and close every user's journal: one that does not fit raises here, with nothing sent."""
        for path, client, paths in self._journals:
            Journal.open(
                path,
                merchant_id=client.merchant_id,
                endpoint=client.session.base_url,
                digest=pairs_digest(paths),
                pairs=len(set(paths)),
            ).close()

    async def run(self) -> list[CancelOutcome]:
        """Run every user's batch at once; the outcomes in the file's order.

        Raises:
            JournalError: a user's journal does not fit (checked for every user before anything is sent).
        """
        self._check_journals()
        runs = await asyncio.gather(
            *(batch.run() for batch, _ in self._parts), return_exceptions=True
        )
        for (batch, _), outcome in zip(self._parts, runs, strict=True):
            if isinstance(outcome, JournalError):
                # Taken by another run since the check: this user's batch sent nothing.
                self._refused[id(batch)] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
        return self.outcomes

    def _not_sent(self, index: int, error: JournalError) -> CancelOutcome:
        line = self._lines[index]
        return CancelOutcome(
            index, line.trade_id, line.item_id, kind=OutcomeKind.NOT_ATTEMPTED, error=error
        )

    @property
    def outcomes(self) -> list[CancelOutcome]:
        """Every outcome so far, indexed by the file's pairs (as one batch's would be)."""
        merged: list[CancelOutcome | None] = [None] * self._total
        for batch, indexes in self._parts:
            refused = self._refused.get(id(batch))
            if refused is not None:
                for index in indexes:
                    merged[index] = self._not_sent(index, refused)
                continue
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
        refused = self._refused.get(id(batch))
        if refused is not None:
            return self._not_sent(index, refused)
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
