"""The retry decision of one call, sans I/O: an outcome goes in, the next action comes out.

[`Requester.call`][assetpay_async._transport.Requester.call] does the I/O (the limiter's grant, the attempt on
the wire, the sleeps) and asks a [`CallState`][assetpay_async._retry.CallState] what to do after each event:

- before an attempt: `CallState.next_wait` says `Acquire` (wait for a grant, bounded), `Send` (the grant
  held is still good: the last attempt never left this process) or `Fail` (the 429 deadline passed);
- after an attempt: `CallState.lost` (no answer) or `CallState.answered` (an answer, decoded) say `Backoff`
  (sleep, then ask `next_wait`), `Requeue` (a 429: pause the merchant's limiter, queue again), `Replay` (the
  token was refused: reissue it and send again within the same grant, once), `Finish` or `Fail`.

This module is the one place that bounds a ``Retry-After`` ([`retry_after_bound`][assetpay_async._retry.
retry_after_bound]) and the one place that marks an error ``ambiguous`` for what earlier attempts of the call
may have done. It has no clock, no randomness and no I/O of its own: times and the jitter come in as values.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, Final

import attrs

from ._cancel_rules import proves_not_cancelled
from ._errors import (
    AssetPayError,
    AuthenticationError,
    ConfigurationError,
    QueueTimeoutError,
    RateLimitedError,
    RequestTimeoutError,
    TransportError,
)
from ._quota import Quota

__all__ = [
    "DEFAULT_RETRY_AFTER_WINDOWS",
    "FINISH",
    "SEND",
    "Acquire",
    "Action",
    "Backoff",
    "CallState",
    "Fail",
    "Finish",
    "Replay",
    "Requeue",
    "RetryPolicy",
    "Send",
    "backoff",
    "retry_after_bound",
    "token_rejected",
]

DEFAULT_RETRY_AFTER_WINDOWS: Final = 3
"""Without ``RetryPolicy.max_retry_after``, a ``Retry-After`` is believed up to this many quota windows."""


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigurationError(
            f"RetryPolicy.{attribute.name} must be a number >= 0, got {value!r}"
        )
    if not math.isfinite(value):
        raise ConfigurationError(f"RetryPolicy.{attribute.name} must be finite, got {value!r}")


def _optional_positive(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigurationError(
            f"RetryPolicy.{attribute.name} must be None or a positive finite number, got {value!r}"
        )


def _retry_count(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"RetryPolicy.{attribute.name} must be an int >= 0, got {value!r}")


def retry_after_bound(quota: Quota, max_retry_after: float | None) -> float:
    """The longest pause a ``Retry-After`` may cause under ``quota``: the SDK's one bound.

    ``max_retry_after`` when set, else `DEFAULT_RETRY_AFTER_WINDOWS` windows of ``quota``. Every limiter
    (in memory or Redis) is told a pause already bounded by this.
    """
    if max_retry_after is not None:
        return float(max_retry_after)
    return DEFAULT_RETRY_AFTER_WINDOWS * quota.period_seconds


@attrs.frozen
class RetryPolicy:
    """What a call does after a failure: retries, their backoff, and how long 429s may hold it.

    A cancel is retried after a failure before sending and after a lost response (a repeated cancel cannot
    move money twice), never after an answer: a 5xx may follow a cancel the server carried out. A read
    (``get_trade``, ``list_trades``) is also retried after a 5xx (a gateway's 502/503/504, an HTML error page,
    a ``SERVER_ERROR`` envelope). A retry after a lost response waits for a grant of the limiter like a first
    attempt; a retry after a failure before sending (connection refused: AssetPay never saw it) keeps the
    grant it had while it is within the limiter's latency margin.

    Attributes:
        max_retries: retries after the first attempt.
        backoff_base: the first retry waits up to this many seconds; each further one doubles it.
        backoff_cap: no single wait exceeds this.
        max_rate_limited_wait: a deadline, counted from a call's first 429: after 429s the call goes back into
            the limiter's queue, but never waits past this many seconds; then it raises
            [`RateLimitedError`][assetpay_async.RateLimitedError] (nothing is sent after the deadline).
        max_retry_after: the longest ``Retry-After`` the SDK believes, in seconds; a longer one (a year, an
            HTTP date in 9999) pauses the merchant's limiter for this long only. None (default) means
            three windows of the route group's quota (three minutes for AssetPay's published quotas).

    Raises:
        ConfigurationError: a negative, non-finite or non-numeric value.
    """

    max_retries: int = attrs.field(default=3, validator=_retry_count)
    backoff_base: float = attrs.field(default=0.2, validator=_non_negative)
    backoff_cap: float = attrs.field(default=5.0, validator=_non_negative)
    max_rate_limited_wait: float = attrs.field(default=300.0, validator=_non_negative)
    max_retry_after: float | None = attrs.field(default=None, validator=_optional_positive)

    def retry_after_bound(self, quota: Quota) -> float:
        """The longest pause a ``Retry-After`` may cause under ``quota`` (see `retry_after_bound`)."""
        return retry_after_bound(quota, self.max_retry_after)


def backoff(failures: int, base: float, cap: float, draw: float) -> float:
    """Full jitter: ``draw`` (in [0, 1)) of ``min(cap, base * 2**(failures-1))``."""
    return float(draw * min(cap, base * 2 ** (failures - 1)))


# -- actions --------------------------------------------------------------------------------------------


@attrs.frozen
class Acquire:
    """Wait for a grant of the limiter, for at most ``max_wait`` seconds (None: as long as it takes)."""

    max_wait: float | None


@attrs.frozen
class Send:
    """Send the next attempt with the grant the call holds (the last attempt never left this process)."""


@attrs.frozen
class Backoff:
    """Sleep ``seconds``, then ask `CallState.next_wait` again."""

    seconds: float


@attrs.frozen
class Requeue:
    """A 429: tell the limiter to pause for ``pause`` seconds (None: its default), then queue again."""

    pause: float | None


@attrs.frozen
class Replay:
    """The token was refused: ask the token source for a new one and send again within the same grant."""

    error: AuthenticationError


@attrs.frozen
class Finish:
    """The call succeeded: return the decoded result."""


@attrs.frozen
class Fail:
    """The call is over: raise ``error``."""

    error: AssetPayError


Action = Acquire | Send | Backoff | Requeue | Replay | Finish | Fail

# The actions without fields, made once: every call that succeeds at its first attempt gets these, and
# callers may test them by identity. An unbounded wait is made once too.
SEND: Final = Send()
FINISH: Final = Finish()
_ACQUIRE_UNBOUNDED: Final = Acquire(None)

_REJECTED_KEYS: Final = frozenset({"INVALID_TOKEN", "TOKEN_EXPIRED", "TOKEN_INVALID_OR_EXPIRED"})
_REJECTED_CODES: Final = frozenset({1102, 1110, 1111})


def token_rejected(error: AssetPayError) -> bool:
    """Whether ``error`` says the token itself was refused (INVALID_TOKEN 1102, or expired 1110/1111).

    A missing bearer (1108) or a generic UNAUTHORIZED (1100) is not: a new token would not change them.
    """
    if not isinstance(error, AuthenticationError):
        return False
    if error.key is not None:
        return error.key in _REJECTED_KEYS
    return error.code in _REJECTED_CODES


@attrs.define
class CallState:
    """Where one call stands, and what it does next. Pure: every time is passed in.

    Args:
        policy: the retry policy.
        pause_bound: `retry_after_bound` of the call's route group.
        repeatable: the call may be repeated after a lost response (a cancel cannot move money twice).
        safe: a read, retried after a 5xx too.
        budget: seconds the call may wait for quota in all (None: no bound).
        grant_margin: how long after its grant an attempt may still go out on that grant (the limiter's
            latency margin J: its schedule already allows that spread between a grant and the server's count).
        can_reissue: the call's token comes from a source that can reissue it.
        what: ``METHOD path``, for messages.
        request_id: the call's ``X-Request-Id``.
        draw: the backoff's jitter, a number in [0, 1) per call (``random.random`` by default).
    """

    policy: RetryPolicy
    pause_bound: float
    repeatable: bool = True
    safe: bool = False
    budget: float | None = None
    grant_margin: float = 0.0
    can_reissue: bool = False
    what: str = "call"
    request_id: str | None = None
    draw: Callable[[], float] = random.random
    maybe_sent: bool = False
    """An earlier attempt may have reached AssetPay: a later failure leaves the outcome unknown."""
    attempts: int = 0
    failures: int = 0
    queued_total: float = 0.0
    replayed: bool = False
    granted_at: float | None = None
    """When the grant the call holds was given; None when it holds none."""
    limited: RateLimitedError | None = None
    limited_until: float = math.inf
    _deadline_bound: bool = False

    # -- before an attempt ---------------------------------------------------------------------------

    def next_wait(self, now: float) -> Acquire | Send | Fail:
        """What to do before the next attempt: use the grant held, wait for one, or give up."""
        if self.granted_at is not None:
            return SEND
        max_wait = None if self.budget is None else max(0.0, self.budget - self.queued_total)
        self._deadline_bound = False
        if self.limited is not None:
            left = self.limited_until - now
            if left <= 0:
                return Fail(self.limited)
            if max_wait is None or left < max_wait:
                max_wait, self._deadline_bound = left, True
        return _ACQUIRE_UNBOUNDED if max_wait is None else Acquire(max_wait)

    def granted(self, queued: float, now: float) -> None:
        """The limiter granted after ``queued`` seconds of waiting."""
        self.queued_total += queued
        self.granted_at = now

    def queue_timed_out(self, error: QueueTimeoutError) -> Fail:
        """No grant within the wait `next_wait` allowed."""
        if self.limited is not None and self._deadline_bound:
            return Fail(self.limited)  # still rate limited when the deadline came
        return Fail(self.mark(error))

    def sending(self) -> None:
        """An attempt goes on the wire now."""
        self.attempts += 1

    def mark(self, error: AssetPayError) -> AssetPayError:
        """``error``, ``ambiguous`` when an earlier attempt may have reached AssetPay: the one place that
        says so for what earlier attempts did (the decoder says it for what one answer shows: a 5xx, an
        unreadable 2xx). An error that proves no attempt could have succeeded stays unambiguous."""
        # After a replay with a reissued token, an earlier attempt's token may have been good: an auth
        # refusal of the new one proves nothing about it.
        if self.maybe_sent and not proves_not_cancelled(error, same_token=not self.replayed):
            error.ambiguous = True
        return error

    # -- after an attempt ----------------------------------------------------------------------------

    def lost(
        self, *, maybe_sent: bool, message: str, now: float, timed_out: bool = False
    ) -> Backoff | Fail:
        """The attempt got no answer: never sent (``maybe_sent`` False) or lost on the way back."""
        held = self.granted_at
        self.granted_at = None
        self.maybe_sent = self.maybe_sent or maybe_sent
        self.failures += 1
        if self.failures <= self.policy.max_retries and (self.repeatable or not maybe_sent):
            delay = backoff(
                self.failures, self.policy.backoff_base, self.policy.backoff_cap, self.draw()
            )
            remaining = math.inf if held is None else self.grant_margin - (now - held)
            if not maybe_sent and remaining > 0:
                # AssetPay never saw it: the grant is unspent. It stays good for as long as the limiter's
                # schedule allows between a grant and the server's count, so the retry goes out within that.
                self.granted_at = held
                return Backoff(min(delay, remaining))
            return Backoff(delay)
        cls = RequestTimeoutError if maybe_sent and timed_out else TransportError
        return Fail(
            cls(
                f"{self.what} failed after {self.attempts} attempt(s): {message}",
                request_id=self.request_id,
                ambiguous=self.maybe_sent,
            )
        )

    def answered(self, status: int, error: AssetPayError | None, now: float) -> Action:
        """The attempt got an answer: ``error`` is the typed error it decoded to, None for a success."""
        self.granted_at = None
        if error is None:
            return FINISH
        self.mark(error)
        if isinstance(error, RateLimitedError):
            if self.limited is None:
                self.limited_until = now + self.policy.max_rate_limited_wait
            self.limited = error
            pause = error.retry_after
            return Requeue(None if pause is None else min(pause, self.pause_bound))
        if isinstance(error, AuthenticationError) and self.can_reissue and not self.replayed:
            self.replayed = token_rejected(error)
            if self.replayed:
                return Replay(error)
        if self.safe and status >= 500 and self.failures < self.policy.max_retries:
            self.failures += 1  # a read has no effect: a server failure is worth another try
            return Backoff(
                backoff(
                    self.failures, self.policy.backoff_base, self.policy.backoff_cap, self.draw()
                )
            )
        return Fail(error)

    def replaying(self, now: float) -> None:
        """A new token was had after `Replay`: the next attempt goes out on the same grant."""
        self.granted_at = now
