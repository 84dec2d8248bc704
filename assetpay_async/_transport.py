"""The request path's one owner: quota, attempt, decoding and log of every call.

A [`Requester`][assetpay_async._transport.Requester] belongs to one
[`AssetPaySession`][assetpay_async.AssetPaySession]; every client and batch of the session calls through it.
For one call it waits for a grant of the merchant's limiter, sends one attempt through its transport
(``_wire``), decodes the answer (``_protocol``), tells the limiter what came back, and does what the call's
[`CallState`][assetpay_async._retry.CallState] (``_retry``, sans I/O) decides next: return, raise, sleep and
retry, queue again after a 429, or replay with a reissued token. It ends the session's calls that still wait
for quota when the session is closed.

``docs/architecture.md`` walks one cancel through it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, NamedTuple, TypeVar

import aiohttp

from . import _http
from . import _protocol as proto
from . import _retry as rt
from ._errors import (
    AssetPayError,
    QueueTimeoutError,
    SessionClosedError,
    TransportError,
)
from ._interfaces import TokenSource
from ._limiter_types import LimiterPolicy, LimiterRegistry, RateLimiter
from ._quota import Quota, RouteGroup
from ._retry import DEFAULT_RETRY_AFTER_WINDOWS, RetryPolicy
from ._tokens import SecretToken
from ._trade_routes import TradeRoutes
from ._wire import AiohttpTransport, Transport, WireRequest

__all__ = ["DEFAULT_RETRY_AFTER_WINDOWS", "Requester", "RetryPolicy"]

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger("assetpay_async")


def _backoff(attempt: int, base: float, cap: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    return rt.backoff(attempt, base, cap, random.random())


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class _Answer(NamedTuple):
    """What one attempt brought back: the raw answer and its envelope, or the failure (a tuple: one is
    made per attempt)."""

    action: rt.Action
    raw: _http.RawResponse | None = None
    envelope: proto.Envelope | None = None


class Requester:
    """Runs every call of one session: limiter, attempt, decoding, the retry state machine's actions, log.

    Args:
        base_url: AssetPay's API root, without a trailing slash.
        http_session: an ``aiohttp.ClientSession`` the caller owns (never closed here), or None.
        timeout: seconds for one attempt on the wire.
        connect_timeout: seconds to establish a connection.
        max_connections: connections at once.
        retry: the retry policy.
        registry: where the limiters come from.
        quotas: the quota of each route group.
        policy: the limiters' spacing policy.
        latency_margin: the limiters' J.
        max_queue_wait: default bound on a call's wait for quota.
        transport: what sends the attempts (default: an
            [`AiohttpTransport`][assetpay_async._wire.AiohttpTransport] built from the HTTP settings).
    """

    def __init__(
        self,
        *,
        base_url: str,
        http_session: aiohttp.ClientSession | None,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
        retry: RetryPolicy,
        registry: LimiterRegistry,
        quotas: Mapping[RouteGroup, Quota],
        policy: LimiterPolicy,
        latency_margin: float,
        max_queue_wait: float | None,
        transport: Transport | None = None,
    ) -> None:
        self._base_url = base_url
        self._aiohttp = AiohttpTransport(
            http_session=http_session,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
        )
        self._transport: Transport = transport if transport is not None else self._aiohttp
        self._retry = retry
        self._registry = registry
        self._quotas = dict(quotas)
        # Per-session constants, so that a call does not recompute them.
        self._pause_bounds = {
            group: retry.retry_after_bound(q) for group, q in self._quotas.items()
        }
        self._policy = policy
        self._latency_margin = latency_margin
        self._max_queue_wait = max_queue_wait
        self._state = _State.UNOPENED
        self._waiting: dict[asyncio.Task[Any], int] = {}
        """This session's calls now waiting for quota (or a backoff), with their ``cancelling()`` count."""
        self._closed_out: set[asyncio.Task[Any]] = set()
        """Those among them that closing the session has cancelled."""
        self.trade_routes = TradeRoutes()
        """Which trade-read routes this session found missing (read by ``AssetPayClient.get_trade``)."""

    # -- state ----------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``unopened``, ``open`` or ``closed``."""
        return self._state.value

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def owns_open_http(self) -> bool:
        """Whether an HTTP session this requester created is still open (for the unclosed warning)."""
        return self._aiohttp.owns_open_http

    def check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise SessionClosedError("this AssetPaySession is closed; create a new one")

    def limiter(self, merchant_id: str, group: RouteGroup) -> RateLimiter:
        """The limiter of ``merchant_id`` for ``group`` from the registry."""
        return self._registry.get(
            merchant_id,
            group,
            self._quotas[group],
            policy=self._policy,
            latency_margin=self._latency_margin,
        )

    # -- one call -------------------------------------------------------------------------------------

    def _new_state(
        self, spec: proto.RequestSpec, request_id: str, budget: float | None, can_reissue: bool
    ) -> rt.CallState:
        return rt.CallState(
            self._retry,
            self._pause_bounds[spec.route_group],
            repeatable=spec.repeatable,
            safe=spec.safe,
            budget=budget if budget is not None else self._max_queue_wait,
            grant_margin=self._latency_margin,
            can_reissue=can_reissue,
            what=f"{spec.method} {spec.path}",
            request_id=request_id,
        )

    async def call(
        self,
        token: SecretToken | TokenSource,
        merchant_id: str,
        spec: proto.RequestSpec,
        decode: Callable[[proto.Envelope, int], T],
        *,
        max_queue_wait: float | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> T:
        """Run one call to its end: every attempt pays the limiter, every failure ends typed.

        Args:
            token: the client token the call is made with, or a source of tokens (asked before each attempt;
                reissued once within the grant when AssetPay refuses the token).
            merchant_id: whose quota it spends.
            spec: the call.
            decode: turns the success envelope and HTTP status into the result.
            max_queue_wait: seconds the call may wait for quota in all (default: the session's).
            on_send: called as each attempt goes on the wire (a batch uses it to tell a pair that may have
                reached AssetPay from one still queued for quota).
        """
        self.check_open()  # before a call takes quota it could never use
        limiter = self.limiter(merchant_id, spec.route_group)
        headers = proto.request_headers(request_id := proto.new_request_id())
        source = None if isinstance(token, SecretToken) else token
        state = self._new_state(spec, request_id, max_queue_wait, source is not None)
        loop = asyncio.get_running_loop()
        fresh: SecretToken | None = None  # a reissued token the replay goes out with
        while True:
            step = state.next_wait(loop.time())
            if not isinstance(step, rt.Send):
                await self._grant(state, limiter, step, loop)
            if on_send is not None:
                on_send()
            secret = fresh or (token if isinstance(token, SecretToken) else await token.current())
            fresh = None
            action, raw, envelope = await self._attempt(
                state, limiter, spec, headers, secret, loop=loop
            )
            if isinstance(action, rt.Finish):  # the common case first: one answer, a success
                limiter.succeeded()
                assert raw is not None  # noqa: S101 - Finish follows an answer
                assert envelope is not None  # noqa: S101
                return decode(envelope, raw.status)
            if isinstance(action, rt.Requeue):
                limiter.rate_limited(action.pause)
                continue
            if raw is not None:
                limiter.succeeded()
            if isinstance(action, rt.Backoff):
                await self._closable(asyncio.sleep(action.seconds), state)
            elif isinstance(action, rt.Replay):
                assert source is not None  # noqa: S101 - only a source can reissue
                fresh = await source.reissue(secret)
                if fresh is None:
                    raise action.error
                state.replaying(loop.time())
            elif isinstance(action, rt.Fail):
                raise action.error

    async def _grant(
        self,
        state: rt.CallState,
        limiter: RateLimiter,
        step: rt.Acquire | rt.Fail,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Get the call a grant for its next attempt (``step``: `CallState.next_wait`'s answer, which
        was not `Send`): wait for one, or raise."""
        if isinstance(step, rt.Fail):
            raise step.error
        try:
            queued = await self._closable(limiter.acquire(max_wait=step.max_wait), state)
        except QueueTimeoutError as exc:
            raise state.queue_timed_out(exc).error from None
        state.granted(queued, loop.time())

    async def _attempt(
        self,
        state: rt.CallState,
        limiter: RateLimiter,
        spec: proto.RequestSpec,
        headers: Mapping[str, str],
        token: SecretToken,
        *,
        loop: asyncio.AbstractEventLoop,
    ) -> _Answer:
        """Send one attempt on the grant the call holds, decode what came back, ask ``state`` what next."""
        state.sending()
        raw: _http.RawResponse | None = None
        try:
            self.check_open()
            self._state = _State.OPEN
            raw = await self._transport.send(
                WireRequest(spec, self._base_url + spec.path, headers, token)
            )
            limiter.observe_wire(raw.wire_seconds)  # what the measured latency margin learns from
            envelope = proto.decode_envelope(
                raw.status, raw.headers, raw.body, state.request_id or "", truncated=raw.truncated
            )
        except SessionClosedError as exc:  # closed while this call was granted or retried
            raise state.mark(exc) from None
        except _http.TLSError as exc:
            raise TransportError(
                f"TLS failure talking to AssetPay: {exc}", request_id=state.request_id
            ) from None
        except (_http.NotSentError, _http.MaybeSentError) as exc:
            _log(spec, state, None, None, exc)
            sent = isinstance(exc, _http.MaybeSentError)
            timed_out = sent and exc.timed_out  # type: ignore[union-attr]
            # An unsent attempt's grant stays good only within the J the limiter paces by now (a measured
            # J may be far below the session's fixed one).
            margin = getattr(limiter, "latency_margin", self._latency_margin)
            state.grant_margin = min(self._latency_margin, margin)
            return _Answer(
                state.lost(maybe_sent=sent, message=str(exc), now=loop.time(), timed_out=timed_out)
            )
        except AssetPayError as exc:
            assert raw is not None  # noqa: S101 - only the decoder raises these here
            _log(spec, state, raw, exc, None)
            after = state.answered(raw.status, exc, loop.time())
            if isinstance(after, rt.Requeue):
                _log_bounded(exc, after.pause)
            return _Answer(after, raw)
        if logger.isEnabledFor(logging.DEBUG):  # checked here too: no call at all when it is off
            _log(spec, state, raw, None, None, envelope)
        return _Answer(state.answered(raw.status, None, loop.time()), raw, envelope)

    async def _closable(self, waiting: Coroutine[Any, Any, R], state: rt.CallState) -> R:
        """Await ``waiting`` (a limiter's grant, a backoff) so that closing the session ends it at once.

        A closed session starts no such wait (so a call whose connection went down with the session takes
        no grant for a retry). Closing cancels the task (as ``asyncio.timeout`` does); the cancellation is
        turned into ``SessionClosedError`` here, unless someone else cancelled the task too. A cancelled
        limiter wait spends nothing and leaves the queue, so other sessions of the merchant keep their places.
        """
        if self._state is _State.CLOSED:
            waiting.close()
            raise state.mark(SessionClosedError("the AssetPaySession was closed during this call"))
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - called from a coroutine of a task
        cancelling = self._waiting[task] = task.cancelling()
        try:
            return await waiting
        except asyncio.CancelledError:
            if task in self._closed_out and task.uncancel() <= cancelling:
                error = SessionClosedError(
                    "the AssetPaySession was closed while this call waited for quota; nothing was sent "
                    "by this attempt"
                )
                raise state.mark(error) from None
            raise  # cancelled by its owner (too)
        finally:
            del self._waiting[task]
            self._closed_out.discard(task)

    # -- lifecycle ------------------------------------------------------------------------------------

    async def ensure_http(self) -> None:
        """Open the HTTP session of the running loop now (``async with AssetPaySession(...)``)."""
        self.check_open()
        if self._transport is self._aiohttp:
            await self._aiohttp.ensure_http()
        self._state = _State.OPEN

    async def aclose(self) -> None:
        """End the calls waiting for quota, then close the transport."""
        self._state = _State.CLOSED
        for task in list(self._waiting):
            if task not in self._closed_out and task.cancel():
                self._closed_out.add(task)
        await self._aiohttp.aclose()
        if self._transport is not self._aiohttp:
            await self._transport.aclose()


def _log_bounded(error: AssetPayError, pause: float | None) -> None:
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None and pause is not None and retry_after > pause:
        logger.debug(
            "Retry-After %gs is longer than the %gs believed; pausing %gs",
            retry_after,
            pause,
            pause,
        )


def _log(  # noqa: PLR0917 - private, three call sites
    spec: proto.RequestSpec,
    state: rt.CallState,
    raw: _http.RawResponse | None,
    error: AssetPayError | None,
    lost: Exception | None,
    envelope: proto.Envelope | None = None,
) -> None:
    """One DEBUG line per attempt: what was asked, what came back, how long it queued and took."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    key = None if error is None else (getattr(error, "key", None) or type(error).__name__)
    logger.debug(
        "%s %s group=%s status=%s key=%s request_id=%s attempt=%d queued=%.3fs wire=%s%s",
        spec.method,
        spec.path,
        spec.route_group.value,
        raw.status if raw else "-",
        key or "-",
        (envelope.request_id if envelope else error.request_id if error else None)
        or state.request_id,
        state.attempts,
        state.queued_total,
        f"{raw.wire_seconds:.3f}s" if raw else "-",
        f" failure={lost}" if lost else "",
    )
