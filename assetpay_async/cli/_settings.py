"""How the command reaches AssetPay: token, tier or quota, base URL, Redis, merchant id, from options or environment.

The token is held in a `SecretToken` from the moment it is read: nothing here can print it.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from typing import Final

import attrs

from assetpay_async._client import AssetPayClient
from assetpay_async._errors import ConfigurationError, InvalidRequestError
from assetpay_async._minting import ApiKey, ApiSecret
from assetpay_async._quota import MerchantTier, Quota
from assetpay_async._redis_urls import SCHEMES as REDIS_URL_SCHEMES
from assetpay_async._session import DEFAULT_BASE_URL, AssetPaySession
from assetpay_async._tokens import SecretToken
from assetpay_async._transport import RetryPolicy

from ._secrets import looks_secret

__all__ = [
    "ENV_API_KEY",
    "ENV_API_SECRET",
    "ENV_BASE_URL",
    "ENV_MERCHANT_ID",
    "ENV_REDIS_URL",
    "ENV_TIER",
    "ENV_TOKEN",
    "Connection",
    "SettingsError",
    "connection_from",
    "parse_quota",
]

ENV_TOKEN: Final = "ASSETPAY_CLIENT_TOKEN"  # noqa: S105 - the variable's name, not a token
ENV_TIER: Final = "ASSETPAY_TIER"
ENV_BASE_URL: Final = "ASSETPAY_BASE_URL"
ENV_REDIS_URL: Final = "ASSETPAY_REDIS_URL"
ENV_MERCHANT_ID: Final = "ASSETPAY_MERCHANT_ID"
ENV_API_KEY: Final = "ASSETPAY_API_KEY"
ENV_API_SECRET: Final = "ASSETPAY_API_SECRET"  # noqa: S105 - the variable's name, not a secret

_QUOTA: Final = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d*)?|\.\d+)\s*s?\s*")


class SettingsError(ValueError):
    """A missing or contradictory setting; the command stops before sending anything."""


def parse_quota(text: str) -> Quota:
    """``"60/60"`` (60 requests per 60 s) or ``"60/3.5s"`` as a [`Quota`][assetpay_async.Quota].

    Raises:
        argparse.ArgumentTypeError: anything else (argparse turns it into a usage error).
    """
    match = _QUOTA.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected LIMIT/SECONDS such as 60/60, got {text!r}")
    try:
        return Quota(int(match[1]), float(match[2]))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_margin(text: str) -> float:
    """A latency margin in seconds: finite and >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError("the latency margin must be a finite number >= 0")
    return value


@attrs.frozen
class Connection:
    """Everything needed to open an [`AssetPaySession`][assetpay_async.AssetPaySession] and a client for the token.

    Attributes:
        token: the client token (its repr is a fingerprint).
        tier: the merchant's tier, if given.
        cancel_quota: an explicit cancel quota (overrides the tier's).
        base_url: AssetPay's API root.
        redis_url: share the quota with other processes through this Redis (kept out of the repr: it may hold
            a password).
        merchant_id: the merchant, for opaque (non-JWT) tokens.
        latency_margin: J, seconds between our grant and the server's count.
        api_key: the merchant's API key (merchant mode: tokens minted per end user of the batch file).
        api_secret: the merchant's API secret (kept out of the repr).
        timeout: seconds before one request is given up (``--timeout``).
        max_retries: retries after the first attempt (``--max-retries``).
    """

    token: SecretToken | None
    tier: MerchantTier | None
    cancel_quota: Quota | None
    base_url: str
    redis_url: str | None = attrs.field(repr=False)
    merchant_id: str | None
    latency_margin: float
    api_key: ApiKey | None = None
    api_secret: ApiSecret | None = attrs.field(default=None, repr=False)
    timeout: float = 30.0
    max_retries: int = 3

    def session(self) -> AssetPaySession:
        """A new session with these settings (use it with ``async with``)."""
        return AssetPaySession(
            tier=self.tier,
            cancel_quota=self.cancel_quota,
            base_url=self.base_url,
            merchant_id=self.merchant_id,
            latency_margin=self.latency_margin,
            limiter=self.redis_url,
            api_key=None if self.api_key is None else self.api_key.reveal(),
            api_secret=None if self.api_secret is None else self.api_secret.reveal(),
            timeout=self.timeout,
            connect_timeout=min(self.timeout, 10.0),
            retry=RetryPolicy(max_retries=self.max_retries),
        )

    def client(self, session: AssetPaySession) -> AssetPayClient:
        """The client of this token on ``session``.

        Raises:
            InvalidRequestError: no client token (merchant mode without a token needs a batch file with
                ``steam_id,trade_url`` columns).
        """
        if self.token is None:
            raise InvalidRequestError(
                f"no client token: set {ENV_TOKEN}, or give the batch file steam_id,trade_url columns "
                "so the API key and secret issue each user's token"
            )
        return session.client(self.token.reveal())


