"""The errors of callbacks: a delivery that must not be trusted, and the unsigned test ping."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from ._errors import AssetPayError

__all__ = [
    "CallbackAuthenticationError",
    "CallbackError",
    "InvalidCallbackBodyError",
    "MalformedSignatureError",
    "MissingSignatureError",
    "SignatureMismatchError",
    "TimestampToleranceError",
    "UnsignedTestPing",
]


class CallbackError(AssetPayError):
    """A callback that must not be trusted or processed.

    Attributes:
        http_status: the status to answer AssetPay with (401 for authentication failures, 200 for the
            unsigned test ping).
    """

    http_status: ClassVar[int] = 400


class CallbackAuthenticationError(CallbackError):
    """The delivery could not be authenticated: answer 401 and do nothing with it."""

    http_status: ClassVar[int] = 401


class MissingSignatureError(CallbackAuthenticationError):
    """No ``X-AssetPay-Signature`` header."""


class MalformedSignatureError(CallbackAuthenticationError):
    """The signature header is not ``t=<ISO-8601>,id=<deliveryId>,s=<hex>[,s1=<hex>]``."""


class SignatureMismatchError(CallbackAuthenticationError):
    """No signature in the header matches any configured secret (wrong secret, or a modified body)."""


class TimestampToleranceError(CallbackAuthenticationError):
    """The signed timestamp is further from now than the tolerance: a replay, or a skewed clock.

    Attributes:
        timestamp: the signed time of the delivery.
        now: the time it was checked against.
        skew: ``timestamp - now`` in seconds (negative: in the past).
        tolerance: the allowed skew either way, in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        timestamp: dt.datetime,
        now: dt.datetime,
        skew: float,
        tolerance: float,
    ) -> None:
        super().__init__(message)
        self.timestamp = timestamp
        self.now = now
        self.skew = skew
        self.tolerance = tolerance


class InvalidCallbackBodyError(CallbackError):
    """Kept for ``except`` clauses written for earlier versions; no longer raised.

    An authentic body of a shape the SDK does not know is an
    [`UnknownCallbackEvent`][assetpay_async.callbacks.UnknownCallbackEvent].
    """


class UnsignedTestPing(CallbackError):
    """AssetPay's test ping: an **unsigned** ``{"test": true, ...}`` body (no signature header at all).

    Nothing in it is authenticated, so nothing in it is exposed: answer 2xx (``http_status`` is 200) and act on
    nothing. A body that carries a signature header is never a ping: it is verified like any delivery.
    """

    http_status: ClassVar[int] = 200
