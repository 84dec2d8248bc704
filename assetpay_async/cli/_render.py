"""Everything the command line draws with rich: the batch progress bar and the summary tables."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import IO, Any, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from assetpay_async._batch import BatchProgress, OutcomeKind

from ._report import OutcomeCount

__all__ = ["BatchProgressBar", "console", "key_value_table", "outcome_table", "write_json_line"]

_KIND_STYLE = {
    OutcomeKind.CANCELLED: "green",
    OutcomeKind.FAILED: "red",
    OutcomeKind.UNKNOWN: "yellow",
    OutcomeKind.NOT_ATTEMPTED: "dim",
}


def console(*, stderr: bool = False) -> Console:
    """A console on the current ``sys.stdout`` (or ``sys.stderr``); plain text when not a terminal."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def write_json_line(stream: IO[str], value: Any) -> None:
    """One JSON document on one line (not through rich: no wrapping, no markup)."""
    stream.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
    stream.flush()


class BatchProgressBar:
    """A rich progress bar fed by [`BatchProgress`][assetpay_async.BatchProgress].

    It shows done/total, failures, rate, time left and 429s.

    Args:
        out: where to draw (a live bar on a terminal, the final line only otherwise).
        total: pairs in the batch.
        get_time: the clock of the event loop (so time left is right on a virtual-time loop too).
        description: the label in front of the bar.
        failure_label: what the failure count is called (the demo's refusals are expected ones).
    """

    def __init__(
        self,
        out: Console,
        total: int,
        *,
        get_time: Callable[[], float],
        description: str = "cancelling",
        failure_label: str = "failed",
    ) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(f"[red]{{task.fields[failures]}} {failure_label}"),
            TextColumn("{task.fields[rate]:5.1f}/s"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            TextColumn("429s: {task.fields[rate_limited]}"),
            console=out,
            get_time=get_time,
        )
        self._task: TaskID = self._progress.add_task(
            description, total=total, failures=0, rate=0.0, rate_limited=0
        )
        self.last: BatchProgress | None = None

    def update(self, progress: BatchProgress) -> None:
        """The batch's ``on_progress`` callback."""
        self.last = progress
        self._progress.update(
            self._task,
            completed=progress.done,
            failures=progress.failures,
            rate=progress.rate,
            rate_limited=progress.rate_limited,
        )

    def show(self, done: int, failures: int, rate: float, rate_limited: int) -> None:
        """Draw counts the caller keeps (``cancel-batch``: the same tally as its summary)."""
        self._progress.update(
            self._task, completed=done, failures=failures, rate=rate, rate_limited=rate_limited
        )

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()


def outcome_table(counts: Iterable[OutcomeCount], *, title: str) -> Table:
    """The summary by outcome: kind, reason (error key), count."""
    table = Table(title=title, title_justify="left")
    table.add_column("outcome", no_wrap=True)
    table.add_column("reason", no_wrap=True)
    table.add_column("items", justify="right", no_wrap=True)
    for row in counts:
        style = _KIND_STYLE.get(row.kind, "")
        table.add_row(f"[{style}]{row.kind.value}[/]", row.reason or "-", str(row.count))
    return table


def key_value_table(rows: Sequence[tuple[str, str]], *, title: str) -> Table:
    """A two-column table of labelled values."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value", no_wrap=True)
    for label, value in rows:
        table.add_row(label, value)
    return table
