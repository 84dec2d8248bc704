"""What the command line must never print: the token, and any argument or variable that looks like a secret.

Pure functions. `secrets_in` collects, from the arguments and the ``ASSETPAY_*`` variables, every value that is
or may be a secret; `redact` removes them from a message (in any letter case: argparse lowercases some values);
`looks_secret` tells a misplaced token from a path, a URL, an id or a number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

__all__ = ["REDACTED", "looks_secret", "redact", "secrets_in"]

REDACTED: Final = "***"
_ENV_PREFIX: Final = "ASSETPAY_"
_TOKEN_VAR: Final = "ASSETPAY_CLIENT_TOKEN"  # noqa: S105 - a variable's name
_MIN_PREFIX: Final = 12
_MIN_KNOWN: Final = 8  # a shorter "token" (a test's placeholder) would match ordinary words
# Three base64url segments: a JWT (AssetPay's client tokens), whole or inside a longer argument.
_JWT: Final = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_API_KEY: Final = re.compile(r"ap_[A-Za-z0-9_-]{8,}")
_LONG_OPAQUE: Final = re.compile(r"[A-Za-z0-9_+=-]{40,}")
_MIN_DIGITS: Final = 4
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}")


def looks_secret(value: str, known: Iterable[str] = ()) -> bool:
    """Whether ``value`` is, holds, or looks like a credential (a JWT, an API key, a long opaque string).

    A UUID, a number, a word, a path or a URL without such a part does not.
    """
    if not value:
        return False
    lowered = value.lower()
    if any(len(secret) >= _MIN_KNOWN and secret.lower() in lowered for secret in known):
        return True
    if _JWT.search(value) or _API_KEY.search(value):
        return True
    for run in _LONG_OPAQUE.findall(value):
        if _UUID.fullmatch(run) is None and any(c.isdigit() for c in run) and run.lower() != run:
            return (
                True  # mixed case with digits, 32 characters or more, not an id: a key or a token
            )
    return False


def _values(argv: Sequence[str]) -> Iterable[str]:
    for arg in argv:
        yield arg
        if arg.startswith("-") and "=" in arg:
            yield arg.partition("=")[2]


_SECRET_OPTIONS: Final = frozenset({"--token", "--api-key", "--api-secret"})
"""Options whose value is a secret whatever it looks like."""
_SECRET_VARS: Final = frozenset(
    {_TOKEN_VAR, "ASSETPAY_API_KEY", "ASSETPAY_API_SECRET", "ASSETPAY_REDIS_URL"}
)
"""Variables whose value is a secret whatever it looks like (a Redis URL may carry a password)."""


def secrets_in(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[str, ...]:
    """The token, API key and API secret (environment or options) and every argument or ``ASSETPAY_*`` value
    that looks secret.

    ``ASSETPAY_REDIS_URL`` is always counted: a Redis URL may carry a password. Longest first, so a secret
    containing another is replaced whole.
    """
    found = {environ.get(name, "") for name in _SECRET_VARS}
    for index, arg in enumerate(argv):
        if arg in _SECRET_OPTIONS and index + 1 < len(argv):
            found.add(argv[index + 1])
        option, equals, value = arg.partition("=")
        if equals and option in _SECRET_OPTIONS:
            found.add(value)
    found |= {v for v in _values(argv) if looks_secret(v)}
    for name, value in environ.items():
        if name.startswith(_ENV_PREFIX) and (name in _SECRET_VARS or looks_secret(value)):
            found.add(value)
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced, in any letter case, and its first 40 characters too (a message
    may shorten a value)."""
    for secret in secrets:
        parts = [secret]
        if len(secret) >= _MIN_PREFIX:
            parts.append(secret[:40])
            if _JWT.fullmatch(secret):
                parts.append(secret.rsplit(".", 1)[1])  # the signature alone
        for part in parts:
            text = re.sub(re.escape(part), REDACTED, text, flags=re.IGNORECASE)
    return text
