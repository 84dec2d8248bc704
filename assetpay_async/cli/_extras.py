"""Which optional extra a parsed command needs, checked before it runs: one usage line naming it, never a traceback.

Each extra is asked for only by what needs it: rich by every command (it draws the output), aiolimiter only by
``demo --compare-naive`` (the naive baseline), matplotlib only by ``demo --plot``, redis-py only by a command
given a Redis URL.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping
from typing import Final

from ._settings import ENV_REDIS_URL

__all__ = ["MISSING_RICH", "missing_extra"]

MISSING_RICH: Final = (
    "assetpay: the command line needs the 'cli' extra (rich): pip install 'assetpay-async[cli]'\n"
)
_MISSING_AIOLIMITER: Final = (
    "assetpay demo: --compare-naive needs aiolimiter, from the 'cli' extra: "
    "pip install 'assetpay-async[cli]'\n"
)
_MISSING_PLOT: Final = (
    "assetpay demo: --plot needs matplotlib, from the 'plot' extra: "
    "pip install 'assetpay-async[plot]'\n"
)
_MISSING_REDIS: Final = (
    "assetpay {command}: --redis-url (or ${env}) needs the 'redis' extra: "
    "pip install 'assetpay-async[redis]'\n"
)


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def missing_extra(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """The usage error (one line) for an extra this command needs and cannot import, or None."""
    if not _importable("rich"):
        return MISSING_RICH
    if args.command == "demo" and args.compare_naive and not _importable("aiolimiter"):
        return _MISSING_AIOLIMITER
    if args.command == "demo" and args.plot is not None and not _importable("matplotlib"):
        return _MISSING_PLOT
    # Only the commands that reach AssetPay have --redis-url; the others ignore the variable.
    wants_redis = hasattr(args, "redis_url") and bool(args.redis_url or environ.get(ENV_REDIS_URL))
    if wants_redis and not _importable("redis.asyncio"):
        return _MISSING_REDIS.format(command=args.command, env=ENV_REDIS_URL)
    return None
