"""The Redis URL forms the limiter takes (those of the Python ``limits`` library), parsed without I/O.

| URL | deployment |
|---|---|
| ``redis://[[user]:password@]host[:port][/db]`` | one server (TCP) |
| ``rediss://...`` | one server over TLS |
| ``redis+unix:///path/to.sock[?db=0]``, ``unix://...`` | one server on a unix socket |
| ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]`` | Sentinel |
| ``redis+cluster://[[user]:password@]host:port[,host:port...]`` | Redis Cluster |

Every error is a [`ConfigurationError`][assetpay_async.ConfigurationError] whose text never repeats the URL
(it may hold a password).
"""

from __future__ import annotations

import urllib.parse
from typing import Final

import attrs

from ._errors import ConfigurationError

__all__ = ["SCHEMES", "RedisUrl", "parse_redis_url"]

SCHEMES: Final = ("redis", "rediss", "unix", "redis+unix", "redis+sentinel", "redis+cluster")


@attrs.frozen(repr=False)
class RedisUrl:
    """A parsed URL. ``url`` is what redis-py's ``from_url`` takes (single-server forms only)."""

    kind: str
    """``"single"``, ``"sentinel"`` or ``"cluster"``."""
    url: str = ""
    nodes: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"<RedisUrl kind={self.kind} nodes={len(self.nodes)}>"  # never the password


def _fail(reason: str) -> ConfigurationError:
    return ConfigurationError(f"limiter= Redis URL: {reason} (the URL itself is not shown)")


def _node(text: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise _fail("every host of a Sentinel or Cluster URL needs host:port")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _fail("a port is not a number from 1 to 65535")
    return host.strip("[]"), int(port_text)


def _userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return None, None, netloc
    user, colon, password = userinfo.partition(":")
    unquote = urllib.parse.unquote
    return (unquote(user) or None), (unquote(password) if colon else None), hosts


def _multi_host(kind: str, rest: str) -> RedisUrl:
    netloc, _, path = rest.partition("/")
    path, _, query = path.partition("?")
    if query:
        raise _fail(f"a {kind} URL takes no query options; pass a client for more control")
    username, password, hosts = _userinfo(netloc)
    nodes = tuple(_node(part) for part in hosts.split(",") if part)
    if not nodes:
        raise _fail(f"a {kind} URL needs at least one host:port")
    parts = [part for part in path.split("/") if part]
    service, db_text = "", "0"
    if kind == "sentinel":
        if not parts:
            raise _fail("a Sentinel URL needs the service name: redis+sentinel://host:port/name")
        service, db_text = parts[0], (parts[1] if len(parts) > 1 else "0")
    elif parts:
        raise _fail("a Cluster URL takes no path (a cluster has one database)")
    if not db_text.isdigit():
        raise _fail("the database is not a number")
    return RedisUrl(kind, nodes=nodes, service_name=service, db=int(db_text),
                    username=username, password=password)  # fmt: skip


def parse_redis_url(url: str) -> RedisUrl:
    """Parse ``url`` (one of `SCHEMES`), checking what can be checked without connecting."""
    if not isinstance(url, str):
        raise ConfigurationError(f"a Redis URL must be a string, got {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise _fail("the scheme must be one of " + ", ".join(f"{s}://" for s in SCHEMES))
    if scheme in ("redis+sentinel", "redis+cluster"):
        return _multi_host(scheme.removeprefix("redis+"), rest)
    if scheme == "redis+unix":
        url = "unix://" + rest
    if scheme in ("unix", "redis+unix"):
        if not urllib.parse.urlsplit(url).path:
            raise _fail("a unix socket URL needs a path: unix:///run/redis.sock")
        return RedisUrl("single", url=url)
    if "," in rest.partition("/")[0]:
        raise _fail(f"several hosts need redis+sentinel:// or redis+cluster://, not {scheme}://")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError:
        raise _fail("a port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise _fail("the URL has no host")
    if port == 0:
        raise _fail("a port is not a number from 1 to 65535")
    return RedisUrl("single", url=url)
