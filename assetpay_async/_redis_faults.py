"""What a failure of Redis means for the limiter: an outage (grant from the share) or a configuration error.

A configuration error does not heal by waiting: a wrong or missing password, an ACL user without ``EVALSHA``
or the keys, a TLS failure, a URL option the connection rejects, a plain client sent to a cluster node
(``MOVED``). Treating it as an outage would make every process grant from its share for ever, so it ends the
waiting calls with a [`ConfigurationError`][assetpay_async.ConfigurationError] instead. Everything else
that Redis or the network raises is an outage.

Pure functions: they look at an exception and say what it is. The messages never repeat the URL (it may
hold a password): only the exception's class and the server's own error text.
"""

from __future__ import annotations

import ssl
from typing import Final

from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    MovedError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from ._errors import ConfigurationError

__all__ = ["OUTAGE_ERRORS", "configuration_error", "is_outage"]

OUTAGE_ERRORS: Final = (RedisError, RedisClusterException, OSError)
"""What Redis, the cluster client or the network raise when the store is unavailable (or misconfigured)."""

_CONFIG_REPLIES: Final = ("NOAUTH", "WRONGPASS", "NOPERM", "ERR unknown command")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _reason(exc: BaseException) -> str | None:
    """Why ``exc`` is a configuration error, or None if it is not one."""
    for link in _chain(exc):
        if isinstance(link, MovedError):
            return (
                "the server is a Redis Cluster node (it answered MOVED): use a redis+cluster:// URL or "
                "a redis.asyncio.RedisCluster client"
            )
        if isinstance(link, AuthenticationError | AuthenticationWrongNumberOfArgsError):
            return f"Redis refused the credentials ({link})"
        if isinstance(link, AuthorizationError | NoPermissionError):
            return f"the Redis user may not run the limiter's scripts or keys ({link})"
        if isinstance(link, ResponseError) and str(link).startswith(_CONFIG_REPLIES):
            return f"Redis refused the limiter's commands ({link})"
        if isinstance(link, ssl.SSLError):
            return f"the TLS connection to Redis failed ({type(link).__name__}: {link.reason})"
        if isinstance(link, TypeError) and not isinstance(link, RedisError):
            # Raised by redis-py when a URL option is one the connection class does not take (never a
            # network condition). Its text names the option, never a value.
            return f"a Redis connection option is not accepted ({link})"
        if isinstance(link, ValueError) and not isinstance(link, RedisError):
            # A value redis-py could not use; its text may repeat the value, so only the class is shown.
            return f"a Redis connection option has a bad value ({type(link).__name__})"
    return None


def configuration_error(exc: BaseException) -> ConfigurationError | None:
    """The `ConfigurationError` that ``exc`` stands for, or None when it is not a configuration error."""
    reason = _reason(exc)
    if reason is None:
        return None
    return ConfigurationError(
        f"the Redis limiter cannot work with this Redis: {reason}; nothing was sent and no grant was made"
    )


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the store is unavailable for now (grant from the share, try again later)."""
    return isinstance(exc, OUTAGE_ERRORS) and _reason(exc) is None
