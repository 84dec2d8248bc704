"""The request path's one owner: quota, attempt, classification, retry and log of every call.

A [`Requester`][assetpay_async._transport.Requester] belongs to one
[`AssetPaySession`][assetpay_async.AssetPaySession]; every client and batch of the session calls through it.
For one call it waits for a grant of the merchant's limiter, sends one attempt (``_http``), decodes the
answer (``_protocol``), tells the limiter what came back, and decides whether the call is over, goes back
into the queue (a 429) or is retried (a failure before sending, a lost response, a read's 5xx). It also owns
the session's HTTP connection pool per event loop, and ends the session's calls that still wait for quota
when the session is closed.

``docs/architecture.md`` walks one cancel through it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, TypeVar

import aiohttp
import attrs

from . import _http
from . import _protocol as proto
from ._errors import (
    AssetPayError,
    ConfigurationError,
    QueueTimeoutError,
    RateLimitedError,
    RequestTimeoutError,
    SessionClosedError,
    TransportError,
)
from ._limiter_types import LimiterPolicy, LimiterRegistry, RateLimiter
from ._quota import Quota, RouteGroup
from ._tokens import SecretToken
from ._trade_routes import TradeRoutes

__all__ = ["DEFAULT_RETRY_AFTER_WINDOWS", "Requester", "RetryPolicy"]

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger("assetpay_async")

DEFAULT_RETRY_AFTER_WINDOWS = 3
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


@attrs.frozen
class RetryPolicy:
    """What a call does after a failure: retries, their backoff, and how long 429s may hold it.

    A cancel is retried after a failure before sending and after a lost response (a repeated cancel cannot
    move money twice), never after an answer: a 5xx may follow a cancel the server carried out. A read
    (``get_trade``, ``list_trades``) is also retried after a 5xx (a gateway's 502/503/504, an HTML error page,
    a ``SERVER_ERROR`` envelope). Every retry waits for a grant of the limiter like a first attempt.

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
        """The longest pause a ``Retry-After`` may cause under ``quota``."""
        if self.max_retry_after is not None:
            return float(self.max_retry_after)
        return DEFAULT_RETRY_AFTER_WINDOWS * quota.period_seconds


def _backoff(attempt: int, base: float, cap: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class _LoopBinding:
    """The HTTP session of one event loop, closed when that loop is shut down by ``asyncio.run``."""

    __slots__ = ("http", "loop", "owned", "request_options", "sentinel", "slots")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        http: aiohttp.ClientSession,
        owned: bool,
        slots: int,
        request_options: Mapping[str, Any],
    ) -> None:
        self.loop = loop
        self.http = http
        self.owned = owned
        self.request_options = request_options
        # Taken before the request timeout starts, so waiting for a pooled connection is not a timeout.
        self.slots = asyncio.Semaphore(slots)
        self.sentinel: AsyncIterator[None] | None = None


async def _close_at_loop_shutdown(binding: _LoopBinding) -> AsyncIterator[None]:
    # asyncio.run() calls loop.shutdown_asyncgens() before closing the loop, which closes this generator:
    # the HTTP session goes down with its loop instead of leaking sockets into the next asyncio.run().
    try:
        yield
    finally:
        if binding.owned and not binding.http.closed:
            await binding.http.close()


