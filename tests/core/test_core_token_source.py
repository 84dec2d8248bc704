"""Where a call's credential comes from (CONTRACTS C1), and what a refused connection costs (issue 22).

A fake `TokenSource` against a scripted server on loopback; the merchant's limiter counts the grants.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from assetpay_async import (
    AssetPayClient,
    AssetPayError,
    AuthenticationError,
    CancelResult,
    CancelTooSoonError,
    Quota,
    TransportError,
)
from assetpay_async import _protocol as proto
from assetpay_async._http import NotSentError, RawResponse
from assetpay_async._interfaces import TokenSource
from assetpay_async._limiting import LimiterPolicy, MemoryLimiterRegistry
from assetpay_async._quota import RouteGroup
from assetpay_async._tokens import SecretToken
from assetpay_async._transport import Requester
from assetpay_async._wire import WireRequest
from assetpay_async.testing import run_virtual
from tests.support.core import (
    FAST_RETRY,
    HANG_UP,
    ITEM_ID,
    MERCHANT,
    TRADE_ID,
    RecordedRequest,
    ScriptedServer,
    api_error,
    cancel_ok,
    make_token,
    new_session,
    success_body,
)

CANCEL_PATH = f"/client/trading/withdraw/{TRADE_ID}/items/{ITEM_ID}/cancel"

FIRST = make_token(steam_id="76561198000000011")
SECOND = make_token(steam_id="76561198000000022")


class FakeSource:
    """Hands out FIRST, and SECOND (or nothing) when asked to reissue; records what it was asked."""

    def __init__(self, *, reissued: str | None = SECOND) -> None:
        self.token = SecretToken(FIRST)
        self._reissued = reissued
        self.current_calls = 0
        self.rejected: list[SecretToken] = []

    async def current(self) -> SecretToken:
        self.current_calls += 1
        return self.token

    async def reissue(self, rejected: SecretToken) -> SecretToken | None:
        self.rejected.append(rejected)
        if self._reissued is None:
            return None
        self.token = SecretToken(self._reissued)
        return self.token


def _bearers(requests: list[RecordedRequest]) -> list[str]:
    return [r.headers["authorization"].removeprefix("Bearer ") for r in requests]


INVALID = api_error(401, "INVALID_TOKEN", 1102)


async def _cancel_with(source: TokenSource, *replies: object) -> tuple[object, list[str], int]:
    async with ScriptedServer() as server, new_session(server.url, merchant_id=MERCHANT) as session:
        server.script(*replies)  # type: ignore[arg-type]
        client = AssetPayClient(session, session._requester, source, MERCHANT)
        try:
            outcome: object = await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
        except AssetPayError as exc:
            outcome = exc
        return outcome, _bearers(server.requests), session.limiter_stats().granted


def test_a_refused_token_is_reissued_and_replayed_once_within_the_same_grant() -> None:
    source = FakeSource()
    outcome, bearers, granted = run_virtual(_cancel_with(source, INVALID, cancel_ok()))
    assert isinstance(outcome, CancelResult)
    assert bearers == [FIRST, SECOND]
    assert granted == 1  # the replay spends no second grant
    assert source.rejected == [SecretToken(FIRST)]


def test_a_second_refusal_raises_the_typed_error() -> None:
    source = FakeSource()
    outcome, bearers, granted = run_virtual(_cancel_with(source, INVALID, INVALID, cancel_ok()))
    assert isinstance(outcome, AuthenticationError)
    assert outcome.key == "INVALID_TOKEN"
    assert bearers == [FIRST, SECOND]  # replayed once, never twice
    assert granted == 1
    assert len(source.rejected) == 1


def test_a_source_that_cannot_reissue_ends_the_call_with_the_refusal() -> None:
    source = FakeSource(reissued=None)
    outcome, bearers, granted = run_virtual(_cancel_with(source, INVALID, cancel_ok()))
    assert isinstance(outcome, AuthenticationError)
    assert bearers == [FIRST]
    assert granted == 1


def test_the_source_is_asked_before_every_attempt() -> None:
    source = FakeSource()
    outcome, bearers, granted = run_virtual(
        _cancel_with(source, HANG_UP, api_error(400, "TRADE_CANCEL_TOO_SOON", 27))
    )
    assert isinstance(outcome, CancelTooSoonError)
    assert bearers == [FIRST, FIRST]
    assert source.current_calls == 2  # once per attempt, the retry after the lost response included
    assert granted == 2  # a lost response may have been counted: its retry pays again
    assert source.rejected == []  # an answer that is not about the token is not a reissue


def test_a_fixed_token_is_not_replayed() -> None:
    async def scenario() -> tuple[object, int]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(INVALID, cancel_ok())
            with pytest.raises(AuthenticationError):
                await session.client(FIRST).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return len(server.requests), session.limiter_stats().granted

    assert run_virtual(scenario()) == (1, 1)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_refused_connection_spends_no_cancel_quota_on_its_retries() -> None:
    """AssetPay never saw the attempt: each retry goes out on the grant the call already had."""

    async def scenario() -> tuple[TransportError, int]:
        url = f"http://127.0.0.1:{_closed_port()}"
        async with new_session(url, latency_margin=1.0) as session:
            with pytest.raises(TransportError) as caught:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return caught.value, session.limiter_stats().granted

    error, granted = run_virtual(scenario())
    assert granted == 1  # four attempts on one grant (main took 5)
    assert not error.ambiguous
    assert "4 attempt(s)" in str(error)


def test_without_a_latency_margin_a_refused_retry_takes_a_new_grant() -> None:
    """The grant is kept only as long as the limiter's schedule tolerates a late send (its J)."""

    async def scenario() -> int:
        url = f"http://127.0.0.1:{_closed_port()}"
        async with new_session(url, latency_margin=0.0) as session:
            with pytest.raises(TransportError):
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return session.limiter_stats().granted

    assert run_virtual(scenario()) == 4


