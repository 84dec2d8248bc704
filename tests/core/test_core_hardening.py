"""Hardening of the request path (issue 12): never stuck, any 429 a rate limit, outcomes said truthfully.

Every test talks to a :class:`tests.support.core.ScriptedServer` over 127.0.0.1 and runs on virtual time
(:func:`assetpay_async.testing.run_virtual`), so pauses of minutes cost nothing and come out the same every run.
``docs/evidence.md`` ("Request-path hardening") lists each fault with the test that pins it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import attrs
import pytest

from assetpay_async import (
    AssetPayError,
    AssetPaySession,
    CancelResult,
    ConfigurationError,
    InvalidRequestError,
    InvalidResponseError,
    QueueTimeoutError,
    Quota,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    SessionClosedError,
    Trade,
    TransportError,
)
from assetpay_async._http import MAX_RESPONSE_BYTES
from assetpay_async.testing import run_virtual
from tests.support.core import (
    FAST_RETRY,
    HANG_UP,
    ITEM_ID,
    TRADE_ID,
    RecordedRequest,
    Reply,
    ScriptedServer,
    api_error,
    cancel_ok,
    echo_cancel,
    make_token,
    new_session,
    success_body,
)

# 10 a minute, no latency margin: one grant every 60 / 9 s, a 429 without Retry-After pauses one 60 s window,
# and a Retry-After is believed up to three windows (180 s) unless the policy says otherwise.
SLOW = Quota(10, 60.0)
INTERVAL = 60.0 / 9
TRADE_BODY = {
    "id": str(TRADE_ID),
    "type": "withdraw",
    "status": "active",
    "createdAt": "2026-01-01T00:00:00Z",
}
HTML = "text/html"


def _trade_ok() -> Reply:
    return Reply(200, success_body(TRADE_BODY))


def _ids(n: int) -> list[tuple[str, str]]:
    return [
        (f"00000000-0000-4000-8000-{i:012x}", f"11111111-1111-4111-8111-{i:012x}") for i in range(n)
    ]


def _request_ids(requests: list[RecordedRequest]) -> set[str]:
    return {r.headers["x-request-id"] for r in requests}


# -- Retry-After is believed only up to a bound ---------------------------------------------------------


@pytest.mark.parametrize(
    "retry_after",
    ["1000000000", "Fri, 31 Dec 9999 23:59:59 GMT"],
    ids=["a-billion-seconds", "year-9999"],
)
def test_a_huge_retry_after_pauses_the_merchant_for_three_windows_only(retry_after: str) -> None:
    async def scenario() -> tuple[CancelResult | AssetPayError, float, float, float, int]:
        async with asyncio.timeout(1000):  # without the bound this would wait for decades
            return await paused_scenario()

    async def paused_scenario() -> tuple[CancelResult | AssetPayError, float, float, float, int]:
        loop = asyncio.get_running_loop()
        async with ScriptedServer() as server, new_session(server.url, cancel_quota=SLOW) as one:
            limited = api_error(429, "RATE_LIMITED", 1005, headers=(("Retry-After", retry_after),))
            server.script(limited)
            server.respond = echo_cancel
            client = one.client(make_token())

            async def first_call() -> tuple[CancelResult | AssetPayError, float]:
                try:
                    result = await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
                except AssetPayError as exc:
                    return exc, loop.time()
                return result, loop.time()

            first = asyncio.create_task(first_call())
            await server.wait_for_requests(1)
            await asyncio.sleep(1)
            paused_for = one.limiter_stats().paused_for
            # A new session of the same merchant, as a restarted worker would open: not blocked for decades.
            async with new_session(server.url, cancel_quota=SLOW) as other:
                await other.client(make_token()).cancel_withdrawal_item(*_ids(1)[0])
                later_done = loop.time()
            result, first_done = await first
            return result, first_done, paused_for, later_done, len(server.requests)

    result, first_done, paused_for, later_done, requests = run_virtual(scenario())
    assert isinstance(result, CancelResult)
    assert result.trade_id == str(TRADE_ID)
    assert paused_for == pytest.approx(179.0, abs=0.01)  # 3 windows from the 429 at 0, read at 1
    assert first_done == pytest.approx(180.0, abs=0.1)
    assert later_done <= 180.0 + 2 * INTERVAL + 0.1  # behind it, at the slowed-down rate
    assert requests == 3


def test_the_retry_after_bound_is_configurable() -> None:
    async def scenario() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        retry = RetryPolicy(backoff_base=0.001, max_retry_after=20.0)
        async with (
            ScriptedServer() as server,
            new_session(server.url, cancel_quota=SLOW, retry=retry) as session,
        ):
            limited = api_error(429, "RATE_LIMITED", 1005, headers=(("Retry-After", "86400"),))
            server.script(limited, cancel_ok())
            await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return loop.time(), len(server.requests)

    elapsed, requests = run_virtual(scenario())
    assert elapsed == pytest.approx(20.0, abs=0.1)
    assert requests == 2


def test_a_retry_after_within_the_bound_is_believed_in_full() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        async with (
            ScriptedServer() as server,
            new_session(server.url, cancel_quota=SLOW) as session,
        ):
            limited = api_error(429, "RATE_LIMITED", 1005, headers=(("Retry-After", "150"),))
            server.script(limited, cancel_ok())
            await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return loop.time()

    assert run_virtual(scenario()) == pytest.approx(150.0, abs=0.1)


# -- max_rate_limited_wait is a deadline ----------------------------------------------------------------


def test_max_rate_limited_wait_ends_the_call_on_time_without_another_429() -> None:
    """One 429 whose pause outlasts the deadline: the call ends by the deadline, nothing more is sent."""

    async def scenario() -> tuple[RateLimitedError, float, int, int]:
        loop = asyncio.get_running_loop()
        retry = RetryPolicy(backoff_base=0.001, max_rate_limited_wait=30.0, max_retry_after=3600.0)
        async with (
            ScriptedServer() as server,
            new_session(server.url, cancel_quota=SLOW, retry=retry) as session,
        ):
            limited = api_error(429, "RATE_LIMITED", 1005, headers=(("Retry-After", "1000"),))
            server.script(limited)
            server.respond = echo_cancel
            with pytest.raises(RateLimitedError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            ended = loop.time()
            await asyncio.sleep(2000)  # nothing goes out later either
            return info.value, ended, len(server.requests), session.limiter_stats().queued

    exc, ended, requests, queued = run_virtual(scenario())
    assert ended <= 30.0
    assert requests == 1
    assert queued == 0  # it left the limiter's queue
    assert exc.retry_after == 1000.0  # what the server said is kept
    assert exc.ambiguous is False


def test_a_deadline_that_falls_inside_the_queue_ends_the_call_then() -> None:
    """Pauses of 20 s, a deadline of 50 s: the call is sent at 0, 20 and 40, then ends at 50 at the latest."""

    async def scenario() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        retry = RetryPolicy(backoff_base=0.001, max_rate_limited_wait=50.0)
        async with (
            ScriptedServer() as server,
            new_session(server.url, cancel_quota=SLOW, retry=retry) as session,
        ):
            limited = api_error(429, "RATE_LIMITED", 1005, headers=(("Retry-After", "20"),))
            server.respond = lambda _request: limited
            with pytest.raises(RateLimitedError):
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return loop.time(), len(server.requests)

    ended, requests = run_virtual(scenario())
    assert ended <= 50.0
    assert requests == 3


def test_the_queue_budget_still_wins_when_it_is_shorter() -> None:
    async def scenario() -> QueueTimeoutError:
        retry = RetryPolicy(backoff_base=0.001, max_rate_limited_wait=300.0)
        async with (
            ScriptedServer() as server,
            new_session(server.url, cancel_quota=SLOW, retry=retry) as session,
        ):
            limited = api_error(429, "RATE_LIMITED", 1005, headers=(("Retry-After", "60"),))
            server.script(limited)
            with pytest.raises(QueueTimeoutError) as info:
                await session.client(make_token()).cancel_withdrawal_item(
                    TRADE_ID, ITEM_ID, max_queue_wait=5.0
                )
            return info.value

    assert isinstance(run_virtual(scenario()), QueueTimeoutError)


# -- closing a session ends its queued calls at once ----------------------------------------------------


def test_aclose_ends_queued_calls_at_once_and_hands_their_places_back() -> None:
    async def scenario() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        async with ScriptedServer() as server:
            server.respond = echo_cancel
            closing = new_session(server.url, cancel_quota=SLOW)
            staying = new_session(server.url, cancel_quota=SLOW)
            mine = closing.client(make_token())
            tasks = [asyncio.create_task(mine.cancel_withdrawal_item(t, i)) for t, i in _ids(100)]
            await asyncio.sleep(1)
            other = asyncio.create_task(
                staying.client(make_token(steam_id="2")).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            )
            await asyncio.sleep(1)
            queued_before = staying.limiter_stats().queued
            closed_at = loop.time()
            await closing.aclose()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            ended_at = loop.time()
            queued_after = staying.limiter_stats().queued
            await other
            other_done = loop.time()
            stats = staying.limiter_stats()
            await staying.aclose()
            return {
                "outcomes": outcomes,
                "queued_before": queued_before,
                "queued_after": queued_after,
                "closed_at": closed_at,
                "ended_at": ended_at,
                "other_done": other_done,
                "granted": stats.granted,
                "requests": len(server.requests),
            }

    seen = run_virtual(scenario())
    outcomes = seen["outcomes"]
    closed = [o for o in outcomes if isinstance(o, SessionClosedError)]
    assert sum(isinstance(o, CancelResult) for o in outcomes) == 1  # the one granted at once
    assert len(closed) == 99
    assert all(o.ambiguous is False for o in closed)  # none of them was ever sent
    assert seen["queued_before"] == 100  # 99 of the closing session, 1 of the other
    assert seen["ended_at"] == seen["closed_at"]  # at once, not when each turn comes round
    assert seen["queued_after"] == 1  # only the other session's call is left
    # The other session's call moves up to the head: its grant comes one interval after the first one.
    assert seen["other_done"] <= INTERVAL + 0.1
    assert seen["granted"] == seen["requests"] == 2


def test_aclose_ends_a_call_queued_for_its_retry_as_outcome_unknown() -> None:
    async def scenario() -> tuple[SessionClosedError, float, int]:
        loop = asyncio.get_running_loop()
        async with ScriptedServer() as server:
            server.script(HANG_UP)  # the first attempt may have reached AssetPay
            session = new_session(server.url, cancel_quota=Quota(1, 60.0))
            task = asyncio.create_task(
                session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            )
            await asyncio.sleep(1)  # the retry now waits a minute for the next grant
            await session.aclose()
            with pytest.raises(SessionClosedError) as info:
                await task
            return info.value, loop.time(), len(server.requests)

    exc, ended, requests = run_virtual(scenario())
    assert exc.ambiguous is True
    assert ended == pytest.approx(1.0, abs=0.01)
    assert requests == 1


def test_a_call_cancelled_by_its_owner_while_the_session_closes_stays_cancelled() -> None:
    async def scenario() -> bool:
        async with ScriptedServer() as server:
            server.respond = echo_cancel
            session = new_session(server.url, cancel_quota=Quota(1, 60.0))
            client = session.client(make_token())
            await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            task = asyncio.create_task(client.cancel_withdrawal_item(TRADE_ID, ITEM_ID))
            await asyncio.sleep(1)
            task.cancel()
            await session.aclose()
            try:
                await task
            except asyncio.CancelledError:
                return True
            return False

    assert run_virtual(scenario()) is True


# -- any HTTP 429 is a rate limit ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply(429, b"<html><body>Too Many Requests</body></html>", content_type=HTML),
        Reply(429, b"", content_type=None),
        Reply(429, b'{"message": "slow down"}'),
        Reply(429, b'{"success": true, "data": {}}'),
    ],
    ids=["cdn-html", "empty", "other-json", "success-envelope"],
)
def test_a_429_without_an_envelope_pauses_the_merchant_like_any_429(reply: Reply) -> None:
    async def scenario() -> tuple[CancelResult, float, int, int]:
        loop = asyncio.get_running_loop()
        async with (
            ScriptedServer() as server,
            new_session(server.url, cancel_quota=SLOW) as session,
        ):
            server.script(reply, cancel_ok())
            result = await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            stats = session.limiter_stats()
            return result, loop.time(), stats.rate_limited, len(server.requests)

    result, elapsed, rate_limited, requests = run_virtual(scenario())
    assert result.trade_id == str(TRADE_ID)
    assert elapsed == pytest.approx(60.0, abs=0.1)  # one window without Retry-After
    assert rate_limited == 1
    assert requests == 2


def test_a_cdn_429_page_with_retry_after_is_believed() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        async with (
            ScriptedServer() as server,
            new_session(server.url, cancel_quota=SLOW) as session,
        ):
            page = Reply(
                429,
                b"<html>rate limited</html>",
                content_type=HTML,
                headers=(("Retry-After", "9"),),
            )
            server.script(page, cancel_ok())
            await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return loop.time()

    assert run_virtual(scenario()) == pytest.approx(9.0, abs=0.1)


def test_a_storm_of_cdn_429s_ends_as_rate_limited_error() -> None:
    async def scenario() -> RateLimitedError:
        retry = RetryPolicy(backoff_base=0.001, max_rate_limited_wait=10.0)
        async with (
            ScriptedServer() as server,
            new_session(server.url, cancel_quota=SLOW, retry=retry) as session,
        ):
            server.respond = lambda _request: Reply(429, b"<html>no</html>", content_type=HTML)
            with pytest.raises(RateLimitedError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value

    exc = run_virtual(scenario())
    assert exc.http_status == 429
    assert exc.key is None
    assert "without an AssetPay envelope" in str(exc)


# -- reads are retried after a 5xx, a cancel never ------------------------------------------------------

FIVE_XX = [
    Reply(502, b"<html>Bad Gateway</html>", content_type=HTML),
    Reply(503, b"<html>Service Unavailable</html>", content_type=HTML),
    Reply(504, b"", content_type=None),
    Reply(500, b"<html>Internal Server Error</html>", content_type=HTML),
    api_error(500, "SERVER_ERROR", 1006),
    api_error(503, "SYSTEM_MAINTENANCE", 1007),
]
FIVE_XX_IDS = ["502-html", "503-html", "504-empty", "500-html", "500-envelope", "503-envelope"]


@pytest.mark.parametrize("reply", FIVE_XX, ids=FIVE_XX_IDS)
def test_a_read_is_retried_after_a_5xx_with_the_same_request_id(reply: Reply) -> None:
    async def scenario() -> tuple[Trade, list[RecordedRequest]]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(reply, _trade_ok())
            trade = await session.client(make_token()).get_trade(TRADE_ID)
            return trade, server.requests

    trade, requests = run_virtual(scenario())
    assert trade.id == str(TRADE_ID)
    assert len(requests) == 2
    assert len(_request_ids(requests)) == 1


@pytest.mark.parametrize("reply", FIVE_XX, ids=FIVE_XX_IDS)
def test_a_read_gives_up_after_the_retries(reply: Reply) -> None:
    async def scenario() -> tuple[AssetPayError, int]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.respond = lambda _request: reply
            with pytest.raises(AssetPayError) as info:
                await session.client(make_token()).get_trade(TRADE_ID)
            return info.value, len(server.requests)

    exc, requests = run_virtual(scenario())
    assert isinstance(exc, ServerError | InvalidResponseError)
    assert requests == FAST_RETRY.max_retries + 1


@pytest.mark.parametrize("reply", FIVE_XX, ids=FIVE_XX_IDS)
def test_a_cancel_is_never_retried_after_a_5xx_and_its_outcome_is_unknown(reply: Reply) -> None:
    async def scenario() -> tuple[AssetPayError, int]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(reply, cancel_ok())
            with pytest.raises(AssetPayError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value, len(server.requests)

    exc, requests = run_virtual(scenario())
    assert requests == 1
    assert exc.ambiguous is True  # the server may have cancelled the item before it failed


# -- a missing route stays recognisable -----------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply(404, b"<html>Not Found</html>", content_type=HTML),
        Reply(404, b"", content_type=None),
        Reply(405, b"Method Not Allowed", content_type="text/plain"),
    ],
    ids=["404-html", "404-empty", "405-text"],
)
@pytest.mark.parametrize("call", ["cancel", "read"])
def test_a_404_or_405_without_an_envelope_is_an_invalid_response_never_retried(
    reply: Reply, call: str
) -> None:
    async def scenario() -> tuple[InvalidResponseError, int]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.respond = lambda _request: reply
            client = session.client(make_token())
            # The list route: get_trade would go on to the list after a missing single-trade route.
            attempt = (
                client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
                if call == "cancel"
                else client.list_trades()
            )
            with pytest.raises(InvalidResponseError) as info:
                await attempt
            return info.value, len(server.requests)

    exc, requests = run_virtual(scenario())
    assert exc.http_status == reply.status
    assert exc.ambiguous is False
    assert requests == 1


# -- the body read is capped ----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "ambiguous"), [(200, True), (400, False)])
def test_a_body_over_the_cap_is_refused_unread(status: int, ambiguous: bool) -> None:
    async def scenario() -> tuple[InvalidResponseError, int]:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(Reply(status, b"[" + b" " * MAX_RESPONSE_BYTES + b"]"))
            with pytest.raises(InvalidResponseError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value, len(server.requests)

    exc, requests = run_virtual(scenario())
    assert "larger than" in str(exc)
    assert exc.http_status == status
    assert exc.ambiguous is ambiguous  # a 2xx: AssetPay acted, only its answer is refused
    assert requests == 1


def test_a_body_just_under_the_cap_is_read() -> None:
    async def scenario() -> CancelResult:
        async with ScriptedServer() as server, new_session(server.url) as session:
            body = success_body(
                {"tradeId": str(TRADE_ID), "itemId": str(ITEM_ID), "status": "cancelled"}
            )
            server.script(Reply(200, body + b" " * (MAX_RESPONSE_BYTES - len(body))))
            return await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)

    assert run_virtual(scenario()).item_id == str(ITEM_ID)


def test_a_chunked_body_without_length_is_cut_at_the_cap() -> None:
    """No Content-Length: the SDK reads in chunks and stops a little past the cap."""
    chunk = b" " * 65_536
    total_chunks = 2 * MAX_RESPONSE_BYTES // len(chunk)  # twice the cap on offer

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(total_chunks):
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def scenario() -> InvalidResponseError:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with new_session(f"http://127.0.0.1:{port}") as session:
                with pytest.raises(InvalidResponseError) as info:
                    await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value
        finally:
            server.close()
            await server.wait_closed()

    exc = run_virtual(scenario())
    assert "larger than" in str(exc)
    assert exc.ambiguous is True


# -- a token a header cannot carry is refused by client() ------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["\x0b", "\x0c", "\x7f", "\x1b", "\x00", "\x85", "\u00e9", "\u20ac", "\ufeff"]
)
def test_a_token_with_a_character_a_header_cannot_carry_is_refused_by_client(bad: str) -> None:
    token = make_token()
    spoiled = token[:20] + bad + token[20:]
    session = new_session("http://127.0.0.1:9", merchant_id="merchant-42")
    with pytest.raises(InvalidRequestError) as info:
        session.client(spoiled)
    assert token[:20] not in str(info.value)
    assert token[21:] not in str(info.value)
    assert session.limiter_stats().granted == 0


# -- one configuration error type ------------------------------------------------------------------------

BAD_SESSION_ARGUMENTS: list[dict[str, Any]] = [
    {},
    {"tier": "bogus"},
    {"tier": 3},
    {"tier": "verified", "limiter": 123},
    {"tier": "verified", "limiter": "localhost:6379"},
    {"tier": "verified", "limiter": object()},
    {"tier": "verified", "timeout": -1},
    {"tier": "verified", "timeout": 0},
    {"tier": "verified", "timeout": math.nan},
    {"tier": "verified", "timeout": "30"},
    {"tier": "verified", "connect_timeout": math.inf},
    {"tier": "verified", "latency_margin": -0.5},
    {"tier": "verified", "max_connections": 0},
    {"tier": "verified", "max_connections": True},
    {"tier": "verified", "max_queue_wait": -1},
    {"tier": "verified", "base_url": "ftp://example.com"},
    {"tier": "verified", "base_url": None},
    {"tier": "verified", "merchant_id": ""},
    {"tier": "verified", "policy": "bogus"},
    {"tier": "verified", "retry": {"max_retries": 3}},
    {"tier": "verified", "http_session": "not a session"},
    {"tier": "verified", "wall_clock": 5},
    {"cancel_quota": "60/min"},
    {"tier": "verified", "trades_quota": (30, 60)},
]


@pytest.mark.parametrize("arguments", BAD_SESSION_ARGUMENTS, ids=lambda a: ",".join(a) or "none")
def test_every_bad_session_argument_is_a_configuration_error(arguments: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        AssetPaySession(**arguments)
    assert isinstance(info.value, AssetPayError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "build",
    [
        lambda: RetryPolicy(max_retries=-1),
        lambda: RetryPolicy(max_retries=1.5),  # type: ignore[arg-type]
        lambda: RetryPolicy(backoff_base=-1.0),
        lambda: RetryPolicy(backoff_cap=math.inf),
        lambda: RetryPolicy(max_rate_limited_wait=math.nan),
        lambda: RetryPolicy(max_retry_after=0.0),
        lambda: Quota(0, 60.0),
        lambda: Quota(10, -1.0),
        lambda: Quota(10, math.inf),
    ],
    ids=[
        "negative-retries",
        "fractional-retries",
        "negative-backoff",
        "infinite-cap",
        "nan-wait",
        "zero-retry-after",
        "zero-limit",
        "negative-period",
        "infinite-period",
    ],
)
def test_bad_policies_and_quotas_are_configuration_errors(build: Any) -> None:
    with pytest.raises(ConfigurationError):
        build()


def test_request_id_is_on_every_error() -> None:
    assert AssetPayError("x").request_id is None
    assert SessionClosedError("x").request_id is None
    assert QueueTimeoutError("x", waited=0.0).request_id is None
    assert TransportError("x", request_id="r-1").request_id == "r-1"


def test_a_refused_connection_carries_the_request_id_it_sent(closed_port: int) -> None:
    async def scenario() -> AssetPayError:
        async with new_session(f"http://127.0.0.1:{closed_port}") as session:
            with pytest.raises(AssetPayError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            return info.value

    assert run_virtual(scenario()).request_id is not None


def test_aclose_with_a_call_on_the_wire_takes_no_grant_after_closing() -> None:
    async def scenario() -> tuple[SessionClosedError, int, int]:
        async with ScriptedServer() as server:
            server.respond = lambda _request: attrs.evolve(cancel_ok(), delay=60)
            session = new_session(server.url)
            task = asyncio.create_task(
                session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            )
            await server.wait_for_requests(1)
            await session.aclose()  # the connection under the call goes down with the HTTP session
            with pytest.raises(SessionClosedError) as info:
                await task
            return info.value, session.limiter_stats().granted, len(server.requests)

    exc, granted, requests = run_virtual(scenario())
    assert exc.ambiguous is True  # the request had reached the server
    assert (
        granted == requests == 1
    )  # no retry took a grant from the merchant's limiter after closing
