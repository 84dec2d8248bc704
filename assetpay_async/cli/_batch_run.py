"""``assetpay cancel-batch``: a file of pairs, paced to the quota, each row written as its pair ends.

What is written when (``docs/cli.md``, "Output and signals"): the results header before the first request; a
row, flushed, as each pair ends; on a terminal a live bar, otherwise one plain progress line on stderr every
``--progress-interval`` seconds; the summary at the end. The first SIGINT or SIGTERM says what was accepted so
far and stops cleanly (in-flight requests abandoned, every pair's row written, summary, exit 130); a second one
exits at once (130), keeping every row already written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console

from assetpay_async._batch import CancelBatch, CancelOutcome, OutcomeDetail, OutcomeKind
from assetpay_async._cancel_rules import is_setup_error
from assetpay_async._client import AssetPayClient
from assetpay_async._errors import InvalidRequestError, SessionClosedError
from assetpay_async._journal import JournalError
from assetpay_async._quota import RouteGroup
from assetpay_async._session import AssetPaySession

from ._batch_file import BatchFileError, BatchLine, parse_batch
from ._exit import ExitCode
from ._per_user import PerUserBatch
from ._render import BatchProgressBar, console, outcome_table
from ._report import count_outcomes, describe_error, quiet_batch_stop
from ._results import ResultsError, ResultsWriter, Tally
from ._settings import Connection

__all__ = ["run_cancel_batch"]


def _read_source(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    return Path(name).read_text(encoding="utf-8-sig")


def _load(args: argparse.Namespace, err: Console) -> list[BatchLine] | None:
    if args.workers < 1:
        err.print("assetpay cancel-batch: --workers must be at least 1", markup=False)
        return None
    if args.max_transport_failures is not None and args.max_transport_failures < 1:
        err.print(
            "assetpay cancel-batch: --max-transport-failures must be at least 1", markup=False
        )
        return None
    try:
        return parse_batch(_read_source(args.file), source=args.file)
    except BatchFileError as exc:
        err.print(f"assetpay cancel-batch: {exc}; nothing was sent", markup=False)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        err.print(f"assetpay cancel-batch: cannot read {args.file}: {reason}", markup=False)
    return None


async def run_cancel_batch(args: argparse.Namespace, connection: Connection) -> ExitCode:
    """Cancel every pair of the file; a summary at the end; Ctrl-C reports what was done."""
    human = console(stderr=args.results == "-")
    err = console(stderr=True)
    lines = _load(args, err)
    if lines is None:
        return ExitCode.USAGE
    run = _Run(args, connection, lines, human, err)
    try:
        return await run.execute()
    except ResultsError as exc:
        err.print(f"assetpay cancel-batch: {exc}; nothing was sent", markup=False)
        return ExitCode.USAGE
    finally:
        if run.writer is not None:
            run.writer.close()


class _Run:
    """One ``cancel-batch`` run: the batch, its results writer, its progress output and its signals."""

    def __init__(
        self,
        args: argparse.Namespace,
        connection: Connection,
        lines: list[BatchLine],
        human: Console,
        err: Console,
    ) -> None:
        self.args = args
        self.connection = connection
        self.lines = lines
        self.human = human
        self.err = err
        self.writer: ResultsWriter | None = None
        self.signals = 0
        self._bar: BatchProgressBar | None = None
        self._limited: Callable[[], int] = lambda: 0

    async def execute(self) -> ExitCode:
        loop = asyncio.get_running_loop()
        async with self.connection.session() as session:
            batch = self._batch(session)
            if batch is None:
                return ExitCode.USAGE
            writer = ResultsWriter(batch, self.lines, self.args.results, self.args.file, loop.time)
            self.writer = writer

            def limited() -> int:
                return session.limiter_stats(RouteGroup.CANCEL_ITEM).rate_limited

            with self._signals(), self._progress(writer.tally, limited), quiet_batch_stop():
                try:
                    await batch.run()
                    interrupted = False
                except JournalError as exc:
                    self.err.print(f"assetpay cancel-batch: {exc}; nothing was sent", markup=False)
                    return ExitCode.USAGE
                except asyncio.CancelledError:
                    # The batch has already abandoned its in-flight requests (and the journal holds them as
                    # possibly sent); close the session normally and report what was done.
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                    interrupted = True
                writer.finish()
                self._draw()
            rate_limited = limited()
        return self._summary(batch, writer.tally, rate_limited, interrupted=interrupted)

    def _batch(self, session: AssetPaySession) -> CancelBatch | PerUserBatch | None:
        """The batch of the file's pairs (one per end user when the file names them), or None after saying
        why nothing will be sent."""
        options: dict[str, object] = {
            "workers": self.args.workers,
            "reschedule_too_soon": self.args.reschedule_too_soon,
            "max_transport_failures": self.args.max_transport_failures,
            "whole_trades": self.args.whole_trades,
        }
        try:
            if any(line.steam_id is not None for line in self.lines):
                return self._per_user(session, options)
            client = self.connection.client(session)
        except (InvalidRequestError, SessionClosedError) as exc:
            self.err.print(
                f"assetpay cancel-batch: {describe_error(exc)}; nothing was sent", markup=False
            )
            return None
        pairs = [(line.trade_id, line.item_id) for line in self.lines]
        return CancelBatch(
            client,
            pairs,
            on_progress=lambda _: self._poll(),
            journal=self.args.journal,
            **options,  # type: ignore[arg-type]
        )

    def _per_user(
        self, session: AssetPaySession, options: dict[str, object]
    ) -> PerUserBatch | None:
        """Merchant mode: the file names each pair's end user; the session issues every user's token."""
        problem = None
        if self.connection.api_key is None:
            problem = (
                "a batch file with steam_id,trade_url columns needs the API key (ASSETPAY_API_KEY)"
            )
        elif self.args.journal is not None and session.merchant_id is None:
            problem = (
                "--journal with steam_id,trade_url columns needs the merchant id (--merchant-id or "
                "ASSETPAY_MERCHANT_ID): each user's journal is checked against it before anything is sent"
            )
        if problem is not None:
            self.err.print(f"assetpay cancel-batch: {problem}; nothing was sent", markup=False)
            return None

        def client_for(steam_id: str | None, trade_url: str | None) -> AssetPayClient:
            if steam_id is None or trade_url is None:
                return self.connection.client(session)
            return session.client_for(steam_id, trade_url)

        return PerUserBatch(
            self.lines, client_for, lambda _: self._poll(), journal=self.args.journal, **options
        )

    # -- progress -------------------------------------------------------------------------------------------

    def _poll(self) -> None:
        if self.writer is not None:
            self.writer.poll()
        self._draw()

    def _draw(self) -> None:
        if self._bar is not None and self.writer is not None:
            tally = self.writer.tally
            self._bar.show(
                tally.answered, tally.failed + tally.unknown, tally.rate(), self._limited()
            )

    @contextlib.contextmanager
    def _progress(self, tally: Tally, limited: Callable[[], int]) -> Iterator[None]:
        self._limited = limited
        if self.err.is_terminal:
            loop = asyncio.get_running_loop()
            with BatchProgressBar(self.err, tally.total, get_time=loop.time) as bar:
                self._bar = bar
                yield
            return
        ticker = asyncio.get_running_loop().create_task(self._ticker(tally))
        try:
            yield
        finally:
            ticker.cancel()

    async def _ticker(self, tally: Tally) -> None:
        """A plain, flushed line on stderr every interval (cron, CI, a log file: no terminal to draw on)."""
        while True:
            await asyncio.sleep(self.args.progress_interval)
            if self.writer is not None:
                self.writer.poll()
            sys.stderr.write(f"progress: {tally.line()}; 429s: {self._limited()}\n")
            sys.stderr.flush()

    # -- signals --------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if not getattr(self.args, "handle_signals", False):
            yield  # in-process callers (tests, embedding) cancel the task themselves
            return
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, task)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread; Windows
                continue
            installed.append(sig)
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _on_signal(self, task: asyncio.Task[object] | None) -> None:
        self.signals += 1
        writer = self.writer
        if writer is not None:
            writer.poll()
        tally = writer.tally if writer is not None else None
        accepted = "no" if tally is None else str(tally.accepted)
        if self.signals == 1:
            sys.stderr.write(
                f"\nassetpay cancel-batch: interrupted: {accepted} cancels accepted so far; stopping "
                "(requests on the wire are abandoned, their outcome unknown). Press Ctrl-C again to "
                "stop at once.\n"
            )
            sys.stderr.flush()
            if task is not None:
                task.cancel()
            return
        rows = 0 if writer is None else writer.rows
        if writer is not None:
            writer.sync()
        kept = None if writer is None else writer.where
        where = f"; the {rows} rows written so far are in {kept}" if kept else ""
        sys.stderr.write(
            f"\nassetpay cancel-batch: stopped at once: {accepted} cancels accepted{where}; "
            "pairs in flight were not recorded (run again with --journal to resume safely).\n"
        )
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(ExitCode.INTERRUPTED)

    # -- summary --------------------------------------------------------------------------------------------

    def _summary(
        self,
        batch: CancelBatch | PerUserBatch,
        tally: Tally,
        rate_limited: int,
        *,
        interrupted: bool,
    ) -> ExitCode:
        human, args = self.human, self.args
        outcomes = batch.outcomes
        nothing_sent = all(
            o.kind is OutcomeKind.NOT_ATTEMPTED or is_setup_error(o.error) for o in outcomes
        )
        if batch.stopped is not None and is_setup_error(batch.stopped.cause) and nothing_sent:
            # A setting that cannot work (a Redis that refuses the password) stopped it before any send.
            text = describe_error(batch.stopped.cause)
            if "nothing was sent" not in text:
                text += "; nothing was sent"
            self.err.print(f"assetpay cancel-batch: {text}", markup=False)
            return ExitCode.USAGE
        duplicates = sum(o.duplicate_of is not None for o in outcomes)
        title = f"{tally.total} pairs"
        if duplicates:
            title += f" ({duplicates} duplicate line{'s' if duplicates > 1 else ''} counted once)"
        human.print(outcome_table(count_outcomes(outcomes), title=title))
        human.print(f"{tally.line()}; 429s: {rate_limited}", markup=False)
        _settlements(human, batch, outcomes)
        resumed = sum(o.detail is OutcomeDetail.FROM_JOURNAL for o in outcomes)
        if resumed:
            human.print(
                f"Resumed from {args.journal}: {resumed} pairs decided by an earlier run were not "
                "sent again.",
                markup=False,
            )
        if interrupted:
            human.print(_interrupted_report(tally), markup=False)
            if args.journal is not None:
                human.print(
                    f"The journal {args.journal} holds all of it: run the same command again to "
                    "resume.",
                    markup=False,
                )
            return ExitCode.INTERRUPTED
        if batch.stopped is not None:
            human.print(
                f"Stopped early: {batch.stopped.reason}; {tally.not_attempted} pairs not attempted. "
                f"{tally.answered} pairs had been sent before the stop took effect (pairs already "
                "in progress end first).",
                markup=False,
            )
        return ExitCode.OK if all(o.ok for o in outcomes) else ExitCode.FAILED


def _settlements(
    human: Console, batch: CancelBatch | PerUserBatch, outcomes: list[CancelOutcome]
) -> None:
    """What the batch layer settled beyond the pairs' answers: pairs settled by a read of their trade, and
    items a whole-trade cancel cancelled that no line listed (named: those users must be refunded too)."""
    confirmed = sum(
        o.detail is OutcomeDetail.CONFIRMED_BY_READ for o in outcomes if o.duplicate_of is None
    )
    if confirmed:
        human.print(
            f"{confirmed} pair{'s' if confirmed > 1 else ''} settled by a read of the trade (an answer "
            "had left the outcome in doubt after an earlier attempt).",
            markup=False,
        )
    unlisted = batch.unlisted
    if unlisted:
        human.print(
            f"{len(unlisted)} item{'s' if len(unlisted) > 1 else ''} cancelled by a whole-trade cancel "
            "that no line listed (they joined the trade after it was read): refund those users too:",
            markup=False,
        )
        for result in unlisted:
            human.print(f"  item {result.item_id} of trade {result.trade_id}", markup=False)


def _interrupted_report(tally: Tally) -> str:
    done = tally.accepted + tally.failed
    return (
        f"Interrupted: {done} of {tally.total} done ({tally.accepted} cancelled, {tally.failed} "
        f"failed); {tally.unknown} unfinished (outcome unknown: they may have reached AssetPay, "
        f"check those trades); {tally.not_attempted} not attempted."
    )
