"""AssetPaySession: one per merchant, shared by every coroutine; holds the request path and its limiters."""

from __future__ import annotations

import datetime as dt
import sys
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import aiohttp

from ._client import AssetPayClient
from ._errors import (
    ConfigurationError,
    InvalidRequestError,
    SessionClosedError,
)
from ._limiting import (
    LimiterPolicy,
    LimiterRegistry,
    LimiterStats,
    ServerModel,
    default_registry,
)
from ._merchant import MerchantAuth, MerchantClient, MerchantScope
from ._minting import ApiKey, ApiSecret, end_user
from ._poller import SessionPollers
from ._quota import MerchantTier, Quota, RouteGroup
from ._read_pace import DEFAULT_READ_SHARE
from ._redis_urls import SCHEMES as REDIS_URL_SCHEMES
from ._session_config import merchant_secrets, route_group, session_quotas, session_settings
from ._tokens import SecretToken, token_merchant
from ._transport import RetryPolicy

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from .redis_limiter import RedisLimiterRegistry

__all__ = ["DEFAULT_BASE_URL", "AssetPaySession", "RetryPolicy"]

DEFAULT_BASE_URL: Final = "https://api.assetpay.gg"
"""AssetPay's production API root: the default ``base_url`` of [`AssetPaySession`][assetpay_async.AssetPaySession]."""
_REDIS_SCHEMES: Final = tuple(f"{scheme}://" for scheme in REDIS_URL_SCHEMES)


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
        latency_margin: J, seconds of spread between our grant and the server's count, or ``"measured"``:
            J follows the send-to-answer times this process sees (a high percentile of their spread, 0.1 s
            at least; 1 s until 20 answers were seen; in-memory limiter only). None (default): measured
            with the in-memory limiter, a fixed 1 s with Redis or a registry of your own, which cannot
            measure. A number keeps J fixed. ``docs/limiter.md`` compares them.
        server_model: how AssetPay counts, if you know it (see [`ServerModel`][assetpay_async.ServerModel]):
            a declared sliding log, fixed window or bucket of N lets grants go (T + J) / N apart instead of
            (T + J) / (N - 1). The default, ``"unknown"``, is safe against every windowed server
            (in-memory limiter only).
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
            to know when an item becomes old enough to cancel; inject the sandbox's clock in tests. Merchant
            mode also mints and renews client tokens by it.
        api_key: the merchant's API key (``ap_...``): turns on merchant mode
            ([`client_for`][assetpay_async.AssetPaySession.client_for], ``session.merchant``). Never shown.
        api_secret: the merchant's API secret: client tokens are then minted locally (no request, no
            quota); without it each end user's token comes from ``POST /auth/authenticate-client``. Never
            shown. Needs ``api_key``.
        poll_read_share: the share of the trades-read quota the shared poller of ``wait_for_items`` may
            spend (default half), so that it never eats the quota other readers of the merchant share;
            above 0, at most 1.

    Raises:
        ConfigurationError: a bad argument (an unknown ``tier`` or ``policy``, a non-positive ``timeout``,
            a ``limiter`` that is neither a registry nor Redis, an unknown ``server_model``, a
            ``poll_read_share`` outside (0, 1], a measured
            margin or declared server model with a Redis limiter, ...), or neither ``tier`` nor
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
        latency_margin: float | str | None = None,
        max_queue_wait: float | None = None,
        limiter: LimiterRegistry | str | aioredis.Redis | aioredis.RedisCluster | None = None,
        wall_clock: Callable[[], dt.datetime] | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        server_model: ServerModel | str = ServerModel.UNKNOWN,
        poll_read_share: float = DEFAULT_READ_SHARE,
    ) -> None:
        self._tier, self._quotas = session_quotas(tier, cancel_quota, trades_quota)
        merchant_key, merchant_secret = merchant_secrets(api_key, api_secret)
        del api_key, api_secret  # from here on only the redacting holders
        try:
            settings = session_settings(
                timeout=timeout,
                connect_timeout=connect_timeout,
                limiter=limiter,
                latency_margin=latency_margin,
                server_model=server_model,
                max_queue_wait=max_queue_wait,
                max_connections=max_connections,
                base_url=base_url,
                merchant_id=merchant_id,
                http_session=http_session,
                retry=retry,
                wall_clock=wall_clock,
                policy=policy,
                poll_read_share=poll_read_share,
            )
        except ConfigurationError:
            base_url = ""  # out of this frame's locals too: a traceback may show them
            raise
        registry, self._made_registry = _registry_of(limiter)
        self._merchant_id = merchant_id
        self._base_url, self._policy = settings.base_url, settings.policy
        self._wall_clock = wall_clock or _utc_now
        self._requester = settings.requester(registry, self._quotas)
        self._auth: MerchantAuth | None = None
        self._merchant_scope: MerchantScope | None = None
        if merchant_key is not None:
            self._merchant_mode(merchant_key, merchant_secret)
        self._trade_pollers = SessionPollers(settings.read_share, self._merchant_scope)
        """The pollers of ``wait_for_items``, one per merchant; closed with the session."""

    def _merchant_mode(self, key: ApiKey, secret: ApiSecret | None) -> None:
        """Merchant mode: the auth that issues every end user's token, and ``session.merchant``."""
        self._auth = MerchantAuth(
            self._requester,
            key,
            api_secret=secret,
            merchant_id=self._merchant_id,
            unix_now=lambda: self._wall_clock().timestamp(),
            on_merchant=self._learn_merchant,
        )
        self._merchant_scope = MerchantScope(self._requester, self._auth)

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
        try:
            secret = SecretToken(token)
        finally:
            del (
                token
            )  # only the redacting holder from here on, refused or not: tracebacks show locals
        merchant = token_merchant(secret, self._merchant_id, what="client token")
        if self._merchant_id is None:
            self._merchant_id = merchant
            if self._auth is not None and self._auth.merchant_id is None:
                self._auth.merchant_id = merchant
        return AssetPayClient(self, self._requester, secret, merchant)

    def client_for(
        self,
        steam_id: str,
        trade_url: str,
        *,
        client_id: str | None = None,
        client_data: dict[str, Any] | None = None,
    ) -> AssetPayClient:
        """Merchant mode: a client of one end user whose token this session issues and renews.

        The token is minted locally with the API secret (HS256, 24 hours) or, without the secret, asked of
        ``POST /auth/authenticate-client``; it is cached per end user (the same claims give the same
        token), renewed 5 minutes before it expires by one issuance shared by every concurrent caller, and
        re-issued once, the call replayed once, when AssetPay answers INVALID_TOKEN. Every client of the
        session shares the merchant's limiters. Nothing is sent here: the first call issues the token.

        Args:
            steam_id: the end user's SteamID64 (``76561`` and 12 digits).
            trade_url: the user's Steam trade offer URL
                (``https://steamcommunity.com/tradeoffer/new/?partner=...&token=...``).
            client_id: your id of the user (1-128 characters; stored on trades as ``externalClientUserId``).
            client_data: ``totalWager``, ``registrationDate``, ``kycHash``, ``kycLevel``, ``fiatDeposits``,
                ``cryptoDeposits``.

        Raises:
            ConfigurationError: the session has no ``api_key``.
            InvalidRequestError: a bad Steam id, trade URL, ``client_id`` or ``client_data``, before
                anything is sent.
        """
        self._requester.check_open()
        auth = self._auth
        if auth is None:
            raise ConfigurationError(
                "client_for needs merchant mode: AssetPaySession(api_key=..., api_secret=...)"
            )
        user = end_user(steam_id, trade_url, client_id=client_id, client_data=client_data)
        return MerchantClient(self, self._requester, auth, auth.source_for(user))

    @property
    def merchant(self) -> MerchantScope:
        """The merchant scope (``api-key``): reads of the merchant's trades by refs and cancels of its own
        buys. See [`MerchantScope`][assetpay_async.MerchantScope].

        Raises:
            ConfigurationError: the session has no ``api_key``.
        """
        if self._merchant_scope is None:
            raise ConfigurationError("session.merchant needs AssetPaySession(api_key=...)")
        return self._merchant_scope

    def _learn_merchant(self, merchant_id: str) -> None:
        if self._merchant_id is None:
            self._merchant_id = merchant_id

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
        """The quota this session paces ``group`` to.

        Raises:
            ConfigurationError: ``group`` is not a route group.
        """
        return self._quotas[route_group(group)]

    def limiter_stats(self, group: RouteGroup | str = RouteGroup.CANCEL_ITEM) -> LimiterStats:
        """Counters of this merchant's limiter for ``group`` (shared with every session of the merchant)."""
        if self._merchant_id is None:
            raise InvalidRequestError("the session has no merchant yet: create a client first")
        return self._requester.limiter(self._merchant_id, route_group(group)).stats()

    async def aclose(self) -> None:
        """Close the session. Idempotent.

        Calls of this session still waiting for quota end at once with
        [`SessionClosedError`][assetpay_async.SessionClosedError] (``ambiguous`` when an earlier attempt of
        the call may have reached AssetPay) and leave the merchant's queue, so other sessions of the
        merchant move up. The HTTP session is closed if the SDK created it, and the Redis limiter registry
        if the session made it from ``limiter=``. Waiters of ``wait_for_items`` and ``wait_for_item`` end at
        once with ``SessionClosedError`` (their outcomes hold it), not at their next poll.
        """
        await self._trade_pollers.aclose(
            SessionClosedError("the session was closed while waiting for items to become final")
        )
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
        if not hasattr(
            self, "_requester"
        ):  # a constructor that refused an argument: locals may show it
            return "<AssetPaySession (not configured)>"
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