def connection_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Connection:
    """Resolve the options of a command that talks to AssetPay; options win over environment variables.

    Raises:
        SettingsError: no token, neither a tier nor a quota, or a Redis URL without its scheme.
    """
    api_key, api_secret = _merchant_secrets(args, environ)
    raw_token = args.token if args.token is not None else environ.get(ENV_TOKEN)
    if not raw_token and api_key is None:
        raise SettingsError(
            f"no client token: set {ENV_TOKEN} (preferred) or pass --token; or, in merchant mode, "
            f"{ENV_API_KEY} and {ENV_API_SECRET}"
        )
    try:
        token = SecretToken(raw_token) if raw_token else None
    except InvalidRequestError as exc:
        raise SettingsError(str(exc)) from None
    tier_text = args.tier or environ.get(ENV_TIER) or None
    try:
        tier = MerchantTier(tier_text.lower()) if tier_text else None
    except ValueError:
        # The value is not echoed: a token pasted into the wrong variable must not be printed.
        raise SettingsError(f"{ENV_TIER} must be 'verified' or 'unverified'") from None
    if tier is None and args.quota is None:
        raise SettingsError(
            "the merchant's cancel quota is unknown: pass --tier verified|unverified (or set "
            f"{ENV_TIER}), or --quota LIMIT/SECONDS; a guessed quota draws 429s or wastes capacity"
        )
    base_url = args.base_url or environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    if not base_url.startswith(("https://", "http://")):
        raise SettingsError("the base URL must start with https:// or http://")
    known = [raw_token] if raw_token else []
    if looks_secret(base_url, known):
        raise SettingsError(f"--base-url (or ${ENV_BASE_URL}) holds what looks like a token")
    redis_url = args.redis_url or environ.get(ENV_REDIS_URL) or None
    schemes = tuple(f"{scheme}://" for scheme in REDIS_URL_SCHEMES)
    if redis_url is not None and not redis_url.lower().startswith(schemes):
        # The URL may carry a password: name its form, never the URL itself.
        raise SettingsError(
            f"--redis-url (or ${ENV_REDIS_URL}) must start with one of {', '.join(schemes)}"
        )
    merchant_id = args.merchant_id or environ.get(ENV_MERCHANT_ID) or None
    if merchant_id is not None and looks_secret(merchant_id, known):
        raise SettingsError(
            f"--merchant-id (or ${ENV_MERCHANT_ID}) looks like a client token, not a merchant id"
        )
    return Connection(
        token=token,
        tier=tier,
        cancel_quota=args.quota,
        base_url=base_url,
        redis_url=redis_url,
        merchant_id=merchant_id,
        latency_margin=args.latency_margin,
        api_key=api_key,
        api_secret=api_secret,
        timeout=getattr(args, "timeout", 30.0),
        max_retries=getattr(args, "max_retries", 3),
    )


def _merchant_secrets(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[ApiKey | None, ApiSecret | None]:
    """The API key and secret from the options or the environment, in their redacting holders."""
    raw_key = getattr(args, "api_key", None) or environ.get(ENV_API_KEY) or None
    raw_secret = getattr(args, "api_secret", None) or environ.get(ENV_API_SECRET) or None
    if raw_secret is not None and raw_key is None:
        raise SettingsError(f"an API secret needs the API key too ({ENV_API_KEY} or --api-key)")
    try:
        key = None if raw_key is None else ApiKey(raw_key)
        secret = None if raw_secret is None else ApiSecret(raw_secret)
    except ConfigurationError as exc:  # its message never holds the value
        raise SettingsError(str(exc)) from None
    return key, secret
