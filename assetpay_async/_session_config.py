"""The session's arguments, checked and built: quotas, timings, base URL, merchant secrets, the Requester.

Pure functions (no I/O, no loop) that [`AssetPaySession`][assetpay_async.AssetPaySession] calls in its
constructor, in the order it checks them: every bad argument is a ``ConfigurationError`` before any
registry is made. Messages never repeat a base URL or a secret.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable

import aiohttp
import attrs

from ._errors import ConfigurationError
from ._limiting import LimiterPolicy, LimiterRegistry, ServerModel, with_pacing_options
from ._minting import ApiKey, ApiSecret
from ._quota import MerchantTier, Quota, RouteGroup, default_quota
from ._read_pace import check_share
from ._transport import Requester, RetryPolicy

__all__ = [
    "SessionSettings",
    "merchant_secrets",
    "route_group",
    "session_quotas",
    "session_settings",
]


def route_group(group: RouteGroup | str) -> RouteGroup:
    """``group`` as a [`RouteGroup`][assetpay_async.RouteGroup].

    Raises:
        ConfigurationError: not a route group.
    """
    try:
        return RouteGroup(group)
    except ValueError:
        raise ConfigurationError(
            f"group must be one of {[g.value for g in RouteGroup]}, got {group!r}"
        ) from None


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


def _checked_base_url(base_url: object) -> str:
    """``base_url`` if it is a usable API root; the messages never repeat it (it may carry a secret)."""
    if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
        raise ConfigurationError("base_url must start with https:// or http://")
    problem = _base_url_problem(base_url)
    if problem is not None:
        base_url = ""  # out of this frame's locals: a traceback formatter may show them
        raise ConfigurationError(problem)
    return base_url


def _base_url_problem(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None or parts.password is not None:
            return (
                "base_url must not carry credentials (user:password@): AssetPay authenticates each "
                "call with the client token"
            )
        if not parts.hostname:
            return "base_url has no host"
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return "base_url is not a valid URL (a bad port or host)"
    return None


def merchant_secrets(api_key: object, api_secret: object) -> tuple[ApiKey | None, ApiSecret | None]:
    """The merchant's secrets in their redacting holders (ConfigurationError never shows them)."""
    if api_key is None:
        if api_secret is not None:
            raise ConfigurationError("api_secret needs api_key too (merchant mode)")
        return None, None
    key = ApiKey(api_key)  # type: ignore[arg-type]  # checked inside
    return key, None if api_secret is None else ApiSecret(api_secret)  # type: ignore[arg-type]


def session_quotas(
    tier: MerchantTier | str | None, cancel_quota: object, trades_quota: object
) -> tuple[MerchantTier | None, dict[RouteGroup, Quota]]:
    """The merchant's tier and the quota of every route group (``tier`` or ``cancel_quota`` required).

    Raises:
        ConfigurationError: neither ``tier`` nor ``cancel_quota``, an unknown tier, a quota that is not a
            [`Quota`][assetpay_async.Quota].
    """
    if tier is None and cancel_quota is None:
        raise ConfigurationError(
            "AssetPaySession needs tier=MerchantTier.VERIFIED/UNVERIFIED or cancel_quota=Quota(...): "
            "a guessed quota either draws 429s or wastes the merchant's capacity"
        )
    try:
        known = MerchantTier(tier) if tier is not None else None
    except ValueError:
        raise ConfigurationError(f"tier must be 'verified' or 'unverified', got {tier!r}") from None
    for name, quota in (("cancel_quota", cancel_quota), ("trades_quota", trades_quota)):
        if quota is not None and not isinstance(quota, Quota):
            raise ConfigurationError(f"{name} must be a Quota, got {type(quota).__name__}")
    assert cancel_quota is None or isinstance(cancel_quota, Quota)  # noqa: S101 - checked above
    assert trades_quota is None or isinstance(trades_quota, Quota)  # noqa: S101
    base = known or MerchantTier.UNVERIFIED
    return known, {
        RouteGroup.CANCEL_ITEM: cancel_quota or default_quota(base, RouteGroup.CANCEL_ITEM),
        RouteGroup.TRADES_READ: trades_quota or default_quota(base, RouteGroup.TRADES_READ),
        RouteGroup.MERCHANT_READ: default_quota(base, RouteGroup.MERCHANT_READ),
        RouteGroup.AUTH: default_quota(base, RouteGroup.AUTH),
    }