class _QuickLimiters(MemoryLimiterRegistry):
    """Limiters that pace by a J far below the session's (as a measured J does once it came down)."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return _QuickLimiter(super().get(*args, **kwargs))


class _QuickLimiter:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    latency_margin = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_refused_retry_keeps_its_grant_only_within_the_j_the_limiter_paces_by() -> None:
    """The session says J = 1 s, the limiter paces by a measured J of 0: a retry takes a new grant."""

    async def scenario() -> int:
        url = f"http://127.0.0.1:{_closed_port()}"
        registry = _QuickLimiters()
        async with new_session(url, latency_margin=1.0, limiter=registry) as session:
            with pytest.raises(TransportError):
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            granted = session.limiter_stats().granted
        await registry.aclose()
        return granted

    assert run_virtual(scenario()) == 4


class ScriptedTransport:
    """A transport of the test's own (no sockets): each attempt gets the next scripted outcome."""

    def __init__(self, *outcomes: RawResponse | Exception) -> None:
        self._outcomes = list(outcomes)
        self.sent: list[WireRequest] = []
        self.closed = False

    async def send(self, request: WireRequest) -> RawResponse:
        self.sent.append(request)
        outcome = self._outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        self.closed = True


def test_the_transport_seam_can_be_replaced() -> None:
    """The requester talks to whatever transport it is given: refused twice, then answered, one grant."""
    answer = {"tradeId": str(TRADE_ID), "itemId": str(ITEM_ID), "status": "cancelled"}
    transport = ScriptedTransport(
        NotSentError("refused"),
        NotSentError("refused"),
        RawResponse(200, {"content-type": "application/json"}, success_body(answer), 0.01),
    )

    async def scenario() -> tuple[CancelResult, int]:
        registry = MemoryLimiterRegistry()
        requester = Requester(
            base_url="https://api.example",
            http_session=None,
            timeout=5.0,
            connect_timeout=1.0,
            max_connections=4,
            retry=FAST_RETRY,
            registry=registry,
            quotas={RouteGroup.CANCEL_ITEM: Quota(10, 60.0)},
            policy=LimiterPolicy.EVEN,
            latency_margin=1.0,
            max_queue_wait=None,
            transport=transport,
        )
        call = proto.cancel_item_call(TRADE_ID, ITEM_ID)
        result = await requester.call(SecretToken(FIRST), MERCHANT, call.spec, call.decode)
        granted = requester.limiter(MERCHANT, RouteGroup.CANCEL_ITEM).stats().granted
        await requester.aclose()
        await registry.aclose()
        return result, granted

    result, granted = run_virtual(scenario())
    assert result.trade_id == str(TRADE_ID)
    assert [r.url for r in transport.sent] == [f"https://api.example{CANCEL_PATH}"] * 3
    assert granted == 1
    assert transport.closed
