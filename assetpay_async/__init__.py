"""assetpay-async: an asyncio SDK for AssetPay that cancels withdrawal items within the merchant's shared quota.

The public surface is what this module exports (``__all__``); every other module is private or re-exported here.
"""

from ._batch import (
    BatchProgress,
    BatchStoppedError,
    CancelBatch,
    CancelOutcome,
    OutcomeDetail,
    OutcomeKind,
)
from ._client import AssetPayClient
from ._errors import (
    AccountDisabledError,
    APIError,
    APIValidationError,
    AssetPayError,
    AuthenticationError,
    CancelTooSoonError,
    ConfigurationError,
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
    WaitTimeoutError,
)
from ._journal import JournalError, JournalMismatchError
from ._limiting import LimiterPolicy, LimiterStats
from ._models import (
    CancelResult,
    CancelStatus,
    Game,
    RevertedBy,
    Trade,
    TradeItem,
    TradePage,
    TradeSource,
    TradeStatus,
    TradeType,
)
from ._poller import FollowedItem
from ._quota import MerchantTier, Quota, RouteGroup
from ._session import DEFAULT_BASE_URL, AssetPaySession
from ._transport import RetryPolicy
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "APIValidationError",
    "AccountDisabledError",
    "AssetPayClient",
    "AssetPayError",
    "AssetPaySession",
    "AuthenticationError",
    "BatchProgress",
    "BatchStoppedError",
    "CancelBatch",
    "CancelOutcome",
    "CancelResult",
    "CancelStatus",
    "CancelTooSoonError",
    "ConfigurationError",
    "FollowedItem",
    "ForbiddenError",
    "Game",
    "InvalidRequestError",
    "InvalidResponseError",
    "ItemNotFoundError",
    "JournalError",
    "JournalMismatchError",
    "LimiterBackendError",
    "LimiterPolicy",
    "LimiterStats",
    "MerchantMismatchError",
    "MerchantTier",
    "NotCancellableError",
    "OutcomeDetail",
    "OutcomeKind",
    "QueueTimeoutError",
    "Quota",
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
    "TradePage",
    "TradeSource",
    "TradeStatus",
    "TradeType",
    "TransportError",
    "WaitTimeoutError",
    "__version__",
]