@attrs.frozen
class SessionSettings:
    """The session's checked settings: all but the quotas, the secrets and the limiter registry."""

    base_url: str
    """The API root without a trailing slash."""
    http_session: aiohttp.ClientSession | None
    timeout: float
    connect_timeout: float
    max_connections: int
    retry: RetryPolicy
    policy: LimiterPolicy
    latency_margin: float
    max_queue_wait: float | None
    read_share: float
    pacing: Callable[[LimiterRegistry], LimiterRegistry]
    """Turns the session's registry into one that asks for a measured margin or a server model."""

    def requester(self, registry: LimiterRegistry, quotas: dict[RouteGroup, Quota]) -> Requester:
        """The session's one request path, over the limiters of ``registry``."""
        return Requester(
            base_url=self.base_url,
            http_session=self.http_session,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            max_connections=self.max_connections,
            retry=self.retry,
            registry=self.pacing(registry),
            quotas=quotas,
            policy=self.policy,
            latency_margin=self.latency_margin,
            max_queue_wait=self.max_queue_wait,
        )


def session_settings(
    *,
    timeout: object,
    connect_timeout: object,
    limiter: object,
    latency_margin: object,
    server_model: ServerModel | str,
    max_queue_wait: float | None,
    max_connections: object,
    base_url: object,
    merchant_id: object,
    http_session: aiohttp.ClientSession | None,
    retry: RetryPolicy | None,
    wall_clock: object,
    policy: LimiterPolicy | str,
    poll_read_share: object,
) -> SessionSettings:
    """The checked settings of [`AssetPaySession`][assetpay_async.AssetPaySession]'s other arguments.

    Checked in the order of the parameters; ``limiter`` is only looked at (the session makes its registry
    after every check).

    Raises:
        ConfigurationError: the first bad argument (the base URL never in the message).
    """
    timeout, connect_timeout = (
        _seconds("timeout", timeout),
        _seconds("connect_timeout", connect_timeout),
    )
    pacing = with_pacing_options(
        limiter,
        latency_margin=latency_margin,  # type: ignore[arg-type]  # checked inside
        server_model=server_model,
    )
    if latency_margin is None or latency_margin == "measured":  # a fixed 1 s where not measured
        latency_margin = 1.0
    margin = _seconds("latency_margin", latency_margin, zero_ok=True)
    if max_queue_wait is not None:
        max_queue_wait = _seconds("max_queue_wait", max_queue_wait, zero_ok=True)
    connections = _connections(max_connections)
    try:
        url = _checked_base_url(base_url)
    except ConfigurationError:
        base_url = ""  # out of this frame's locals too: a traceback may show them
        raise
    _check_objects(merchant_id, http_session, retry, wall_clock)
    return SessionSettings(
        base_url=url.rstrip("/"),
        http_session=http_session,
        timeout=timeout,
        connect_timeout=connect_timeout,
        max_connections=connections,
        retry=retry or RetryPolicy(),
        policy=_policy(policy),
        latency_margin=margin,
        max_queue_wait=max_queue_wait,
        read_share=check_share(poll_read_share),
        pacing=pacing,
    )


def _connections(max_connections: object) -> int:
    if (
        isinstance(max_connections, bool)
        or not isinstance(max_connections, int)
        or max_connections < 1
    ):
        raise ConfigurationError("max_connections must be an int >= 1")
    return max_connections


def _check_objects(
    merchant_id: object, http_session: object, retry: object, wall_clock: object
) -> None:
    if merchant_id is not None and (not isinstance(merchant_id, str) or not merchant_id):
        raise ConfigurationError("merchant_id must be a non-empty string")
    if http_session is not None and not isinstance(http_session, aiohttp.ClientSession):
        raise ConfigurationError("http_session must be an aiohttp.ClientSession")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigurationError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
    if wall_clock is not None and not callable(wall_clock):
        raise ConfigurationError("wall_clock must be a callable returning a UTC datetime")


def _policy(policy: LimiterPolicy | str) -> LimiterPolicy:
    try:
        return LimiterPolicy(policy)
    except ValueError:
        raise ConfigurationError(
            f"policy must be one of {[p.value for p in LimiterPolicy]}, got {policy!r}"
        ) from None
