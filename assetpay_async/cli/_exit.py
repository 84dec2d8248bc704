"""The exit codes of the ``assetpay`` command, in one place (``docs/cli.md`` lists them)."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What the process exit status says."""

    OK = 0
    """Everything asked for succeeded (every item cancelled; the demo matched its expectations)."""
    FAILED = 1
    """Some item failed or its outcome is unknown; or AssetPay refused the one cancel."""
    USAGE = 2
    """Bad arguments, a malformed batch file, a missing token or a missing extra: nothing was sent."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (128 + SIGINT) after reporting what was done."""
