"""Dispatch a parsed command to its implementation (everything from here on may use rich)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from ._batch_run import run_cancel_batch
from ._cancel import run_cancel
from ._demo import run_demo
from ._exit import ExitCode
from ._render import console
from ._sandbox_cmd import run_sandbox
from ._settings import SettingsError, connection_from

__all__ = ["execute"]


async def execute(args: argparse.Namespace, environ: Mapping[str, str]) -> ExitCode:
    """Run the command ``args`` describes and return its exit code."""
    if args.command == "sandbox":
        return await run_sandbox(args)
    if args.command == "demo":
        return await run_demo(args)
    try:
        connection = connection_from(args, environ)
    except SettingsError as exc:
        console(stderr=True).print(f"assetpay {args.command}: {exc}", markup=False)
        return ExitCode.USAGE
    if args.command == "cancel":
        return await run_cancel(args, connection)
    return await run_cancel_batch(args, connection)
