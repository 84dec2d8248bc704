"""The public surface, pinned: adding or removing a name is a deliberate edit of this list."""

from __future__ import annotations

import importlib
import pkgutil

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
    "JournalLockedError",
    "JournalMismatchError",
    "LimiterBackendError",
    "LimiterPolicy",
    "LimiterRegistry",
    "LimiterStats",
    "ListingDidNotTerminateError",
    "MemoryLimiterRegistry",
    "MerchantMismatchError",
    "MerchantScope",
    "MerchantTier",
    "NotCancellableError",
    "OutcomeDetail",
    "OutcomeKind",
    "QueueTimeoutError",
    "Quota",
    "RateLimitedError",
    "RateLimiter",
    "RequestTimeoutError",
    "RetryPolicy",
    "RevertedBy",
    "RouteGroup",
    "ServerError",
    "ServerModel",
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


# The public submodules, each for an extra or a testing story, and what each exports.
PUBLIC_SUBMODULES = {
    "callbacks": [
        "AnyCallbackEvent",
        "ApprovalDecision",
        "ApprovalHandler",
        "ApprovalRequest",
        "CallbackAnswer",
        "CallbackAuthenticationError",
        "CallbackError",
        "CallbackEvent",
        "CallbackProcessor",
        "CryptoDeposit",
        "CryptoDepositEvent",
        "CryptoEvent",
        "CryptoTransfer",
        "CryptoWithdrawal",
        "CryptoWithdrawalEvent",
        "DedupeStore",
        "EventHandler",
        "InvalidCallbackBodyError",
        "MalformedSignatureError",
        "MemoryDedupeStore",
        "MissingSignatureError",
        "NO_APPROVER_REASON",
        "OtherEvent",
        "OtherEventHandler",
        "SignatureMismatchError",
        "TimestampToleranceError",
        "UNREADABLE_APPROVAL_REASON",
        "UnknownCallbackEvent",
        "UnsignedTestPing",
        "VerifiedDelivery",
        "callback_handler",
        "is_test_ping",
        "settle_waiters",
        "verify_callback",
        "verify_signature",
    ],
    "testing": ["VirtualTimeLoop", "run_virtual"],
    "redis_limiter": ["DEFAULT_MAX_PAUSE_PERIODS", "RedisLimiter", "RedisLimiterRegistry"],
    "sandbox": [
        "AnchoredWindow",
        "BlockPenaltyWindow",
        "CallbackAttempt",
        "DEFAULT_START",
        "Decision",
        "Fault",
        "FaultKind",
        "FaultSchedule",
        "FixedWindow",
        "GCRA",
        "GameName",
        "Merchant",
        "RateModel",
        "RequestRecord",
        "RustCancelAnswer",
        "Sandbox",
        "SandboxBehavior",
        "SandboxClock",
        "SandboxItem",
        "SandboxTrade",
        "SeededToken",
        "ServerAlgorithm",
        "SlidingLog",
        "SlidingWindowCounter",
        "Totals",
        "User",
        "encode_token",
        "make_rate_model",
        "max_in_window",
        "quota_share",
    ],
    "cli": ["ExitCode", "main", "main_async"],
}


def test_every_other_module_is_private() -> None:
    """A module without a leading underscore is API: only the pinned submodules may be one."""
    public = set()
    for info in pkgutil.walk_packages(assetpay_async.__path__, "assetpay_async."):
        parts = info.name.split(".")[1:]
        if not any(part.startswith("_") for part in parts):
            public.add(".".join(parts))
    assert public == set(PUBLIC_SUBMODULES)


def test_the_public_submodules_are_pinned() -> None:
    for name, names in PUBLIC_SUBMODULES.items():
        module = importlib.import_module(f"assetpay_async.{name}")
        assert sorted(module.__all__) == names, name
        for exported in names:
            assert getattr(module, exported) is not None, (name, exported)
