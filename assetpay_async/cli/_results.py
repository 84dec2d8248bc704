"""``cancel-batch --results``: every pair's row on disk the moment the pair ends, and FILE whole at the end.

While the batch runs, rows go to ``FILE.partial``, one JSON line each, flushed as each pair ends, after a header
line (``{"assetpay_results": 1, ...}``); an existing ``FILE.partial`` (left by a run stopped at once) is appended
to, never truncated. When the run ends, normally or after a first Ctrl-C, FILE is written whole, one row per
pair in input order, and renamed into place (an existing FILE is replaced only then, never truncated mid-run),
and the ``.partial`` file is removed. With ``--results -`` rows go to stdout as each pair ends.
`Tally` counts what was written: the progress line, the first-signal message and the summary all read it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

import attrs

from assetpay_async._batch import CancelBatch, CancelOutcome, OutcomeKind

from ._batch_file import BatchLine
from ._per_user import PerUserBatch
from ._render import write_json_line
from ._report import outcome_json, unlisted_json

__all__ = ["ResultsError", "ResultsWriter", "Tally", "open_results", "partial_path"]

FORMAT_VERSION: Final = 1


class ResultsError(ValueError):
    """The results file cannot be written; nothing was sent."""


def partial_path(name: str) -> Path:
    """Where rows go while the batch runs."""
    return Path(f"{name}.partial")


def open_results(name: str | None) -> IO[str] | None:
    """The stream rows go to as pairs end: None without ``--results``, stdout for ``-``, else FILE.partial."""
    if name is None:
        return None
    if name == "-":
        return sys.stdout
    try:
        return partial_path(name).open("a", encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"cannot write {name}: {exc.strerror or exc}") from None


@attrs.define
class Tally:
    """Pairs by outcome so far, duplicates counted once (as the summary counts them)."""

    total: int
    clock: Callable[[], float] = time.monotonic
    accepted: int = 0
    failed: int = 0
    unknown: int = 0
    not_attempted: int = 0
    started: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.started = self.clock()

    def rate(self) -> float:
        """Pairs answered per second since the start (pairs never sent do not count).

        Over at least one second: a batch that fails at once does not report thousands a second.
        """
        return self.answered / max(self.clock() - self.started, 1.0)

    @property
    def answered(self) -> int:
        """Pairs that were sent and ended (accepted, failed or unknown)."""
        return self.accepted + self.failed + self.unknown

    def add(self, outcome: CancelOutcome) -> None:
        if outcome.duplicate_of is not None:
            return
        if outcome.kind is OutcomeKind.CANCELLED:
            self.accepted += 1
        elif outcome.kind is OutcomeKind.FAILED:
            self.failed += 1
        elif outcome.kind is OutcomeKind.UNKNOWN:
            self.unknown += 1
        else:
            self.not_attempted += 1

    def line(self) -> str:
        """``12/100 pairs: 10 accepted, 1 failed, 1 unknown, 0.9/s, ETA 1m38s`` (plain text)."""
        rate = self.rate()
        left = self.total - self.answered - self.not_attempted
        eta = _duration(left / rate) if rate > 0 and left > 0 else ("0s" if left == 0 else "?")
        text = (
            f"{self.answered}/{self.total} pairs: {self.accepted} accepted, {self.failed} failed, "
            f"{self.unknown} unknown"
        )
        if self.not_attempted:
            text += f", {self.not_attempted} not attempted"
        return f"{text}, {rate:.1f}/s, ETA {eta}"


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ResultsWriter:
    """Writes each pair's row as it ends (and its duplicates' rows with it); counts them in `tally`.

    Args:
        batch: the running batch.
        lines: the batch file's pairs, in input order.
        results: ``--results`` (None, ``-`` or FILE).
        source: the batch file's name (for the header).
        clock: the event loop's clock (rates and ETA on virtual time too).
    """

    def __init__(
        self,
        batch: CancelBatch | PerUserBatch,
        lines: list[BatchLine],
        results: str | None,
        source: str,
        clock: Callable[[], float],
    ) -> None:
        self._batch = batch
        self._lines = lines
        self._results = results
        self._stream = open_results(results)
        first: dict[tuple[str, str], int] = {}
        self._copies: dict[int, list[int]] = {}
        for index, line in enumerate(lines):
            key = (line.trade_id, line.item_id)
            if key in first:
                self._copies[first[key]].append(index)
            else:
                first[key] = index
                self._copies[index] = []
        self._pending = list(self._copies)
        self.rows = 0
        self.tally = Tally(total=len(self._copies), clock=clock)
        if self._stream is not None and self._stream is not sys.stdout:
            header = {"assetpay_results": FORMAT_VERSION, "source": source, "pairs": len(lines)}
            write_json_line(self._stream, header)

    @property
    def where(self) -> str | None:
        """The file holding the rows written so far (None for stdout or no ``--results``)."""
        if self._results is None or self._results == "-":
            return None
        return str(partial_path(self._results))

    def _decided(self, index: int) -> CancelOutcome | None:
        return self._batch.decided(index)

    def poll(self) -> None:
        """Write the rows of every pair that ended since the last call."""
        still = []
        for index in self._pending:
            outcome = self._decided(index)
            if outcome is None:
                still.append(index)
            else:
                self._write(outcome)
        self._pending = still

    def finish(self) -> None:
        """After the run (or a first interrupt): the rows left, then FILE whole, in input order, renamed in."""
        self.poll()
        outcomes = self._batch.outcomes
        for index in self._pending:
            self._write(outcomes[index])
        self._pending = []
        unlisted = [unlisted_json(result) for result in self._batch.unlisted]
        if self._stream is not None:
            for row in unlisted:
                write_json_line(self._stream, row)
        if self.where is None or self._results is None:
            return
        final = Path(self._results)
        temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        with temporary.open("w", encoding="utf-8") as out:
            for outcome in outcomes:
                write_json_line(out, outcome_json(outcome, line=self._lines[outcome.index].line))
            for row in unlisted:
                write_json_line(out, row)
            os.fsync(out.fileno())
        temporary.replace(final)
        self.close()
        partial_path(self._results).unlink(missing_ok=True)

    def _write(self, outcome: CancelOutcome) -> None:
        self.tally.add(outcome)
        if self._stream is None:
            return
        copies = [
            attrs.evolve(
                outcome,
                index=copy,
                trade_id=self._lines[copy].trade_id,
                item_id=self._lines[copy].item_id,
                duplicate_of=outcome.index,
            )
            for copy in self._copies[outcome.index]
        ]
        for row in (outcome, *copies):
            write_json_line(self._stream, outcome_json(row, line=self._lines[row.index].line))
            self.rows += 1

    def close(self) -> None:
        if self._stream is not None and self._stream is not sys.stdout and not self._stream.closed:
            self._stream.close()

    def sync(self) -> None:
        """Flush to the file system (before a hard exit)."""
        if self._stream is not None and not self._stream.closed:
            self._stream.flush()
            if self._stream is not sys.stdout:
                os.fsync(self._stream.fileno())
