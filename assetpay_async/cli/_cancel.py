"""``assetpay cancel`` and ``assetpay cancel-batch``: one cancel, or a file of them with a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rich.console import Console

from assetpay_async._batch import CancelBatch, CancelOutcome, OutcomeDetail, OutcomeKind
from assetpay_async._client import AssetPayClient
from assetpay_async._errors import AssetPayError, InvalidRequestError, SessionClosedError
from assetpay_async._journal import JournalError

from ._batch_file import BatchFileError, BatchLine, parse_batch
from ._exit import ExitCode
from ._per_user import PerUserBatch
from ._render import BatchProgressBar, console, outcome_table, write_json_line
from ._report import (
    count_outcomes,
    describe_error,
    describe_result,
    error_json,
    outcome_json,
    result_json,
)
from ._settings import Connection

__all__ = ["run_cancel", "run_cancel_batch"]


async def run_cancel(args: argparse.Namespace, connection: Connection) -> ExitCode:
    """Cancel one item; print one line (or one JSON object) and return the exit code.

    Ctrl-C reports what is known: accepted, outcome unknown (the request may have reached AssetPay), or not
    sent. With ``--wait`` the accepted line is printed at once, the final status when it comes.
    """
    out, err = console(), console(stderr=True)
    async with connection.session() as session:
        try:
            client = connection.client(session)
        except (InvalidRequestError, SessionClosedError) as exc:
            # A setting the session refused (an opaque token without --merchant-id): nothing was sent.
            err.print(f"assetpay cancel: {describe_error(exc)}", markup=False)
            return ExitCode.USAGE
        # A batch of one: it knows whether the request went on the wire when Ctrl-C cancels the task.
        batch = CancelBatch(
            client, [(args.trade_id, args.item_id)], workers=1, max_transport_failures=None
        )
        try:
            (outcome,) = await batch.run()
        except asyncio.CancelledError:
            _take_back_cancellation()
            return _report_interrupted(args, batch.outcomes[0], out)
        if outcome.result is None:
            failure = outcome.error or RuntimeError("no result")
            if args.json:
                write_json_line(sys.stdout, {"ok": False, "error": error_json(failure)})
            else:
                err.print(describe_error(failure), markup=False)
            return ExitCode.FAILED
        result = outcome.result
        if not args.wait:
            if args.json:
                write_json_line(sys.stdout, {"ok": True, "result": result_json(result)})
            else:
                out.print(describe_result(result), markup=False)
            return ExitCode.OK
        if not args.json:
            out.print(
                describe_result(result), markup=False
            )  # accepted: say so now, not after the wait
        try:
            final = await client.wait_for_item(
                args.trade_id, args.item_id, timeout=args.wait_timeout
            )
        except asyncio.CancelledError:
            _take_back_cancellation()
            if args.json:
                body = {"ok": True, "interrupted": True, "state": "accepted"}
                write_json_line(sys.stdout, body | {"result": result_json(result)})
            else:
                out.print(
                    "interrupted while waiting for the final status; the cancel was accepted",
                    markup=False,
                )
            return ExitCode.INTERRUPTED
        except AssetPayError as exc:
            if args.json:
                write_json_line(
                    sys.stdout,
                    {"ok": False, "result": result_json(result), "error": error_json(exc)},
                )
            else:
                err.print(f"while waiting: {describe_error(exc)}", markup=False)
            return ExitCode.FAILED
    status = None if final.status is None else final.status.value
    if args.json:
        write_json_line(
            sys.stdout, {"ok": True, "result": result_json(result), "final_status": status}
        )
    else:
        out.print(f"final status: {status}", markup=False)
    return ExitCode.OK


def _take_back_cancellation() -> None:
    """asyncio.run() answers Ctrl-C by cancelling the main task: take it back to report and close normally."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


_INTERRUPTED_STATE = {
    OutcomeKind.CANCELLED: "accepted",
    OutcomeKind.UNKNOWN: "unknown",
    OutcomeKind.NOT_ATTEMPTED: "not-sent",
    OutcomeKind.FAILED: "refused",
}


