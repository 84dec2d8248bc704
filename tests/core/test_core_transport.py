"""Real sockets on 127.0.0.1, on virtual time: what is retried, what is not, and what the caller is told.

Each test runs its scenario with :func:`assetpay_async.testing.run_virtual`, so server delays and timeouts
of many seconds cost no wall time and come out the same every run.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assetpay_async import (
    APIError,
    AssetPayError,
    CancelResult,
    ItemNotFoundError,
    NotCancellableError,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from assetpay_async._errors import InvalidResponseError
from assetpay_async._http import USER_AGENT
from assetpay_async._transport import _backoff
from assetpay_async.testing import run_virtual
from tests.support.core import (
    HANG_UP,
    ITEM_ID,
    TRADE_ID,
    RecordedRequest,
    Reply,
    ScriptedServer,
    api_error,
    cancel_ok,
    make_token,
    new_session,
)

CANCEL_PATH = f"/client/trading/withdraw/{TRADE_ID}/items/{ITEM_ID}/cancel"


def _request_ids(requests: list[RecordedRequest]) -> set[str]:
    return {r.headers["x-request-id"] for r in requests}


def test_request_shape_on_the_wire() -> None:
    token = make_token()

    async def scenario() -> list[RecordedRequest]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(cancel_ok())
            await session.client(token).cancel_withdrawal_item(TRADE_ID, str(ITEM_ID))
            return server.requests

    [request] = run_virtual(scenario())
    assert (request.method, request.target) == ("POST", CANCEL_PATH)
    assert request.body == b""
    assert request.headers.get("content-length", "0") == "0"
    assert "content-type" not in request.headers  # no body, so no made-up octet-stream type
    assert request.headers["authorization"] == f"Bearer {token}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    assert re.fullmatch(r"assetpay-async/\S+ aiohttp/\S+ Python/\d+\.\d+\.\d+\S*", USER_AGENT)
    assert uuid.UUID(request.headers["x-request-id"]).version == 4


def test_an_injected_session_sends_the_same_request_and_keeps_its_own_settings() -> None:
    """Our own session carries the request defaults; an injected one gets them on each request instead."""

    async def scenario() -> tuple[list[RecordedRequest], bool]:
        async with ScriptedServer() as server, aiohttp.ClientSession(raise_for_status=True) as http:
            async with new_session(server.url, http_session=http) as session:
                server.script(api_error(404, "ITEM_NOT_FOUND", 2201))
                with pytest.raises(ItemNotFoundError):  # not aiohttp's ClientResponseError
                    await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return server.requests, http.closed

    [request], closed_by_sdk = run_virtual(scenario())
    assert "content-type" not in request.headers
    assert request.body == b""
    assert closed_by_sdk is False


def test_connection_refused_is_retried_then_not_ambiguous(closed_port: int) -> None:
    async def scenario() -> tuple[TransportError, int]:
        async with new_session(f"http://127.0.0.1:{closed_port}") as session:
            with pytest.raises(TransportError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value, session.limiter_stats().granted

    exc, granted = run_virtual(scenario())
    assert type(exc) is TransportError
    assert exc.ambiguous is False  # nothing can have reached AssetPay
    assert granted == 4  # the first attempt and 3 retries, each paid to the limiter
    assert exc.request_id is not None
    assert "4 attempt(s)" in str(exc)


def test_a_lost_response_is_retried_with_the_same_request_id_and_makes_28_ambiguous() -> None:
    async def scenario() -> tuple[NotCancellableError, list[RecordedRequest]]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(HANG_UP, api_error(400, "TRADE_NOT_CANCELLABLE", 28))
            with pytest.raises(NotCancellableError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value, server.requests

    exc, requests = run_virtual(scenario())
    assert len(requests) == 2
    assert len(_request_ids(requests)) == 1
    # The first attempt may have cancelled the item: "not cancellable" may mean "already cancelled".
    assert exc.ambiguous is True
    assert "outcome unknown" in str(exc)


def test_a_lost_response_then_success_returns_the_result() -> None:
    async def scenario() -> tuple[CancelResult, list[RecordedRequest]]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(HANG_UP, cancel_ok(request_id="srv-2"))
            result = await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return result, server.requests

    result, requests = run_virtual(scenario())
    assert (result.trade_id, result.item_id, result.request_id) == (
        str(TRADE_ID),
        str(ITEM_ID),
        "srv-2",
    )
    assert len(requests) == 2
    assert len(_request_ids(requests)) == 1


def test_a_lost_response_does_not_make_other_errors_ambiguous() -> None:
    async def scenario() -> ItemNotFoundError:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(HANG_UP, api_error(404, "ITEM_NOT_FOUND", 2201))
            with pytest.raises(ItemNotFoundError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value

    assert run_virtual(scenario()).ambiguous is False


@pytest.mark.parametrize(
    ("reply", "cls"),
    [
        (api_error(500, "SERVER_ERROR", 1006), ServerError),
        (api_error(418, "SOMETHING_NEW", 4242), APIError),
    ],
    ids=["500", "unknown-key"],
)
def test_a_lost_response_then_an_error_that_proves_nothing_is_ambiguous(
    reply: Reply, cls: type[APIError]
) -> None:
    async def scenario() -> APIError:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(HANG_UP, reply)
            with pytest.raises(cls) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value

    assert run_virtual(scenario()).ambiguous is True


def test_responses_lost_on_every_attempt_end_ambiguous() -> None:
    async def scenario() -> tuple[TransportError, list[RecordedRequest]]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.respond = lambda _request: HANG_UP
            with pytest.raises(TransportError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value, server.requests

    exc, requests = run_virtual(scenario())
    assert type(exc) is TransportError
    assert exc.ambiguous is True
    assert len(requests) == 4
    assert _request_ids(requests) == {exc.request_id}


@pytest.mark.parametrize(
    ("reply", "cls"),
    [
        (api_error(500, "SERVER_ERROR", 1006), ServerError),
        (api_error(503, "SYSTEM_MAINTENANCE", 1007), ServerError),
        (api_error(503, "SERVICE_UNAVAILABLE", 1009), ServerError),
        (Reply(502, b"<html>Bad Gateway</html>", content_type="text/html"), InvalidResponseError),
        (Reply(504, b"", content_type=None), InvalidResponseError),
        (api_error(404, "ITEM_NOT_FOUND", 2201), ItemNotFoundError),
        (api_error(400, "TRADE_NOT_CANCELLABLE", 28), NotCancellableError),
        (Reply(302, b"", headers=(("Location", "https://login.example/"),)), InvalidResponseError),
    ],
    ids=["500", "503-maintenance", "503-unavailable", "502-html", "504-empty", "404", "400", "302"],
)
def test_answers_to_a_cancel_are_never_retried(reply: Reply, cls: type[Exception]) -> None:
    async def scenario() -> tuple[Exception, int]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(reply, cancel_ok())
            with pytest.raises(cls) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value, len(server.requests)

    exc, requests = run_virtual(scenario())
    assert type(exc) is cls
    assert requests == 1
    # Any 5xx (an envelope, a server's or a gateway's page) may follow a cancel the server carried out:
    # outcome unknown, and never retried.
    assert isinstance(exc, AssetPayError)
    assert exc.ambiguous is (reply.status >= 500)


def test_a_timeout_is_retried_then_raises_request_timeout_error() -> None:
    async def scenario() -> tuple[RequestTimeoutError, list[RecordedRequest], float]:
        loop = asyncio.get_running_loop()
        retry = RetryPolicy(max_retries=1, backoff_base=0.001, backoff_cap=0.001)
        async with (
            ScriptedServer() as server,
            new_session(server.url, timeout=2.0, retry=retry) as session,
        ):
            server.respond = lambda _request: Reply(200, b"{}", delay=3600)
            started = loop.time()
            with pytest.raises(RequestTimeoutError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value, server.requests, loop.time() - started

    exc, requests, elapsed = run_virtual(scenario())
    assert isinstance(exc, TimeoutError)
    assert isinstance(exc, TransportError)
    assert exc.ambiguous is True
    assert len(requests) == 2
    assert _request_ids(requests) == {exc.request_id}
    assert 4.0 <= elapsed < 4.1  # two attempts of 2 s each on the wire, nothing else


def test_cancelling_the_task_mid_request_does_not_retry() -> None:
    async def scenario() -> int:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.respond = lambda _request: cancel_ok()
            server.script(Reply(200, b"{}", delay=60))
            client = session.client(make_token())
            task = asyncio.create_task(client.cancel_withdrawal_item(TRADE_ID, ITEM_ID))
            await server.wait_for_requests(1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(120)
            return len(server.requests)

    assert run_virtual(scenario()) == 1


def test_cancelling_the_task_during_backoff_does_not_retry() -> None:
    async def scenario() -> int:
        slow_backoff = RetryPolicy(max_retries=3, backoff_base=30.0, backoff_cap=30.0)
        async with (
            ScriptedServer() as server,
            new_session(server.url, retry=slow_backoff) as session,
        ):
            server.respond = lambda _request: HANG_UP
            client = session.client(make_token())
            task = asyncio.create_task(client.cancel_withdrawal_item(TRADE_ID, ITEM_ID))
            await server.wait_for_requests(1)
            await asyncio.sleep(0.01)  # the attempt fails; the call now sleeps before retrying
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(120)
            return len(server.requests)

    assert run_virtual(scenario()) == 1


def test_a_429_goes_back_to_the_queue_with_the_same_request_id() -> None:
    async def scenario() -> tuple[CancelResult, list[RecordedRequest], float]:
        loop = asyncio.get_running_loop()
        retry = RetryPolicy(backoff_base=0.001, max_retry_after=60.0)  # 7 s is believed
        async with ScriptedServer() as server, new_session(server.url, retry=retry) as session:
            limited = api_error(429, "RATE_LIMITED", 1005, headers=(("Retry-After", "7"),))
            server.script(limited, cancel_ok())
            started = loop.time()
            result = await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return result, server.requests, loop.time() - started

    result, requests, elapsed = run_virtual(scenario())
    assert result.trade_id == str(TRADE_ID)
    assert len(requests) == 2
    assert len(_request_ids(requests)) == 1
    assert elapsed >= 7.0  # not before Retry-After


def test_429s_give_up_after_max_rate_limited_wait_counted_from_the_first() -> None:
    """Regression: on a clock that reads 0.0 at the first 429, the wait was counted from the second."""

    async def scenario() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        retry = RetryPolicy(backoff_base=0.001, max_rate_limited_wait=3.0)
        async with ScriptedServer() as server, new_session(server.url, retry=retry) as session:
            limited = api_error(429, "RATE_LIMITED", 1005, headers=(("Retry-After", "1"),))
            server.script(*[limited] * 10)
            with pytest.raises(RateLimitedError):
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return loop.time(), len(server.requests)

    gave_up_at, requests = run_virtual(scenario())
    assert gave_up_at == pytest.approx(3.0, abs=0.1)  # first 429 at 0.0, one a second after it
    assert requests == 4


@given(
    attempt=st.integers(min_value=1, max_value=64),
    base=st.floats(min_value=0.0, max_value=10.0),
    cap=st.floats(min_value=0.0, max_value=60.0),
)
def test_backoff_is_jittered_and_capped(attempt: int, base: float, cap: float) -> None:
    delay = _backoff(attempt, base, cap)
    assert 0.0 <= delay <= min(cap, base * 2 ** (attempt - 1))
