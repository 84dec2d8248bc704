"""AssetPaySession: one per merchant, shared by every coroutine; holds the request path and its limiters."""

from __future__ import annotations

import datetime as dt
import math
import sys
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import aiohttp

from ._client import AssetPayClient
from ._errors import ConfigurationError, InvalidRequestError, MerchantMismatchError
from ._limiting import LimiterPolicy, LimiterRegistry, LimiterStats, default_registry
from ._quota import MerchantTier, Quota, RouteGroup, default_quota
from ._tokens import SecretToken, merchant_of
from ._transport import Requester, RetryPolicy

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from .redis_limiter import RedisLimiterRegistry

__all__ = ["DEFAULT_BASE_URL", "AssetPaySession", "RetryPolicy"]

DEFAULT_BASE_URL: Final = "https://api.assetpay.gg"
_REDIS_SCHEMES: Final = (
    "redis://",
    "rediss://",
    "unix://",
    "redis+unix://",
    "redis+sentinel://",
    "redis+cluster://",
)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _is_redis_client(value: object) -> bool:
    # A client can only exist if its module was imported: no import of the optional extra here.
    # A RedisCluster is no Redis subclass: without it here, it was taken for a LimiterRegistry.
    module = sys.modules.get("redis.asyncio")
    return module is not None and isinstance(value, module.Redis | module.RedisCluster)


def _registry_of(limiter: object) -> tuple[LimiterRegistry, RedisLimiterRegistry | None]:
    """The registry ``limiter=`` stands for, and the Redis registry the session made (and so closes)."""
    if limiter is None:
        return default_registry(), None
    if isinstance(limiter, str) or _is_redis_client(limiter):
        if isinstance(limiter, str) and not limiter.lower().startswith(_REDIS_SCHEMES):
            raise ConfigurationError(
                "limiter= as a string must be a Redis URL (" + ", ".join(_REDIS_SCHEMES) + ")"
            )
        try:
            from .redis_limiter import RedisLimiterRegistry  # noqa: PLC0415 (the optional [redis] extra)
        except ImportError:
            raise ConfigurationError(
                "limiter= a Redis URL needs the redis extra: pip install 'assetpay-async[redis]'"
            ) from None
        made = RedisLimiterRegistry(
            limiter,  # type: ignore[arg-type]  # a URL or a redis.asyncio.Redis, checked above
            key_prefix="assetpay",
            fallback=True,
        )
        return made, made
    if isinstance(limiter, LimiterRegistry):  # runtime-checkable: has get() and aclose()
        return limiter, None
    raise ConfigurationError(
        f"limiter= must be a limiter registry, a Redis URL or a redis.asyncio.Redis client, "
        f"got {type(limiter).__name__}"
    )


def _seconds(name: str, value: object, *, zero_ok: bool = False) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value >= 0 if zero_ok else value > 0)
    )
    if not ok:
        bound = ">= 0" if zero_ok else "> 0"
        raise ConfigurationError(
            f"{name} must be a finite number of seconds {bound}, got {value!r}"
        )
    return float(value)  # type: ignore[arg-type]


