"""The Redis limiter registry: one limiter per (merchant, route group), on a client made from a URL or given.

The client comes from one of the URL forms of `_redis_urls` (single server, unix socket, TLS, Sentinel,
Cluster) or is a ``redis.asyncio.Redis`` / ``redis.asyncio.RedisCluster`` the caller owns. With a cluster
client, both keys of a merchant carry one hash tag (``{merchant}``): one slot, one node, failing together.
"""

from __future__ import annotations

import math
from typing import Any, Final

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from ._errors import ConfigurationError, SessionClosedError
from ._limiter_types import LimiterKey, LimiterPolicy, RateLimiter
from ._quota import Quota, RouteGroup
from ._redis_core import RedisLimiter
from ._redis_scripts import FIRST_CALL_TIMEOUTS, LINGER_TIMEOUTS
from ._redis_urls import RedisUrl, parse_redis_url

__all__ = ["RedisLimiterRegistry", "redis_client_from_url"]

_CONNECT_TIMEOUT: Final = 1.0
_ANSWER_TIMEOUT: Final = 1.0


def _retry() -> Retry:
    return Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2)


_Client = aioredis.Redis | aioredis.RedisCluster


def _made_client(parsed: RedisUrl, timeout: float) -> tuple[_Client, list[aioredis.Redis]]:
    """The client of ``parsed``, and the extra clients to close with it (Sentinel's).

    Its socket timeouts cover a call the limiter stopped waiting for (after ``timeout``) while it goes on in
    the background for `LINGER_TIMEOUTS` more, so a slow answer does not cost the connection.
    """
    user, password = parsed.username, parsed.password
    connect = max(_CONNECT_TIMEOUT, timeout * FIRST_CALL_TIMEOUTS)
    answer = max(_ANSWER_TIMEOUT, timeout * (1 + LINGER_TIMEOUTS))
    if parsed.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in parsed.nodes]
        cluster = aioredis.RedisCluster(
            startup_nodes=nodes, username=user, password=password,
            socket_connect_timeout=connect, socket_timeout=answer,
        )  # fmt: skip
        return cluster, []
    if parsed.kind == "sentinel":
        sentinel = aioredis.Sentinel(
            list(parsed.nodes), socket_connect_timeout=connect, socket_timeout=answer
        )
        master = sentinel.master_for(
            parsed.service_name, db=parsed.db, retry=_retry(), username=user, password=password,
            socket_connect_timeout=connect, socket_timeout=answer,
        )  # fmt: skip
        return master, list(sentinel.sentinels)
    client = aioredis.Redis.from_url(
        parsed.url, retry=_retry(), socket_connect_timeout=connect, socket_timeout=answer
    )
    return client, []


def redis_client_from_url(
    url: str, timeout: float = _ANSWER_TIMEOUT
) -> aioredis.Redis | aioredis.RedisCluster:
    """A client for the limiter: quick to give up (so the fallback starts quickly), quick to retry.

    Options in a single-server URL's query string (``?socket_timeout=2``) override these.

    Raises:
        ConfigurationError: the URL is not one of the documented forms, or redis-py refused it (the
            message never shows the URL).
    """
    return _client_from_url(url, timeout)[0]


def _client_from_url(url: str, timeout: float) -> tuple[_Client, list[aioredis.Redis]]:
    parsed = parse_redis_url(url)
    try:
        return _made_client(parsed, timeout)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"limiter= Redis URL: redis-py refused it ({type(exc).__name__}; the URL is not shown)"
        ) from None


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
    if value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class RedisLimiterRegistry:
    """Redis-backed limiters by (merchant, route group), for every process of a merchant.

    It implements the limiter registry protocol (``get`` and ``aclose``) on its own; it is not an in-memory
    registry.

    Args:
        redis: a URL (``redis://``, ``rediss://``, ``redis+unix://`` / ``unix://``, ``redis+sentinel://``,
            ``redis+cluster://``; the registry creates the client and closes it in
            [`aclose`][assetpay_async.redis_limiter.RedisLimiterRegistry.aclose]), or a
            ``redis.asyncio.Redis`` / ``redis.asyncio.RedisCluster`` you own (never closed here).
        key_prefix: prefix of every key (``<prefix>:limiter:<merchant>:<group>``,
            ``<prefix>:peers:<merchant>:<group>``; the merchant is ``{<merchant>}`` on a cluster).
        fallback: on a Redis failure, grant from the process's share of the quota (True) or raise
            [`LimiterBackendError`][assetpay_async.LimiterBackendError] (False).
        recheck_after: while Redis is failing, the longest time between tries to get it back.
        timeout: seconds one Redis call may take before it counts as a failure.
        heartbeat: seconds between a process's announcements to its peers.
        max_pause: the longest pause stored in Redis that an acquire believes (default: five quota
            periods). A 429's own pause arrives already bounded by the requester.
        max_processes: the most processes of a merchant; a process that starts while Redis is down grants
            from a 1/``max_processes`` share (None: it waits for Redis).
        outage_policy: ``"share"`` or ``"wait"`` (see
            [`RedisLimiter`][assetpay_async.redis_limiter.RedisLimiter]).

    Raises:
        ConfigurationError: a bad argument or URL (the message never shows the URL).
    """

    def __init__(
        self,
        redis: str | aioredis.Redis | aioredis.RedisCluster,
        *,
        key_prefix: str = "assetpay",
        fallback: bool = True,
        recheck_after: float = 5.0,
        timeout: float = 1.0,
        heartbeat: float = 1.0,
        max_pause: float | None = None,
        max_processes: int | None = None,
        outage_policy: str = "share",
    ) -> None:
        if not isinstance(key_prefix, str) or not key_prefix:
            raise ConfigurationError("key_prefix must be a non-empty string")
        if max_processes is not None and (
            isinstance(max_processes, bool)
            or not isinstance(max_processes, int)
            or max_processes < 1
        ):
            raise ConfigurationError(f"max_processes must be an int >= 1, got {max_processes!r}")
        if outage_policy not in ("share", "wait"):
            raise ConfigurationError(
                f"outage_policy must be 'share' or 'wait', got {outage_policy!r}"
            )
        self._options: dict[str, Any] = {
            "recheck_after": _seconds("recheck_after", recheck_after),
            "timeout": _seconds("timeout", timeout),
            "heartbeat": _seconds("heartbeat", heartbeat),
            "max_pause": max_pause,
            "max_processes": max_processes,
            "outage_policy": outage_policy,
            "fallback": bool(fallback),
        }
        self._extra_clients: list[aioredis.Redis] = []
        self._redis: _Client
        if isinstance(redis, str):
            self._redis, self._extra_clients = _client_from_url(redis, self._options["timeout"])
            self._owns_client = True
        elif isinstance(redis, aioredis.Redis | aioredis.RedisCluster):
            self._redis, self._owns_client = redis, False
        else:
            raise ConfigurationError(
                "redis must be a Redis URL or a redis.asyncio.Redis / RedisCluster client, "
                f"got {type(redis).__name__}"
            )
        self._key_prefix = key_prefix
        self._cluster = isinstance(self._redis, aioredis.RedisCluster)
        self._limiters: dict[LimiterKey, RedisLimiter] = {}
        self._closed = False

    @property
    def redis(self) -> aioredis.Redis | aioredis.RedisCluster:
        """The Redis client in use."""
        return self._redis

    def get(
        self,
        merchant_id: str,
        group: RouteGroup,
        quota: Quota,
        *,
        policy: LimiterPolicy = LimiterPolicy.EVEN,
        latency_margin: float = 1.0,
    ) -> RateLimiter:
        """The limiter of (merchant, group); the first configuration of a key in this registry wins."""
        if self._closed:
            raise SessionClosedError("this RedisLimiterRegistry is closed")
        key = LimiterKey(merchant_id, RouteGroup(group))
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = RedisLimiter(
                self._redis,
                merchant_id,
                key.group,
                quota,
                policy=policy,
                latency_margin=latency_margin,
                key_prefix=self._key_prefix,
                hash_tag=self._cluster,
                **self._options,
            )
        return limiter

    def clear(self) -> None:
        """Forget every limiter (their workers are cancelled; Redis keeps the shared schedule)."""
        for limiter in self._limiters.values():
            limiter.abandon()
        self._limiters.clear()

    async def aclose(self) -> None:
        """Stop every limiter, then close the Redis client if this registry created it from a URL. Idempotent."""
        if self._closed:
            return
        self._closed = True
        limiters = list(self._limiters.values())
        self._limiters.clear()
        for limiter in limiters:
            await limiter.aclose()
        if self._owns_client:
            await self._redis.aclose()
            for client in self._extra_clients:
                await client.aclose()

    def __repr__(self) -> str:
        return (
            f"<RedisLimiterRegistry prefix={self._key_prefix!r} limiters={len(self._limiters)} "
            f"fallback={self._options['fallback']} owns_client={self._owns_client} "
            f"cluster={self._cluster}>"
        )
