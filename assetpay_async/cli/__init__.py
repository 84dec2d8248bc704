"""The ``assetpay`` command line (the ``[cli]`` extra): cancel items, run the sandbox, run the demo.

``main(argv)`` is the console script; ``python -m assetpay_async.cli`` runs it too. Commands, options and exit
codes are documented in ``docs/cli.md`` and in ``assetpay COMMAND --help``.

The extras are imported only once a command runs, and only by the command that needs them (``._extras``): rich
by every command, aiolimiter by ``demo --compare-naive``, redis-py by ``--redis-url``. ``import assetpay_async``
never needs them, and a missing one is one clear usage line (exit 2) instead of a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

from assetpay_async.testing import run_virtual

from ._exit import ExitCode
from ._extras import missing_extra
from ._parser import parse_args

__all__ = ["ExitCode", "main", "main_async"]


def _parse(argv: Sequence[str], environ: Mapping[str, str]) -> object:
    try:
        return parse_args(argv, environ)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2), already printed
        return ExitCode.USAGE if exc.code not in (0, None) else ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``assetpay`` command and return its exit code (see `ExitCode`).

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).
    """
    environ = os.environ
    args = _parse(sys.argv[1:] if argv is None else argv, environ)
    if isinstance(args, ExitCode):
        return int(args)
    missing = missing_extra(args, environ)  # type: ignore[arg-type]
    if missing is not None:
        sys.stderr.write(missing)
        return int(ExitCode.USAGE)
    from ._app import execute  # noqa: PLC0415 - rich, the optional [cli] extra, is needed from here on

    # SIGINT/SIGTERM are this process's to handle (docs/cli.md, "Output and signals").
    args.handle_signals = True  # type: ignore[attr-defined]
    virtual = getattr(args, "fast", False)
    try:
        code = (run_virtual if virtual else asyncio.run)(execute(args, environ))  # type: ignore[arg-type]
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside a command's own handling
        sys.stderr.write("assetpay: interrupted\n")
        return int(ExitCode.INTERRUPTED)
    return int(code)


async def main_async(argv: Sequence[str], *, environ: Mapping[str, str] | None = None) -> int:
    """`main` on the running event loop (for tests and embedding); ``demo --fast`` uses this loop's clock."""
    env = os.environ if environ is None else environ
    args = _parse(argv, env)
    if isinstance(args, ExitCode):
        return int(args)
    missing = missing_extra(args, env)  # type: ignore[arg-type]
    if missing is not None:
        sys.stderr.write(missing)
        return int(ExitCode.USAGE)
    from ._app import execute  # noqa: PLC0415 - see main()

    return int(await execute(args, env))  # type: ignore[arg-type]