def _report_interrupted(args: argparse.Namespace, outcome: CancelOutcome, out: Console) -> ExitCode:
    state = _INTERRUPTED_STATE[outcome.kind]
    if args.json:
        write_json_line(
            sys.stdout,
            {
                "ok": outcome.ok,
                "interrupted": True,
                "state": state,
                "result": None if outcome.result is None else result_json(outcome.result),
                "error": None if outcome.error is None else error_json(outcome.error),
            },
        )
        return ExitCode.INTERRUPTED
    if outcome.result is not None:
        out.print(f"interrupted; {describe_result(outcome.result)}", markup=False)
    elif outcome.kind is OutcomeKind.UNKNOWN:
        out.print(
            f"interrupted: outcome unknown: the cancel may have reached AssetPay; check item "
            f"{args.item_id} of trade {args.trade_id} before cancelling it again",
            markup=False,
        )
    elif outcome.kind is OutcomeKind.NOT_ATTEMPTED:
        out.print("interrupted before the cancel was sent: nothing was cancelled", markup=False)
    else:
        out.print(f"interrupted; {describe_error(outcome.error or RuntimeError())}", markup=False)
    return ExitCode.INTERRUPTED


def _read_source(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    return Path(name).read_text(encoding="utf-8-sig")


@contextlib.contextmanager
def _results_stream(name: str | None) -> Iterator[IO[str] | None]:
    if name is None:
        yield None
    elif name == "-":
        yield sys.stdout
    else:
        with Path(name).open("w", encoding="utf-8") as stream:
            yield stream


def _stopped_report(batch: CancelBatch | PerUserBatch, outcomes: list[CancelOutcome]) -> str:
    stopped = batch.stopped
    assert stopped is not None  # noqa: S101 - only called for a stopped batch
    skipped = sum(o.detail is OutcomeDetail.BATCH_STOPPED for o in outcomes)
    return f"Stopped early: {stopped.reason}; {skipped} pairs not attempted."


def _interrupted_report(outcomes: list[CancelOutcome]) -> str:
    by_kind = {kind: sum(o.kind is kind for o in outcomes) for kind in OutcomeKind}
    done = by_kind[OutcomeKind.CANCELLED] + by_kind[OutcomeKind.FAILED]
    return (
        f"Interrupted: {done} of {len(outcomes)} done ({by_kind[OutcomeKind.CANCELLED]} cancelled, "
        f"{by_kind[OutcomeKind.FAILED]} failed); {by_kind[OutcomeKind.UNKNOWN]} unfinished (outcome "
        f"unknown: they may have reached AssetPay, check those trades); "
        f"{by_kind[OutcomeKind.NOT_ATTEMPTED]} not attempted."
    )


async def run_cancel_batch(args: argparse.Namespace, connection: Connection) -> ExitCode:
    """Cancel every pair of the file; a summary at the end; Ctrl-C reports what was done."""
    human = console(stderr=args.results == "-")
    err = console(stderr=True)
    if args.workers < 1:
        err.print("assetpay cancel-batch: --workers must be at least 1", markup=False)
        return ExitCode.USAGE
    if args.max_transport_failures is not None and args.max_transport_failures < 1:
        err.print(
            "assetpay cancel-batch: --max-transport-failures must be at least 1", markup=False
        )
        return ExitCode.USAGE
    try:
        lines = parse_batch(_read_source(args.file), source=args.file)
    except BatchFileError as exc:
        err.print(f"assetpay cancel-batch: {exc}; nothing was sent", markup=False)
        return ExitCode.USAGE
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"assetpay cancel-batch: cannot read {args.file}: {exc}", markup=False)
        return ExitCode.USAGE
    try:
        results = contextlib.ExitStack()
        stream = results.enter_context(_results_stream(args.results))
    except OSError as exc:
        err.print(
            f"assetpay cancel-batch: cannot write {args.results}: {exc}; nothing was sent",
            markup=False,
        )
        return ExitCode.USAGE
    with results:
        batch, interrupted = await _cancel_all(args, connection, lines, human, err)
        if batch is None:
            return ExitCode.USAGE
        outcomes = batch.outcomes
        if stream is not None:
            for outcome in outcomes:
                write_json_line(stream, outcome_json(outcome, line=lines[outcome.index].line))
    duplicates = sum(o.duplicate_of is not None for o in outcomes)
    title = f"{len(outcomes) - duplicates} pairs"
    if duplicates:
        title += f" ({duplicates} duplicate line{'s' if duplicates > 1 else ''} counted once)"
    human.print(outcome_table(count_outcomes(outcomes), title=title))
    resumed = sum(o.detail is OutcomeDetail.FROM_JOURNAL for o in outcomes)
    if resumed:
        human.print(
            f"Resumed from {args.journal}: {resumed} pairs decided by an earlier run were not sent again.",
            markup=False,
        )
    if interrupted:
        human.print(_interrupted_report(outcomes), markup=False)
        if args.journal is not None:
            human.print(
                f"The journal {args.journal} holds all of it: run the same command again to resume.",
                markup=False,
            )
        return ExitCode.INTERRUPTED
    if batch.stopped is not None:
        human.print(_stopped_report(batch, outcomes), markup=False)
    return ExitCode.OK if all(o.ok for o in outcomes) else ExitCode.FAILED


