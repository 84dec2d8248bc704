"""The ``assetpay`` argument parser: every command, its options and its ``--help`` examples.

Nothing here imports rich, so ``--help`` and usage errors work without the ``[cli]`` extra. Usage errors never
echo the client token: whatever argparse would print is passed through `redact` first.
"""

from __future__ import annotations

import argparse
import contextvars
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, NoReturn

from assetpay_async._errors import InvalidRequestError
from assetpay_async._protocol import parse_id
from assetpay_async._version import __version__
from assetpay_async.sandbox import ServerAlgorithm

from ._exit import ExitCode
from ._help import BATCH_EPILOG, CANCEL_EPILOG, DEMO_EPILOG, MAIN_EPILOG, SANDBOX_EPILOG
from ._secrets import REDACTED, looks_secret, secrets_in
from ._secrets import redact as _redact
from ._settings import (
    ENV_API_KEY,
    ENV_API_SECRET,
    ENV_BASE_URL,
    ENV_MERCHANT_ID,
    ENV_REDIS_URL,
    ENV_TIER,
    ENV_TOKEN,
    parse_margin,
    parse_quota,
)

__all__ = ["build_parser", "parse_args", "redact"]

_REDACTED: Final = REDACTED
_LONG_VALUE: Final = 20
_ID: Final = re.compile(r"[0-9a-fA-F-]{32,36}|[0-9.]+")
_secrets: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "assetpay_cli_secrets", default=()
)


def redact(text: str) -> str:
    """``text`` with every known secret (the token, and any argument or variable that looks like one) replaced."""
    return _redact(text, _secrets.get())


def _hide_quoted(text: str) -> str:
    """Quoted values in an argparse message that may be secrets (long, opaque) replaced by ``***``."""

    def hide(match: re.Match[str]) -> str:
        value = match[2]
        risky = looks_secret(value) or (
            len(value) >= _LONG_VALUE and "/" not in value and _ID.fullmatch(value) is None
        )
        return f"{match[1]}{_REDACTED}{match[1]}" if risky else match[0]

    text = re.sub(r"(['\"])(.*?)\1", hide, text)
    head, sep, rest = text.partition("unrecognized arguments: ")
    if sep:
        words = [
            _REDACTED if looks_secret(w) or len(w) >= _LONG_VALUE else w for w in rest.split(" ")
        ]
        text = head + sep + " ".join(words)
    return text


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose messages never carry the token or a value that may be one."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, redact(_hide_quoted(f"{self.prog}: error: {message}\n")))


if TYPE_CHECKING:  # the type of parser.add_subparsers()
    _Commands = argparse._SubParsersAction[_Parser]


def _tier_arg(text: str) -> str:
    # Not `choices=`: argparse would echo the value (a token pasted after --tier, lowercased).
    value = text.lower()
    if value not in ("verified", "unverified"):
        raise argparse.ArgumentTypeError("expected verified or unverified")
    return value


def _count_arg(name: str, minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}")
        return value

    parse.__name__ = name
    return parse


