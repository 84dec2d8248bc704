"""``assetpay cancel``: one cancel, its result or typed error, and an honest report when interrupted."""

from __future__ import annotations

import argparse
import asyncio
import sys

from rich.console import Console

from assetpay_async._batch import CancelBatch, CancelOutcome, OutcomeKind
from assetpay_async._cancel_rules import is_setup_error
from assetpay_async._client import AssetPayClient
from assetpay_async._errors import AssetPayError, InvalidRequestError, SessionClosedError
from assetpay_async._models import CancelResult

from ._exit import ExitCode
from ._render import console, write_json_line
from ._report import (
    describe_error,
    describe_result,
    error_json,
    quiet_batch_stop,
    result_json,
)
from ._settings import Connection

__all__ = ["run_cancel"]


async def run_cancel(args: argparse.Namespace, connection: Connection) -> ExitCode:
    """Cancel one item; print one line (or one JSON object) and return the exit code.

    Ctrl-C reports what is known: accepted, outcome unknown (the request may have reached AssetPay), or not
    sent. With ``--wait`` the accepted line is printed at once, the final status when it comes.
    """
    out, err = console(), console(stderr=True)
    with quiet_batch_stop():
        return await _cancel_one(args, connection, out, err)


async def _cancel_one(
    args: argparse.Namespace, connection: Connection, out: Console, err: Console
) -> ExitCode:
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
            if is_setup_error(failure) and not args.json:
                # A setting that cannot work (a Redis that refuses the password): nothing was sent.
                err.print(f"assetpay cancel: {describe_error(failure)}", markup=False)
                return ExitCode.USAGE
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
            out.print(describe_result(result), markup=False)  # accepted: say so now, not later
        return await _wait_for_final(args, client, result, out, err)


async def _wait_for_final(
    args: argparse.Namespace,
    client: AssetPayClient,
    result: CancelResult,
    out: Console,
    err: Console,
) -> ExitCode:
    """``--wait``: follow the accepted item until it is final; Ctrl-C says the cancel was accepted."""
    try:
        final = await client.wait_for_item(args.trade_id, args.item_id, timeout=args.wait_timeout)
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