async def _cancel_all(
    args: argparse.Namespace,
    connection: Connection,
    lines: list[BatchLine],
    human: Console,
    err: Console,
) -> tuple[CancelBatch | PerUserBatch | None, bool]:
    """Run the batch; ``(batch, interrupted)``, or ``(None, False)`` when nothing was sent (token, journal)."""
    if any(line.steam_id is not None for line in lines):
        return await _cancel_per_user(args, connection, lines, human, err)
    loop = asyncio.get_running_loop()
    async with connection.session() as session:
        try:
            client = connection.client(session)
        except (InvalidRequestError, SessionClosedError) as exc:
            err.print(
                f"assetpay cancel-batch: {describe_error(exc)}; nothing was sent", markup=False
            )
            return None, False
        with BatchProgressBar(human, len(lines), get_time=loop.time) as bar:
            batch = CancelBatch(
                client,
                [(line.trade_id, line.item_id) for line in lines],
                workers=args.workers,
                on_progress=bar.update,
                reschedule_too_soon=args.reschedule_too_soon,
                journal=args.journal,
                max_transport_failures=args.max_transport_failures,
                whole_trades=args.whole_trades,
            )
            try:
                await batch.run()
            except JournalError as exc:
                err.print(f"assetpay cancel-batch: {exc}; nothing was sent", markup=False)
                return None, False
            except asyncio.CancelledError:
                # The batch has already abandoned its in-flight requests (and the journal holds them as
                # possibly sent); close the session normally and report what was done.
                _take_back_cancellation()
                return batch, True
    return batch, False


async def _cancel_per_user(
    args: argparse.Namespace,
    connection: Connection,
    lines: list[BatchLine],
    human: Console,
    err: Console,
) -> tuple[PerUserBatch | None, bool]:
    """Merchant mode: the file names each pair's end user; one session issues every user's token."""
    if connection.api_key is None or args.journal is not None:
        problem = (
            "a batch file with steam_id,trade_url columns needs the API key (ASSETPAY_API_KEY)"
            if connection.api_key is None
            else "--journal is not supported with steam_id,trade_url columns yet"
        )
        err.print(f"assetpay cancel-batch: {problem}; nothing was sent", markup=False)
        return None, False
    loop = asyncio.get_running_loop()
    async with connection.session() as session:

        def client_for(steam_id: str | None, trade_url: str | None) -> AssetPayClient:
            if steam_id is None or trade_url is None:
                return connection.client(session)
            return session.client_for(steam_id, trade_url)

        with BatchProgressBar(human, len(lines), get_time=loop.time) as bar:
            try:
                batch = PerUserBatch(
                    lines,
                    client_for,
                    bar.update,
                    workers=args.workers,
                    reschedule_too_soon=args.reschedule_too_soon,
                    max_transport_failures=args.max_transport_failures,
                    whole_trades=args.whole_trades,
                )
            except (InvalidRequestError, SessionClosedError) as exc:
                err.print(
                    f"assetpay cancel-batch: {describe_error(exc)}; nothing was sent", markup=False
                )
                return None, False
            try:
                await batch.run()
            except asyncio.CancelledError:
                _take_back_cancellation()
                return batch, True
    return batch, False