def _seconds_arg(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError("expected a number of seconds > 0")
        return value

    parse.__name__ = name
    return parse


def _uuid_arg(name: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            return parse_id(text, name)
        except InvalidRequestError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name
    return parse


def _connection_options() -> _Parser:
    parent = _Parser(add_help=False, allow_abbrev=False)
    group = parent.add_argument_group("connection (options win over environment variables)")
    group.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"the end user's client token; prefer ${ENV_TOKEN} (arguments show in process lists)",
    )
    group.add_argument(
        "--tier",
        metavar="{verified,unverified}",
        type=_tier_arg,
        help=f"the merchant's status: 60 or 10 cancels a minute (${ENV_TIER})",
    )
    group.add_argument(
        "--quota",
        metavar="LIMIT/SECONDS",
        type=parse_quota,
        help="the cancel quota, overriding the tier's (e.g. 60/60; a scaled sandbox: 60/3)",
    )
    group.add_argument("--base-url", metavar="URL", help=f"AssetPay's API root (${ENV_BASE_URL})")
    group.add_argument(
        "--redis-url",
        metavar="URL",
        help=f"share the quota with other processes and hosts through Redis (${ENV_REDIS_URL})",
    )
    group.add_argument(
        "--latency-margin",
        metavar="SECONDS",
        type=parse_margin,
        default=1.0,
        help="J: spread between a grant and the server's count (default: %(default)s)",
    )
    group.add_argument(
        "--merchant-id",
        metavar="ID",
        help=f"the merchant, for opaque (non-JWT) tokens (${ENV_MERCHANT_ID})",
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"merchant mode: the API key (ap_...); prefer ${ENV_API_KEY} (never printed)",
    )
    group.add_argument(
        "--api-secret",
        metavar="SECRET",
        help=f"merchant mode: the API secret, to mint tokens locally; prefer ${ENV_API_SECRET}",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds_arg("timeout"),
        default=30.0,
        help="give up on one request after this long (default: %(default)s)",
    )
    group.add_argument(
        "--max-retries",
        metavar="N",
        type=_count_arg("max_retries", 0),
        default=3,
        help="retries of a request after a failure that proves nothing was done (default: %(default)s)",
    )
    return parent


def _add_cancel(commands: _Commands, connection: _Parser) -> None:
    """``assetpay cancel``."""
    formatter = argparse.RawDescriptionHelpFormatter
    cancel = commands.add_parser(
        "cancel",
        parents=[connection],
        help="cancel one withdrawal item",
        description="Cancel one undelivered withdrawal item and print the result or the typed error.",
        epilog=CANCEL_EPILOG,
        formatter_class=formatter,
        allow_abbrev=False,
    )
    cancel.add_argument("trade_id", metavar="TRADE_ID", type=_uuid_arg("trade_id"))
    cancel.add_argument("item_id", metavar="ITEM_ID", type=_uuid_arg("item_id"))
    cancel.add_argument("--json", action="store_true", help="print one JSON object instead")
    cancel.add_argument(
        "--wait",
        action="store_true",
        help="after an accepted cancel, poll the trade until the item is final (reverted)",
    )
    cancel.add_argument(
        "--wait-timeout",
        metavar="SECONDS",
        type=float,
        default=900.0,
        help="give up waiting after this long (default: %(default)s)",
    )


def _add_batch(commands: _Commands, connection: _Parser) -> None:
    """``assetpay cancel-batch``."""
    formatter = argparse.RawDescriptionHelpFormatter
    batch = commands.add_parser(
        "cancel-batch",
        parents=[connection],
        help="cancel every pair of a CSV or JSON Lines file",
        description="Cancel many items, paced to the merchant's quota, with a progress bar and a summary.",
        epilog=BATCH_EPILOG,
        formatter_class=formatter,
        allow_abbrev=False,
    )
    batch.add_argument(
        "file", metavar="FILE", help="CSV or JSON Lines of trade_id,item_id; - for stdin"
    )
    batch.add_argument(
        "--results",
        metavar="FILE",
        help="one JSON line per pair: in FILE.partial as each pair ends, then in FILE, in input order, "
        "when the run ends (- for stdout, as each pair ends)",
    )
    batch.add_argument(
        "--progress-interval",
        metavar="SECONDS",
        type=_seconds_arg("progress_interval"),
        default=10.0,
        help="when stderr is not a terminal, print a progress line this often (default: %(default)s)",
    )
    batch.add_argument(
        "--workers",
        type=int,
        default=32,
        help="pairs in progress at once; the limiter does the pacing (default: %(default)s)",
    )
    batch.add_argument(
        "--reschedule-too-soon",
        action="store_true",
        help="cancel an item younger than 30 minutes again once it is old enough, instead of failing",
    )
    batch.add_argument(
        "--journal",
        metavar="PATH",
        help="record every pair before it is sent and every answer in this SQLite file; run again with "
        "the same journal after a crash to resume without resending what was decided",
    )
    batch.add_argument(
        "--max-transport-failures",
        metavar="K",
        type=int,
        default=20,
        help="stop after K pairs in a row failed with nothing getting through (default: %(default)s)",
    )
    batch.add_argument(
        "--whole-trades",
        action="store_true",
        help="where the file names every undelivered item of a trade, cancel them with one whole-trade "
        "request (one trade read to check) instead of one request per item",
    )


def _add_sandbox(commands: _Commands) -> None:
    """``assetpay sandbox``."""
    formatter = argparse.RawDescriptionHelpFormatter
    sandbox = commands.add_parser(
        "sandbox",
        help="run the AssetPay emulator until Ctrl-C",
        description="Run the stateful AssetPay emulator on loopback and print its URL and seeded tokens.",
        epilog=SANDBOX_EPILOG,
        formatter_class=formatter,
        allow_abbrev=False,
    )
    sandbox.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    sandbox.add_argument(
        "--port", type=int, default=8080, help="port; 0 picks a free one (default: %(default)s)"
    )
    sandbox.add_argument(
        "--seed",
        metavar="FILE",
        help="a JSON seed of merchants, users and trades (default: a small world)",
    )
    sandbox.add_argument(
        "--algorithm",
        choices=[a.value for a in ServerAlgorithm],
        default=ServerAlgorithm.SLIDING_LOG.value,
        help="the server's rate limiting algorithm (default: %(default)s)",
    )
    sandbox.add_argument("--burst", type=int, help="the GCRA burst (default: the quota's N)")
    sandbox.add_argument(
        "--revert-delay",
        metavar="SECONDS",
        type=float,
        default=5.0,
        help="seconds from an accepted cancel to the item's 'reverted' (default: %(default)s)",
    )
    sandbox.add_argument(
        "--callback-url",
        metavar="URL",
        help="post signed trade callbacks here, for every merchant whose seed names no callback_url",
    )
    sandbox.add_argument(
        "--json", action="store_true", help="print one JSON line (URL, tokens) instead"
    )


def _add_demo(commands: _Commands) -> None:
    """``assetpay demo``."""
    formatter = argparse.RawDescriptionHelpFormatter
    demo = commands.add_parser(
        "demo",
        help="the main job end to end against an embedded sandbox",
        description=(
            "Batch-cancel a realistic backlog through a real AssetPaySession against an in-process sandbox,\n"
            "verify the signed 'reverted' callbacks, and show requests per window against the quota."
        ),
        epilog=DEMO_EPILOG,
        formatter_class=formatter,
        allow_abbrev=False,
    )
    demo.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="about how long the batch should take; sets the quota's scale (default: %(default)s)",
    )
    demo.add_argument("--fast", action="store_true", help="run on virtual time (no waiting)")
    demo.add_argument(
        "--compare-naive",
        action="store_true",
        help="also run the backlog through aiolimiter.AsyncLimiter(N, T) and show its 429s",
    )
    demo.add_argument("--json", action="store_true", help="write the report as one JSON object")
    demo.add_argument(
        "--plot",
        metavar="FILE",
        help="also write the window chart as an image (.svg or .png; needs the 'plot' extra)",
    )
    demo.add_argument(
        "--seed", type=int, default=7, help="the backlog's random seed (default: %(default)s)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole ``assetpay`` parser."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="assetpay",
        description="Cancel AssetPay withdrawal items within the merchant's shared rate limit.",
        epilog=MAIN_EPILOG,
        formatter_class=formatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    connection = _connection_options()
    _add_cancel(commands, connection)
    _add_batch(commands, connection)
    _add_sandbox(commands)
    _add_demo(commands)
    return parser


_PATH_ARGS: Final = (
    ("file", "FILE"),
    ("journal", "--journal"),
    ("results", "--results"),
    ("seed", "--seed"),
    ("plot", "--plot"),
)


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace:
    """Parse ``argv``; on a usage error print it (secrets redacted) and raise ``SystemExit(2)``.

    A path argument that looks like a client token (pasted in the wrong place) is refused here, before any
    file is read or created under that name.
    """
    secrets = secrets_in(argv, environ)
    reset = _secrets.set(secrets)
    try:
        parser = build_parser()
        args = parser.parse_args(list(argv))
        for attr, name in _PATH_ARGS:
            value = getattr(args, attr, None)
            if isinstance(value, str) and looks_secret(value, secrets):
                parser.error(
                    f"{name} looks like a client token, not a path: nothing was read or created "
                    "(pass the token in $ASSETPAY_CLIENT_TOKEN)"
                )
        return args
    finally:
        _secrets.reset(reset)
