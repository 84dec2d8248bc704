"""AssetPay's published quotas: per merchant, per route group, shared by every client of the merchant."""

from __future__ import annotations

import enum
import math

import attrs

from ._errors import ConfigurationError

__all__ = ["DEFAULT_QUOTAS", "MerchantTier", "Quota", "RouteGroup", "default_quota"]


class MerchantTier(enum.StrEnum):
    """A merchant's verification status, which sets its quotas."""

    VERIFIED = "verified"
    UNVERIFIED = "unverified"


class RouteGroup(enum.StrEnum):
    """Routes that share one quota on AssetPay's side."""

    CANCEL_ITEM = "cancel-item"
    """``POST /client/trading/withdraw/{tradeId}/items/{itemId}/cancel``"""
    TRADES_READ = "trades-read"
    """``GET /client/trades`` and ``GET /client/trades/{id}``"""
    MERCHANT_READ = "merchant-read"
    """``GET /secure/trades`` and ``GET /secure/trades/{refs}`` (merchant scope, ``api-key``)"""
    AUTH = "auth"
    """``POST /auth/authenticate-client`` (merchant scope; its quota is UNCONFIRMED)"""


def _positive_finite(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(
            f"Quota.{attribute.name} must be a positive finite number, got {value!r}"
        )


def _at_least_one(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"Quota.{attribute.name} must be an int >= 1, got {value!r}")


@attrs.frozen
class Quota:
    """``limit`` requests per ``period_seconds``, as the server counts them.

    Example:
        ``Quota(60, 60.0)`` is AssetPay's verified cancel quota; ``Quota(60, 3.0)`` a scaled one for tests.
    """

    limit: int = attrs.field(validator=_at_least_one)
    period_seconds: float = attrs.field(converter=float, validator=_positive_finite)

    @property
    def rate(self) -> float:
        """Requests per second at the full quota."""
        return self.limit / self.period_seconds


DEFAULT_QUOTAS: dict[tuple[MerchantTier, RouteGroup], Quota] = {
    (MerchantTier.VERIFIED, RouteGroup.CANCEL_ITEM): Quota(60, 60.0),
    (MerchantTier.UNVERIFIED, RouteGroup.CANCEL_ITEM): Quota(10, 60.0),
    (MerchantTier.VERIFIED, RouteGroup.TRADES_READ): Quota(3000, 60.0),
    (MerchantTier.UNVERIFIED, RouteGroup.TRADES_READ): Quota(30, 60.0),
    (MerchantTier.VERIFIED, RouteGroup.MERCHANT_READ): Quota(3000, 60.0),
    (MerchantTier.UNVERIFIED, RouteGroup.MERCHANT_READ): Quota(100, 60.0),
    # UNCONFIRMED: an older documentation edition's 1,000,000/h verified and 100/h unverified.
    (MerchantTier.VERIFIED, RouteGroup.AUTH): Quota(1_000_000, 3600.0),
    (MerchantTier.UNVERIFIED, RouteGroup.AUTH): Quota(100, 3600.0),
}
"""AssetPay's published quotas (the rate-limit table of its API documentation)."""


def default_quota(tier: MerchantTier, group: RouteGroup) -> Quota:
    """The published quota of ``group`` for a merchant of ``tier``."""
    return DEFAULT_QUOTAS[(MerchantTier(tier), RouteGroup(group))]
