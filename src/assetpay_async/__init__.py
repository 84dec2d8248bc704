"""assetpay-async: an asyncio SDK for AssetPay that cancels withdrawal items within the merchant's shared quota.

The public surface is what this module exports (``__all__``); every other module is private or re-exported here.
"""

from ._version import __version__
from .client import AssetPayClient
from .errors import (
    APIError,
    APIValidationError,
    AccountDisabledError,
    AssetPayError,
    AuthenticationError,
    CancelTooSoonError,
    ForbiddenError,
    InvalidRequestError,
    InvalidResponseError,
    ItemNotFoundError,
    LimiterBackendError,
    MerchantMismatchError,
    NotCancellableError,
    QueueTimeoutError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    SessionClosedError,
    TradeNotFoundError,
    TransportError,
)
from .limiting import LimiterPolicy, LimiterStats
from .models import (
    CancelResult,
    CancelStatus,
    Game,
    RevertedBy,
    Trade,
    TradeItem,
    TradeSource,
    TradeStatus,
    TradeType,
)
from .quota import MerchantTier, Quota, RouteGroup
from .session import DEFAULT_BASE_URL, AssetPaySession, RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "APIValidationError",
    "AccountDisabledError",
    "AssetPayClient",
    "AssetPayError",
    "AssetPaySession",
    "AuthenticationError",
    "CancelResult",
    "CancelStatus",
    "CancelTooSoonError",
    "ForbiddenError",
    "Game",
    "InvalidRequestError",
    "InvalidResponseError",
    "ItemNotFoundError",
    "LimiterBackendError",
    "LimiterPolicy",
    "LimiterStats",
    "MerchantMismatchError",
    "MerchantTier",
    "NotCancellableError",
    "Quota",
    "QueueTimeoutError",
    "RateLimitedError",
    "RequestTimeoutError",
    "RetryPolicy",
    "RevertedBy",
    "RouteGroup",
    "ServerError",
    "SessionClosedError",
    "Trade",
    "TradeItem",
    "TradeNotFoundError",
    "TradeSource",
    "TradeStatus",
    "TradeType",
    "TransportError",
    "__version__",
]
