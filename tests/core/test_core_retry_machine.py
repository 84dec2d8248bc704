"""The retry decision without any I/O: outcomes go into a CallState, actions come out.

No sockets, no event loop, no clock: every time is a number passed in, the jitter a fixed draw.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assetpay_async import (
    APIError,
    AuthenticationError,
    CancelTooSoonError,
    Quota,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)
from assetpay_async._errors import QueueTimeoutError, SessionClosedError
from assetpay_async._retry import (
    DEFAULT_RETRY_AFTER_WINDOWS,
    Acquire,
    Action,
    Backoff,
    CallState,
    Fail,
    Finish,
    Replay,
    Requeue,
    RetryPolicy,
    Send,
    retry_after_bound,
    token_rejected,
)

POLICY = RetryPolicy(max_retries=3, backoff_base=0.2, backoff_cap=5.0, max_rate_limited_wait=60.0)


def _state(**overrides: object) -> CallState:
    options: dict[str, object] = {"draw": lambda: 0.5, "request_id": "req-1", "what": "POST /x"}
    options.update(overrides)
    return CallState(POLICY, 180.0, **options)  # type: ignore[arg-type]


def _api(cls: type, status: int, key: str | None = None, code: int | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return cls("m", http_status=status, code=code, key=key, request_id="srv", **kw)


def _granted(state: CallState, now: float = 0.0) -> None:
    step = state.next_wait(now)
    assert isinstance(step, Acquire)
    state.granted(0.0, now)
    state.sending()


def test_a_first_attempt_waits_for_a_grant_bounded_by_the_budget() -> None:
    state = _state(budget=10.0)
    assert state.next_wait(0.0) == Acquire(10.0)
    state.granted(4.0, 4.0)
    state.sending()
    assert isinstance(state.answered(200, None, 4.1), Finish)
    assert state.queued_total == 4.0


def test_a_refused_connection_keeps_its_grant_within_the_margin() -> None:
    state = _state(grant_margin=1.0)
    _granted(state, now=10.0)
    action = state.lost(maybe_sent=False, message="refused", now=10.0)
    assert action == Backoff(0.1)  # 0.5 of 0.2: inside the margin, so the grant is kept
    assert state.next_wait(10.1) == Send()
    assert not state.maybe_sent


def test_a_refused_connection_past_the_margin_takes_a_new_grant() -> None:
    state = _state(grant_margin=1.0)
    _granted(state, now=10.0)
    assert isinstance(state.lost(maybe_sent=False, message="refused", now=11.5), Backoff)
    assert isinstance(state.next_wait(11.6), Acquire)


def test_the_backoff_on_a_kept_grant_never_outlasts_the_margin() -> None:
    state = _state(grant_margin=0.25, draw=lambda: 0.99)
    _granted(state, now=0.0)
    state.lost(maybe_sent=False, message="refused", now=0.1)
    state.next_wait(0.2)
    state.sending()
    action = state.lost(maybe_sent=False, message="refused", now=0.2)
    assert isinstance(action, Backoff)
    assert action.seconds == pytest.approx(0.05)  # what is left of the 0.25 s margin
    assert state.next_wait(0.25) == Send()


def test_a_lost_response_always_takes_a_new_grant_and_makes_later_errors_ambiguous() -> None:
    state = _state(grant_margin=100.0)
    _granted(state)
    assert isinstance(state.lost(maybe_sent=True, message="reset", now=0.0), Backoff)
    assert isinstance(state.next_wait(0.1), Acquire)
    state.granted(0.0, 0.1)
    state.sending()
    action = state.answered(400, _api(_ErrorLike, 400, "TRADE_NOT_CANCELLABLE"), 0.2)
    assert isinstance(action, Fail)
    assert action.error.ambiguous


class _ErrorLike(APIError):
    """An answer that proves nothing about earlier attempts (like TRADE_NOT_CANCELLABLE)."""


def test_an_error_that_proves_nothing_happened_stays_unambiguous_after_a_lost_response() -> None:
    state = _state()
    _granted(state)
    state.lost(maybe_sent=True, message="reset", now=0.0)
    state.next_wait(0.1)
    state.granted(0.0, 0.1)
    action = state.answered(400, _api(CancelTooSoonError, 400, "TRADE_CANCEL_TOO_SOON"), 0.2)
    assert isinstance(action, Fail)
    assert not action.error.ambiguous


def test_retries_end_with_a_transport_error_that_says_whether_anything_was_sent() -> None:
    state = CallState(RetryPolicy(max_retries=1), 180.0)
    _granted(state)
    assert isinstance(state.lost(maybe_sent=False, message="refused", now=0.0), Backoff)
    state.next_wait(0.0)
    state.sending()
    action = state.lost(maybe_sent=False, message="refused", now=0.1)
    assert isinstance(action, Fail)
    assert type(action.error) is TransportError
    assert not action.error.ambiguous
    assert "2 attempt(s)" in str(action.error)


def test_a_timeout_after_sending_is_a_request_timeout_and_ambiguous() -> None:
    state = CallState(RetryPolicy(max_retries=0), 180.0)
    _granted(state)
    action = state.lost(maybe_sent=True, message="no response", now=0.0, timed_out=True)
    assert isinstance(action, Fail)
    assert isinstance(action.error, RequestTimeoutError)
    assert action.error.ambiguous


def test_a_cancel_is_not_retried_after_a_lost_response_when_not_repeatable() -> None:
    state = _state(repeatable=False)
    _granted(state)
    action = state.lost(maybe_sent=True, message="reset", now=0.0)
    assert isinstance(action, Fail)
    assert action.error.ambiguous


def test_a_429_requeues_with_the_pause_bounded_once() -> None:
    state = _state()
    _granted(state)
    limited = _api(RateLimitedError, 429, "RATE_LIMITED", retry_after=10_000.0)
    assert state.answered(429, limited, 5.0) == Requeue(180.0)
    assert state.next_wait(6.0) == Acquire(59.0)  # the deadline counts from the first 429
    assert state.next_wait(65.0) == Fail(limited)


def test_a_queue_timeout_at_the_429_deadline_raises_the_429() -> None:
    state = _state(budget=1000.0)
    _granted(state)
    limited = _api(RateLimitedError, 429, "RATE_LIMITED")
    state.answered(429, limited, 0.0)
    assert state.next_wait(1.0) == Acquire(59.0)
    assert state.queue_timed_out(QueueTimeoutError("late", waited=59.0)) == Fail(limited)


def test_a_read_is_retried_after_a_5xx_and_a_cancel_is_not() -> None:
    read = _state(safe=True)
    _granted(read)
    assert isinstance(read.answered(503, _api(ServerError, 503), 0.0), Backoff)
    cancel = _state()
    _granted(cancel)
    action = cancel.answered(503, _api(ServerError, 503, ambiguous=True), 0.0)
    assert isinstance(action, Fail)
    assert action.error.ambiguous


def test_a_refused_token_is_replayed_once_within_the_grant() -> None:
    state = _state(can_reissue=True)
    _granted(state)
    refused = _api(AuthenticationError, 401, "INVALID_TOKEN", 1102)
    assert state.answered(401, refused, 0.0) == Replay(refused)
    state.replaying(0.1)
    assert state.next_wait(0.1) == Send()  # no second grant
    state.sending()
    again = _api(AuthenticationError, 401, "INVALID_TOKEN", 1102)
    assert state.answered(401, again, 0.2) == Fail(again)
    assert state.failures == 0  # a replay is not a retry


def test_a_fixed_token_is_never_replayed() -> None:
    state = _state(can_reissue=False)
    _granted(state)
    refused = _api(AuthenticationError, 401, "INVALID_TOKEN", 1102)
    assert state.answered(401, refused, 0.0) == Fail(refused)


@pytest.mark.parametrize(
    ("key", "code", "rejected"),
    [
        ("INVALID_TOKEN", 1102, True),
        ("TOKEN_EXPIRED", 1111, True),
        (None, 1110, True),
        ("MISSING_BEARER", 1108, False),
        ("UNAUTHORIZED", 1100, False),
    ],
)
def test_which_refusals_a_new_token_can_fix(key: str | None, code: int, rejected: bool) -> None:
    assert token_rejected(_api(AuthenticationError, 401, key, code)) is rejected


def test_a_session_closed_during_a_wait_is_ambiguous_only_after_a_lost_response() -> None:
    state = _state()
    assert not state.mark(SessionClosedError("closed")).ambiguous
    _granted(state)
    state.lost(maybe_sent=True, message="reset", now=0.0)
    assert state.mark(SessionClosedError("closed")).ambiguous


def test_the_one_retry_after_bound() -> None:
    quota = Quota(10, 60.0)
    assert retry_after_bound(quota, None) == DEFAULT_RETRY_AFTER_WINDOWS * 60.0
    assert retry_after_bound(quota, 20.0) == 20.0
    assert RetryPolicy(max_retry_after=7.0).retry_after_bound(quota) == 7.0


_OUTCOMES = st.lists(
    st.one_of(
        st.tuples(st.just("lost"), st.booleans()),
        st.tuples(st.just("answer"), st.sampled_from([200, 400, 429, 500, 503])),
    ),
    min_size=1,
    max_size=30,
)


@given(
    outcomes=_OUTCOMES,
    safe=st.booleans(),
    repeatable=st.booleans(),
    margin=st.floats(0.0, 5.0),
    retries=st.integers(0, 5),
)
def test_every_sequence_of_outcomes_ends_and_never_sends_without_a_grant(
    outcomes: list[tuple[str, object]], safe: bool, repeatable: bool, margin: float, retries: int
) -> None:
    """Whatever comes back: attempts happen only on a grant, failures are bounded by the policy, and a
    refused connection never costs a grant of its own."""
    policy = RetryPolicy(max_retries=retries, max_rate_limited_wait=1e9)
    state = CallState(
        policy, 60.0, safe=safe, repeatable=repeatable, grant_margin=margin, draw=lambda: 0.5
    )
    now, grants, kept = 0.0, 0, False
    for kind, value in outcomes:
        step = state.next_wait(now)
        if isinstance(step, Fail):
            break
        assert isinstance(step, Send) is kept  # a kept grant is used, never a second one taken
        if isinstance(step, Acquire):
            grants += 1
            state.granted(0.0, now)
        assert state.granted_at is not None
        granted_at = state.granted_at
        state.sending()
        kept = False
        action: Action
        if kind == "lost":
            action = state.lost(maybe_sent=bool(value), message="x", now=now)
            within = now - granted_at < margin
            kept = isinstance(action, Backoff) and not value and within
            if isinstance(action, Backoff) and not value:
                assert (state.granted_at is not None) is within
        else:
            status = int(value)  # type: ignore[call-overload]
            if status == 200:
                error = None
            elif status == 429:
                error = _api(RateLimitedError, 429, "RATE_LIMITED", retry_after=1e6)
            else:
                error = _api(ServerError if status >= 500 else _ErrorLike, status)
            action = state.answered(status, error, now)
        if isinstance(action, Requeue):
            assert action.pause is not None
            assert action.pause <= 60.0
        if isinstance(action, (Fail, Finish)):
            break
        if isinstance(action, Backoff):
            now += action.seconds
        if not kept:
            now += 0.01
    assert state.failures <= retries + 1
    assert grants <= state.attempts
