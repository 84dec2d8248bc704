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

from assetpay_async._batch import CancelOutcome, OutcomeKind
from assetpay_async._errors import AssetPayError, InvalidRequestError, SessionClosedError

from ._batch_file import BatchFileError, BatchLine, parse_batch
from ._exit import ExitCode
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
    """Cancel one item; print one line (or one JSON object) and return the exit code."""
    out, err = console(), console(stderr=True)
    async with connection.session() as session:
        try:
            client = connection.client(session)
            result = await client.cancel_withdrawal_item(args.trade_id, args.item_id)
        except (InvalidRequestError, SessionClosedError) as exc:
            # A setting the session refused (an opaque token without --merchant-id): nothing was sent.
            err.print(f"assetpay cancel: {describe_error(exc)}", markup=False)
            return ExitCode.USAGE
        except AssetPayError as exc:
            if args.json:
                write_json_line(sys.stdout, {"ok": False, "error": error_json(exc)})
            else:
                err.print(describe_error(exc), markup=False)
            return ExitCode.FAILED
        final = None
        if args.wait:
            try:
                final = await client.wait_for_item(
                    args.trade_id, args.item_id, timeout=args.wait_timeout
                )
            except AssetPayError as exc:
                if args.json:
                    write_json_line(
                        sys.stdout,
                        {"ok": False, "result": result_json(result), "error": error_json(exc)},
                    )
                else:
                    out.print(describe_result(result), markup=False)
                    err.print(f"while waiting: {describe_error(exc)}", markup=False)
                return ExitCode.FAILED
    if args.json:
        body = {"ok": True, "result": result_json(result)}
        if final is not None:
            body["final_status"] = None if final.status is None else final.status.value
        write_json_line(sys.stdout, body)
    else:
        out.print(describe_result(result), markup=False)
        if final is not None:
            out.print(
                f"final status: {None if final.status is None else final.status.value}",
                markup=False,
            )
    return ExitCode.OK


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
        outcomes, interrupted = await _cancel_all(args, connection, lines, human, err)
        if outcomes is None:
            return ExitCode.USAGE
        if stream is not None:
            for outcome in outcomes:
                write_json_line(stream, outcome_json(outcome, line=lines[outcome.index].line))
    human.print(outcome_table(count_outcomes(outcomes), title=f"{len(outcomes)} pairs"))
    if interrupted:
        human.print(_interrupted_report(outcomes), markup=False)
        return ExitCode.INTERRUPTED
    return ExitCode.OK if all(o.ok for o in outcomes) else ExitCode.FAILED


async def _cancel_all(
    args: argparse.Namespace,
    connection: Connection,
    lines: list[BatchLine],
    human: Console,
    err: Console,
) -> tuple[list[CancelOutcome] | None, bool]:
    """Run the batch; ``(outcomes, interrupted)``, or ``(None, False)`` when the session refused the token."""
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
            batch = client.batch(
                [(line.trade_id, line.item_id) for line in lines],
                workers=args.workers,
                on_progress=bar.update,
                reschedule_too_soon=args.reschedule_too_soon,
            )
            try:
                await batch.run()
            except asyncio.CancelledError:
                # asyncio.run() answers Ctrl-C by cancelling the main task. The batch has already
                # abandoned its in-flight requests; take the cancellation back, close the session
                # normally and report what was done.
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                return batch.outcomes, True
    return batch.outcomes, False
