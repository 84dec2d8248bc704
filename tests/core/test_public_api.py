"""The public surface, pinned: adding or removing a name is a deliberate edit of this list."""

from __future__ import annotations

import importlib

import assetpay_async

PUBLIC_NAMES = [
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
    "DEFAULT_BASE_URL",
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
    "TradeCancelItem",
    "TradeCancelResult",
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


def test_all_is_pinned() -> None:
    assert sorted(PUBLIC_NAMES) == PUBLIC_NAMES
    assert sorted(assetpay_async.__all__) == PUBLIC_NAMES
    assert len(set(assetpay_async.__all__)) == len(assetpay_async.__all__)


def test_every_public_name_is_importable() -> None:
    module = importlib.import_module("assetpay_async")
    for name in PUBLIC_NAMES:
        assert getattr(module, name) is not None, name


def test_every_error_is_an_assetpay_error() -> None:
    errors = [getattr(assetpay_async, n) for n in PUBLIC_NAMES if n.endswith("Error")]
    assert errors
    assert all(issubclass(cls, assetpay_async.AssetPayError) for cls in errors)