class Requester:
    """Runs every call of one session: limiter, attempt, classification, retry, log.

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
    ) -> None:
        self._base_url = base_url
        self._external_http = http_session
        self._timeout = timeout
        self._client_timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._max_connections = max_connections
        self._retry = retry
        self._registry = registry
        self._quotas = dict(quotas)
        self._policy = policy
        self._latency_margin = latency_margin
        self._max_queue_wait = max_queue_wait
        self._binding: _LoopBinding | None = None
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
        binding = self._binding
        return binding is not None and binding.owned and not binding.http.closed

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

    async def call(
        self,
        token: SecretToken,
        merchant_id: str,
        spec: proto.RequestSpec,
        decode: Callable[[proto.Envelope, int], T],
        *,
        max_queue_wait: float | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> T:
        """Run one call to its end: every attempt pays the limiter, every failure ends typed.

        Args:
            token: the client token the call is made with.
            merchant_id: whose quota it spends.
            spec: the call.
            decode: turns the success envelope and HTTP status into the result.
            max_queue_wait: seconds the call may wait for quota in all (default: the session's).
            on_send: called as each granted attempt goes on the wire (a batch uses it to tell a pair that
                may have reached AssetPay from one still queued for quota).
        """
        self.check_open()  # before a call takes quota it could never use
        limiter = self.limiter(merchant_id, spec.route_group)
        retry = self._retry
        budget = max_queue_wait if max_queue_wait is not None else self._max_queue_wait
        request_id = proto.new_request_id()
        headers = proto.request_headers(request_id)
        loop = asyncio.get_running_loop()
        maybe_sent = False  # an earlier attempt may have reached AssetPay
        failures = 0
        attempt = 0
        queued_total = 0.0
        limited: RateLimitedError | None = None  # the latest 429 of this call
        limited_until = math.inf  # the max_rate_limited_wait deadline, from the first 429
        while True:
            attempt += 1
            max_wait = None if budget is None else max(0.0, budget - queued_total)
            deadline_bound = False
            if limited is not None:
                left = limited_until - loop.time()
                if left <= 0:
                    raise limited
                if max_wait is None or left < max_wait:
                    max_wait, deadline_bound = left, True
            try:
                queued = await self._closable(limiter.acquire(max_wait=max_wait), maybe_sent)
            except QueueTimeoutError as exc:
                if limited is not None and deadline_bound:
                    raise limited from None  # still rate limited when the deadline came
                exc.ambiguous = maybe_sent
                raise
            queued_total += queued
            if on_send is not None:
                on_send()
            raw: _http.RawResponse | None = None
            envelope: proto.Envelope | None = None
            lost: _http.NotSentError | _http.MaybeSentError | None = None
            error: AssetPayError | None = None
            try:
                raw = await self._send(spec, headers, token)
                limiter.observe_wire(raw.wire_seconds)
                envelope = proto.decode_envelope(
                    raw.status,
                    raw.headers,
                    raw.body,
                    request_id,
                    ambiguous=maybe_sent,
                    truncated=raw.truncated,
                )
            except SessionClosedError as exc:  # closed while this call was granted or retried
                exc.ambiguous = maybe_sent
                raise
            except _http.TLSError as exc:
                raise TransportError(
                    f"TLS failure talking to AssetPay: {exc}", request_id=request_id
                ) from None
            except (_http.NotSentError, _http.MaybeSentError) as exc:
                lost = exc
            except AssetPayError as exc:
                error = exc
            _log(spec, attempt, queued, raw, error, lost, envelope, request_id)

            if lost is not None:
                maybe_sent = maybe_sent or isinstance(lost, _http.MaybeSentError)
                failures += 1
                if failures <= retry.max_retries and (
                    spec.repeatable or isinstance(lost, _http.NotSentError)
                ):
                    await self._closable(self._sleep_backoff(failures), maybe_sent)
                    continue
                timed_out = isinstance(lost, _http.MaybeSentError) and lost.timed_out
                cls = RequestTimeoutError if timed_out else TransportError
                raise cls(
                    f"{spec.method} {spec.path} failed after {attempt} attempt(s): {lost}",
                    request_id=request_id,
                    ambiguous=maybe_sent,
                ) from None
            if isinstance(error, RateLimitedError):
                limiter.rate_limited(self._believed(error.retry_after, spec.route_group))
                if limited is None:
                    limited_until = loop.time() + retry.max_rate_limited_wait
                limited = error
                continue
            limiter.succeeded()
            if error is not None:
                assert raw is not None  # noqa: S101 - an answer was decoded
                if spec.safe and raw.status >= 500 and failures < retry.max_retries:
                    failures += 1  # a read has no effect: a server failure is worth another try
                    await self._closable(self._sleep_backoff(failures), maybe_sent)
                    continue
                raise error
            assert raw is not None  # noqa: S101 - no error, so an answer was decoded
            assert envelope is not None  # noqa: S101
            return decode(envelope, raw.status)

    def _believed(self, retry_after: float | None, group: RouteGroup) -> float | None:
        """``Retry-After`` as the limiter is told: at most the policy's bound."""
        if retry_after is None:
            return None
        bound = self._retry.retry_after_bound(self._quotas[group])
        if retry_after > bound:
            logger.debug(
                "Retry-After %gs is longer than the %gs believed; pausing %gs",
                retry_after,
                bound,
                bound,
            )
            return bound
        return retry_after

    async def _sleep_backoff(self, failures: int) -> None:
        await asyncio.sleep(_backoff(failures, self._retry.backoff_base, self._retry.backoff_cap))

    async def _closable(self, waiting: Coroutine[Any, Any, R], maybe_sent: bool) -> R:
        """Await ``waiting`` (a limiter's grant, a backoff) so that closing the session ends it at once.

        A closed session starts no such wait (so a call whose connection went down with the session takes
        no grant for a retry). Closing cancels the task (as ``asyncio.timeout`` does); the cancellation is
        turned into ``SessionClosedError`` here, unless someone else cancelled the task too. A cancelled
        limiter wait spends nothing and leaves the queue, so other sessions of the merchant keep their places.
        """
        if self._state is _State.CLOSED:
            waiting.close()
            error = SessionClosedError("the AssetPaySession was closed during this call")
            error.ambiguous = maybe_sent
            raise error
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
                error.ambiguous = maybe_sent
                raise error from None
            raise  # cancelled by its owner (too)
        finally:
            del self._waiting[task]
            self._closed_out.discard(task)

    async def _send(
        self, spec: proto.RequestSpec, headers: Mapping[str, str], token: SecretToken
    ) -> _http.RawResponse:
        """One attempt on the wire; the caller has been granted quota."""
        binding = self._binding
        if (
            binding is None
            or binding.loop is not asyncio.get_running_loop()
            or binding.http.closed
            or self._state is _State.CLOSED
        ):
            binding = await self.ensure_http()
        async with binding.slots:
            self.check_open()
            return await _http.send(
                binding.http,
                self._base_url + spec.path,
                spec,
                headers,
                token,
                timeout=self._timeout,
                options=binding.request_options,
            )

    # -- lifecycle ------------------------------------------------------------------------------------

    async def ensure_http(self) -> _LoopBinding:
        """The HTTP session of the running loop, created on first use."""
        self.check_open()
        loop = asyncio.get_running_loop()
        binding = self._binding
        if binding is not None and binding.loop is loop and not binding.http.closed:
            return binding
        if binding is not None and binding.loop is not loop and binding.loop.is_running():
            raise SessionClosedError(
                "this AssetPaySession is in use on another event loop that is still running; "
                "create one session per event loop"
            )
        if self._external_http is not None:
            http = self._external_http
            if http.closed:
                raise SessionClosedError(
                    "the aiohttp.ClientSession passed as http_session is closed"
                )
            http_loop = getattr(http, "_loop", loop)
            if http_loop is not loop:
                raise SessionClosedError(
                    "the aiohttp.ClientSession passed as http_session belongs to another event loop"
                )
            binding = _LoopBinding(
                loop,
                http,
                owned=False,
                slots=self._max_connections,
                request_options=_http.per_request_options(self._client_timeout),
            )
        else:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            http = aiohttp.ClientSession(
                connector=connector,
                timeout=self._client_timeout,
                skip_auto_headers=_http.SKIP_AUTO_HEADERS,
                raise_for_status=False,
            )
            binding = _LoopBinding(
                loop, http, owned=True, slots=self._max_connections, request_options={}
            )
            sentinel = _close_at_loop_shutdown(binding)
            await anext(sentinel)
            binding.sentinel = sentinel
        self._binding = binding
        self._state = _State.OPEN
        return binding

    async def aclose(self) -> None:
        """End the calls waiting for quota, then close the HTTP session if this requester created it."""
        self._state = _State.CLOSED
        for task in list(self._waiting):
            if task not in self._closed_out and task.cancel():
                self._closed_out.add(task)
        binding, self._binding = self._binding, None
        if binding is not None:
            if binding.sentinel is not None:
                await binding.sentinel.aclose()  # type: ignore[attr-defined]
            if binding.owned and not binding.http.closed:
                await binding.http.close()


def _log(  # noqa: PLR0917 - one private call site
    spec: proto.RequestSpec,
    attempt: int,
    queued: float,
    raw: _http.RawResponse | None,
    error: AssetPayError | None,
    lost: Exception | None,
    envelope: proto.Envelope | None,
    request_id: str,
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
        (envelope.request_id if envelope else error.request_id if error else None) or request_id,
        attempt,
        queued,
        f"{raw.wire_seconds:.3f}s" if raw else "-",
        f" failure={lost}" if lost else "",
    )
