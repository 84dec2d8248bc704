"""AssetPaySession: one per merchant, shared by every coroutine; owns the HTTP session and the limiters."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import math
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import attrs

from . import _http
from ._client import AssetPayClient
from ._errors import InvalidRequestError, MerchantMismatchError, SessionClosedError
from ._limiting import LimiterPolicy, LimiterRegistry, LimiterStats, RateLimiter, default_registry
from ._protocol import RequestSpec
from ._quota import MerchantTier, Quota, RouteGroup, default_quota
from ._tokens import SecretToken, merchant_of
from ._trade_routes import TradeRoutes

__all__ = ["DEFAULT_BASE_URL", "AssetPaySession", "RetryPolicy"]

DEFAULT_BASE_URL: Final = "https://api.assetpay.gg"


@attrs.frozen
class RetryPolicy:
    """Retries after a connection failure or a lost response (never after a 5xx, a 4xx or cancellation).

    Attributes:
        max_retries: retries after the first attempt.
        backoff_base: the first retry waits up to this many seconds; each further one doubles it.
        backoff_cap: no single wait exceeds this.
        max_rate_limited_wait: after 429s a call goes back into the limiter's queue; once it has spent this
            many seconds paused by 429s, it raises :class:`RateLimitedError` instead.
    """

    max_retries: int = 3
    backoff_base: float = 0.2
    backoff_cap: float = 5.0
    max_rate_limited_wait: float = 300.0


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class _LoopBinding:
    """The HTTP session of one event loop, closed when that loop is shut down by ``asyncio.run``."""

    __slots__ = ("http", "loop", "owned", "request_options", "sentinel", "slots")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        http: aiohttp.ClientSession,
        owned: bool,
        slots: int,
        request_options: Mapping[str, Any],
    ) -> None:
        self.loop = loop
        self.http = http
        self.owned = owned
        self.request_options = request_options
        # Taken before the request timeout starts, so waiting for a pooled connection is not a timeout.
        self.slots = asyncio.Semaphore(slots)
        self.sentinel: AsyncIterator[None] | None = None


async def _close_at_loop_shutdown(binding: _LoopBinding) -> AsyncIterator[None]:
    # asyncio.run() calls loop.shutdown_asyncgens() before closing the loop, which closes this generator:
    # the HTTP session goes down with its loop instead of leaking sockets into the next asyncio.run().
    try:
        yield
    finally:
        if binding.owned and not binding.http.closed:
            await binding.http.close()


class AssetPaySession:
    """The SDK's entry point: one per merchant, shared by every coroutine of that merchant.

    It owns one :class:`aiohttp.ClientSession` (created lazily inside a coroutine) and routes every HTTP
    attempt through a limiter keyed by merchant and route group that mirrors AssetPay's shared quota.

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
        retry: the retry policy.
        policy: the limiter's spacing policy.
        latency_margin: J, seconds of spread between our grant and the server's count (default 1 s).
        max_queue_wait: default bound on the time a call may wait for quota (None waits as long as needed).
        redis: a Redis URL or a ``redis.asyncio.Redis`` you own: share the quota across processes and hosts
            (extra ``assetpay-async[redis]``; a client you pass is never closed by the SDK).
        redis_key_prefix: the prefix of the limiter's Redis keys.
        redis_fallback: when Redis fails, pace with the in-memory limiter and log a WARNING (default), or
            raise :class:`LimiterBackendError` (nothing sent, no quota spent).
        limiter_registry: the registry of limiters (default: the process-wide one).
        wall_clock: the current UTC datetime, compared with AssetPay's timestamps (a trade's ``createdAt``)
            to know when an item becomes old enough to cancel; inject the sandbox's clock in tests.
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
        redis: Any = None,
        redis_key_prefix: str = "assetpay",
        redis_fallback: bool = True,
        limiter_registry: LimiterRegistry | None = None,
        wall_clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if tier is None and cancel_quota is None:
            raise InvalidRequestError(
                "AssetPaySession needs tier=MerchantTier.VERIFIED/UNVERIFIED or cancel_quota=Quota(...): "
                "a guessed quota either draws 429s or wastes the merchant's capacity"
            )
        self._tier = MerchantTier(tier) if tier is not None else None
        self._quotas: dict[RouteGroup, Quota] = {
            RouteGroup.CANCEL_ITEM: cancel_quota
            or default_quota(self._tier or MerchantTier.UNVERIFIED, RouteGroup.CANCEL_ITEM),
            RouteGroup.TRADES_READ: trades_quota
            or default_quota(self._tier or MerchantTier.UNVERIFIED, RouteGroup.TRADES_READ),
        }
        for name, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InvalidRequestError(f"{name} must be a positive number of seconds")
        if not (isinstance(latency_margin, int | float) and 0 <= latency_margin < math.inf):
            raise InvalidRequestError("latency_margin must be a finite number of seconds >= 0")
        if (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or max_connections < 1
        ):
            raise InvalidRequestError("max_connections must be an int >= 1")
        if not base_url.startswith(("https://", "http://")):
            raise InvalidRequestError("base_url must start with https:// or http://")
        if merchant_id is not None and (not isinstance(merchant_id, str) or not merchant_id):
            raise InvalidRequestError("merchant_id must be a non-empty string")
        self._merchant_id = merchant_id
        self._base_url = base_url.rstrip("/")
        self._external_http = http_session
        self._timeout = float(timeout)
        self._client_timeout = aiohttp.ClientTimeout(
            total=float(timeout), connect=float(connect_timeout)
        )
        self._max_connections = max_connections
        self._retry = retry or RetryPolicy()
        self._policy = LimiterPolicy(policy)
        self._latency_margin = float(latency_margin)
        self._max_queue_wait = max_queue_wait
        if redis is not None and limiter_registry is None:
            from .redis_limiter import RedisLimiterRegistry  # noqa: PLC0415 (the optional [redis] extra)

            self._redis_registry: RedisLimiterRegistry | None = RedisLimiterRegistry(
                redis, key_prefix=redis_key_prefix, fallback=redis_fallback
            )
        else:
            self._redis_registry = None
        self._registry = limiter_registry or self._redis_registry or default_registry()
        self._wall_clock = wall_clock or _utc_now
        self._binding: _LoopBinding | None = None
        self._state = _State.UNOPENED
        self._trade_routes = TradeRoutes()  # read by AssetPayClient.get_trade

    # -- public ---------------------------------------------------------------------------------------

    def client(self, token: str) -> AssetPayClient:
        """A cheap handle bound to one end user's client token.

        Raises:
            MerchantMismatchError: the token belongs to another merchant than this session's.
            InvalidRequestError: an opaque token while the session has no ``merchant_id``.
        """
        self._check_open()
        secret = SecretToken(token)
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
        return AssetPayClient(self, secret, merchant)

    @property
    def merchant_id(self) -> str | None:
        """The merchant this session serves (None until the first token names it)."""
        return self._merchant_id

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def base_url(self) -> str:
        return self._base_url

    def quota(self, group: RouteGroup | str) -> Quota:
        """The quota this session paces ``group`` to."""
        return self._quotas[RouteGroup(group)]

    def limiter_stats(self, group: RouteGroup | str = RouteGroup.CANCEL_ITEM) -> LimiterStats:
        """Counters of this merchant's limiter for ``group`` (shared with every session of the merchant)."""
        if self._merchant_id is None:
            raise InvalidRequestError("the session has no merchant yet: create a client first")
        return self._limiter(self._merchant_id, RouteGroup(group)).stats()

    async def aclose(self) -> None:
        """Close the HTTP session if the SDK owns it. Idempotent."""
        self._state = _State.CLOSED
        binding, self._binding = self._binding, None
        if binding is not None:
            if binding.sentinel is not None:
                await binding.sentinel.aclose()  # type: ignore[attr-defined]
            if binding.owned and not binding.http.closed:
                await binding.http.close()
        await self._close_limiters()

    async def __aenter__(self) -> Self:
        self._check_open()
        await self._ensure_http()
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
            f"<AssetPaySession merchant={self._merchant_id!r} state={self._state.value} "
            f"cancel_quota={quota.limit}/{quota.period_seconds:g}s policy={self._policy.value}>"
        )

    def __del__(self, _warn: Any = warnings.warn) -> None:
        binding = getattr(self, "_binding", None)
        if binding is not None and binding.owned and not binding.http.closed:
            _warn(
                f"unclosed {self!r}: use 'async with AssetPaySession(...)' or await aclose()",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )

    # -- used by AssetPayClient -----------------------------------------------------------------------

    @property
    def wall_clock(self) -> Callable[[], dt.datetime]:
        return self._wall_clock

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    @property
    def default_max_queue_wait(self) -> float | None:
        return self._max_queue_wait

    def limiter_for(self, merchant_id: str, group: RouteGroup) -> RateLimiter:
        self._check_open()  # before a call takes quota it could never use
        return self._limiter(merchant_id, group)

    async def send(self, spec: RequestSpec, headers: Mapping[str, str]) -> _http.RawResponse:
        """One attempt on the wire; the caller has already been granted quota."""
        binding = self._binding
        if (
            binding is None
            or binding.loop is not asyncio.get_running_loop()
            or binding.http.closed
            or self._state is _State.CLOSED
        ):
            binding = await self._ensure_http()
        async with binding.slots:
            self._check_open()
            return await _http.send(
                binding.http,
                self._base_url + spec.path,
                spec,
                headers,
                timeout=self._timeout,
                options=binding.request_options,
            )

    # -- internals ------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise SessionClosedError("this AssetPaySession is closed; create a new one")

    def _limiter(self, merchant_id: str, group: RouteGroup) -> RateLimiter:
        return self._registry.get(
            merchant_id,
            group,
            self._quotas[group],
            policy=self._policy,
            latency_margin=self._latency_margin,
        )

    async def _close_limiters(self) -> None:
        # Stops the limiters' workers; closes the Redis client only if the registry made it from a URL.
        if self._redis_registry is not None:
            await self._redis_registry.aclose()

    async def _ensure_http(self) -> _LoopBinding:
        self._check_open()
        loop = asyncio.get_running_loop()
        binding = self._binding
        if binding is not None and binding.loop is loop and not binding.http.closed:
            return binding
        if binding is not None and binding.loop is not loop and binding.loop.is_running():
            raise SessionClosedError(
                "this AssetPaySession is in use on another event loop that is still running; "
                "create one session per event loop"
            )
        if self._external_http is not None:
            http = self._external_http
            if http.closed:
                raise SessionClosedError(
                    "the aiohttp.ClientSession passed as http_session is closed"
                )
            http_loop = getattr(http, "_loop", loop)
            if http_loop is not loop:
                raise SessionClosedError(
                    "the aiohttp.ClientSession passed as http_session belongs to another event loop"
                )
            binding = _LoopBinding(
                loop,
                http,
                owned=False,
                slots=self._max_connections,
                request_options=_http.per_request_options(self._client_timeout),
            )
        else:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            http = aiohttp.ClientSession(
                connector=connector,
                timeout=self._client_timeout,
                skip_auto_headers=_http.SKIP_AUTO_HEADERS,
                raise_for_status=False,
            )
            binding = _LoopBinding(
                loop, http, owned=True, slots=self._max_connections, request_options={}
            )
            sentinel = _close_at_loop_shutdown(binding)
            await anext(sentinel)
            binding.sentinel = sentinel
        self._binding = binding
        self._state = _State.OPEN
        return binding