class AssetPaySession:
    """The SDK's entry point: one per merchant, shared by every coroutine of that merchant.

    It holds the request path (one ``aiohttp.ClientSession``, created lazily inside a coroutine) and routes
    every HTTP attempt through a limiter keyed by merchant and route group that mirrors AssetPay's shared
    quota. ``docs/architecture.md`` follows one call through it.

    Args:
        tier: the merchant's verification status; sets the published quotas (60 or 10 cancels a minute).
        cancel_quota: the cancel quota, overriding the tier's. ``tier`` or this is required: a wrong quota
            either draws 429s or wastes capacity, so there is no silent default.
        trades_quota: the trades-read quota; defaults to the tier's, else the unverified 30 a minute.
        merchant_id: the merchant this session serves. Read from the first token when omitted; required
            for opaque (non-JWT) tokens.
        base_url: AssetPay's API root.
        http_session: your own ``aiohttp.ClientSession``; the SDK uses it and never closes it.
        timeout: seconds for one attempt on the wire (queueing for quota or a connection is not counted).
        connect_timeout: seconds to establish a connection.
        max_connections: connections to AssetPay at once (also the connector's limit when the SDK owns it).
        retry: the retry policy, including how long 429s may hold a call and the longest ``Retry-After``
            believed.
        policy: the limiter's spacing policy.
        latency_margin: J, seconds of spread between our grant and the server's count (default 1 s).
        max_queue_wait: default bound on the time a call may wait for quota (None waits as long as needed).
        limiter: where the merchant's limiters come from. None (default): the process-wide in-memory
            registry, shared by every session of the process. A Redis URL (``redis://``, ``rediss://``,
            ``unix://``) or a ``redis.asyncio.Redis`` client: share the quota across processes and hosts
            through ``RedisLimiterRegistry(limiter, key_prefix="assetpay", fallback=True)`` (extra
            ``assetpay-async[redis]``); the session closes that registry, and the client only if it made it
            from a URL. Or any object of the limiter registry protocol (``get`` and ``aclose``), for
            instance a ``MemoryLimiterRegistry()`` of its own or a ``RedisLimiterRegistry`` built with
            another key prefix or ``fallback=False``: you own it and close it.
        wall_clock: the current UTC datetime, compared with AssetPay's timestamps (a trade's ``createdAt``)
            to know when an item becomes old enough to cancel; inject the sandbox's clock in tests.

    Raises:
        ConfigurationError: a bad argument (an unknown ``tier`` or ``policy``, a non-positive ``timeout``,
            a ``limiter`` that is neither a registry nor Redis, ...), or neither ``tier`` nor
            ``cancel_quota``.
    """

    def __init__(
        self,
        *,
        tier: MerchantTier | str | None = None,
        cancel_quota: Quota | None = None,
        trades_quota: Quota | None = None,
        merchant_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        http_session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_connections: int = 100,
        retry: RetryPolicy | None = None,
        policy: LimiterPolicy | str = LimiterPolicy.EVEN,
        latency_margin: float = 1.0,
        max_queue_wait: float | None = None,
        limiter: LimiterRegistry | str | aioredis.Redis | aioredis.RedisCluster | None = None,
        wall_clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if tier is None and cancel_quota is None:
            raise ConfigurationError(
                "AssetPaySession needs tier=MerchantTier.VERIFIED/UNVERIFIED or cancel_quota=Quota(...): "
                "a guessed quota either draws 429s or wastes the merchant's capacity"
            )
        try:
            self._tier = MerchantTier(tier) if tier is not None else None
        except ValueError:
            raise ConfigurationError(
                f"tier must be 'verified' or 'unverified', got {tier!r}"
            ) from None
        for name, quota in (("cancel_quota", cancel_quota), ("trades_quota", trades_quota)):
            if quota is not None and not isinstance(quota, Quota):
                raise ConfigurationError(f"{name} must be a Quota, got {type(quota).__name__}")
        self._quotas: dict[RouteGroup, Quota] = {
            RouteGroup.CANCEL_ITEM: cancel_quota
            or default_quota(self._tier or MerchantTier.UNVERIFIED, RouteGroup.CANCEL_ITEM),
            RouteGroup.TRADES_READ: trades_quota
            or default_quota(self._tier or MerchantTier.UNVERIFIED, RouteGroup.TRADES_READ),
        }
        timeout = _seconds("timeout", timeout)
        connect_timeout = _seconds("connect_timeout", connect_timeout)
        latency_margin = _seconds("latency_margin", latency_margin, zero_ok=True)
        if max_queue_wait is not None:
            max_queue_wait = _seconds("max_queue_wait", max_queue_wait, zero_ok=True)
        if (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or max_connections < 1
        ):
            raise ConfigurationError("max_connections must be an int >= 1")
        if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
            raise ConfigurationError("base_url must start with https:// or http://")
        if merchant_id is not None and (not isinstance(merchant_id, str) or not merchant_id):
            raise ConfigurationError("merchant_id must be a non-empty string")
        if http_session is not None and not isinstance(http_session, aiohttp.ClientSession):
            raise ConfigurationError("http_session must be an aiohttp.ClientSession")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        if wall_clock is not None and not callable(wall_clock):
            raise ConfigurationError("wall_clock must be a callable returning a UTC datetime")
        try:
            self._policy = LimiterPolicy(policy)
        except ValueError:
            raise ConfigurationError(
                f"policy must be one of {[p.value for p in LimiterPolicy]}, got {policy!r}"
            ) from None
        registry, self._made_registry = _registry_of(limiter)
        self._merchant_id = merchant_id
        self._base_url = base_url.rstrip("/")
        self._wall_clock = wall_clock or _utc_now
        self._requester = Requester(
            base_url=self._base_url,
            http_session=http_session,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            retry=retry or RetryPolicy(),
            registry=registry,
            quotas=self._quotas,
            policy=self._policy,
            latency_margin=latency_margin,
            max_queue_wait=max_queue_wait,
        )

    # -- public ---------------------------------------------------------------------------------------

    def client(self, token: str) -> AssetPayClient:
        """A cheap handle bound to one end user's client token.

        Raises:
            InvalidRequestError: a token that is empty, too long, or carries a character an HTTP header
                cannot (a control character, whitespace inside it, non-ASCII), before any quota is spent;
                or an opaque token while the session has no ``merchant_id``. The token is never in the
                message.
            MerchantMismatchError: the token belongs to another merchant than this session's.
        """
        self._requester.check_open()
        secret = SecretToken(token)
        del token  # from here on only the redacting holder: tracebacks may show locals
        merchant = merchant_of(secret)
        if merchant is None:
            if self._merchant_id is None:
                raise InvalidRequestError(
                    f"client token {secret.fingerprint} is not a JWT naming its merchant; "
                    "pass merchant_id= to AssetPaySession"
                )
            merchant = self._merchant_id
        elif self._merchant_id is None:
            self._merchant_id = merchant
        elif merchant != self._merchant_id:
            raise MerchantMismatchError(
                f"client token {secret.fingerprint} belongs to merchant {merchant!r}, but this session "
                f"serves {self._merchant_id!r}: use one AssetPaySession per merchant"
            )
        return AssetPayClient(self, self._requester, secret, merchant)

    @property
    def merchant_id(self) -> str | None:
        """The merchant this session serves (None until the first token names it)."""
        return self._merchant_id

    @property
    def closed(self) -> bool:
        """Whether [`aclose`][assetpay_async.AssetPaySession.aclose] was called."""
        return self._requester.closed

    @property
    def base_url(self) -> str:
        """AssetPay's API root this session calls."""
        return self._base_url

    @property
    def wall_clock(self) -> Callable[[], dt.datetime]:
        """The clock compared with AssetPay's timestamps (the ``wall_clock`` argument, else UTC now)."""
        return self._wall_clock

    def quota(self, group: RouteGroup | str) -> Quota:
        """The quota this session paces ``group`` to."""
        return self._quotas[RouteGroup(group)]

    def limiter_stats(self, group: RouteGroup | str = RouteGroup.CANCEL_ITEM) -> LimiterStats:
        """Counters of this merchant's limiter for ``group`` (shared with every session of the merchant)."""
        if self._merchant_id is None:
            raise InvalidRequestError("the session has no merchant yet: create a client first")
        return self._requester.limiter(self._merchant_id, RouteGroup(group)).stats()

    async def aclose(self) -> None:
        """Close the session. Idempotent.

        Calls of this session still waiting for quota end at once with
        [`SessionClosedError`][assetpay_async.SessionClosedError] (``ambiguous`` when an earlier attempt of
        the call may have reached AssetPay) and leave the merchant's queue, so other sessions of the
        merchant move up. The HTTP session is closed if the SDK created it, and the Redis limiter registry
        if the session made it from ``limiter=``.
        """
        await self._requester.aclose()
        made, self._made_registry = self._made_registry, None
        if made is not None:
            await made.aclose()

    async def __aenter__(self) -> Self:
        await self._requester.ensure_http()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        quota = self._quotas[RouteGroup.CANCEL_ITEM]
        return (
            f"<AssetPaySession merchant={self._merchant_id!r} state={self._requester.state} "
            f"cancel_quota={quota.limit}/{quota.period_seconds:g}s policy={self._policy.value}>"
        )

    def __del__(self, _warn: Any = warnings.warn) -> None:
        requester = getattr(self, "_requester", None)
        if requester is not None and requester.owns_open_http:
            _warn(
                f"unclosed {self!r}: use 'async with AssetPaySession(...)' or await aclose()",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )
