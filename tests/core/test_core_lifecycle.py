"""The session's life: lazy HTTP session, owned vs injected, closing, garbage collection, several loops."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings

import aiohttp
import pytest

from assetpay_async import (
    AssetPayClient,
    AssetPaySession,
    CancelResult,
    ConfigurationError,
    NotCancellableError,
    SessionClosedError,
)
from tests.support.core import (
    ITEM_ID,
    TRADE_ID,
    Reply,
    ScriptedServer,
    api_error,
    cancel_ok,
    echo_cancel,
    make_token,
    new_session,
)


def test_a_quota_is_required() -> None:
    with pytest.raises(ConfigurationError, match="tier="):
        AssetPaySession()


def test_an_unused_session_holds_nothing() -> None:
    # Created outside any event loop and never used: no HTTP session exists, so nothing to warn about.
    session = new_session("http://127.0.0.1:9")
    session.client(make_token())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del session
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_async_with_closes_and_a_closed_session_refuses_work(server: ScriptedServer) -> None:
    server.respond = echo_cancel
    async with new_session(server.url) as session:
        client = session.client(make_token())
        await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
        open_inside = not session.closed
    assert open_inside
    assert session.closed
    with pytest.raises(SessionClosedError, match="closed"):
        session.client(make_token())
    with pytest.raises(SessionClosedError):
        await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
    assert len(server.requests) == 1


async def test_a_call_on_a_closed_session_spends_no_quota(server: ScriptedServer) -> None:
    session = new_session(server.url)
    client = session.client(make_token())
    await session.aclose()
    with pytest.raises(SessionClosedError):
        await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
    assert session.limiter_stats().granted == 0
    assert server.requests == []


async def test_async_with_twice_refuses_the_second_time(server: ScriptedServer) -> None:
    session = new_session(server.url)
    async with session:
        pass
    with pytest.raises(SessionClosedError):
        async with session:
            pass


async def test_aclose_is_idempotent_and_works_on_an_unopened_session() -> None:
    session = new_session("http://127.0.0.1:9")
    await session.aclose()
    await session.aclose()
    assert session.closed


async def test_an_injected_client_session_is_used_and_never_closed(server: ScriptedServer) -> None:
    server.script(cancel_ok(), Reply(200, b"{}"))
    async with aiohttp.ClientSession() as http:
        async with new_session(server.url, http_session=http) as session:
            result = await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            assert isinstance(result, CancelResult)
        await session.aclose()
        assert not http.closed
        async with http.post(f"{server.url}/still-usable") as response:
            assert response.status == 200
    assert len(server.requests) == 2


async def test_an_injected_session_that_raises_for_status_still_gets_typed_errors(
    server: ScriptedServer,
) -> None:
    server.script(api_error(400, "TRADE_NOT_CANCELLABLE", 28))
    async with (
        aiohttp.ClientSession(raise_for_status=True) as http,
        new_session(server.url, http_session=http) as session,
    ):
        with pytest.raises(NotCancellableError) as info:
            await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
    assert info.value.ambiguous is False
    assert len(server.requests) == 1  # an answer, not a lost response: never retried


async def test_a_closed_injected_client_session_is_a_clear_error() -> None:
    http = aiohttp.ClientSession()
    await http.close()
    session = new_session("http://127.0.0.1:9", http_session=http)
    with pytest.raises(SessionClosedError, match="http_session"):
        async with session:
            pass
    await session.aclose()


def _drop_and_collect(objects: list[object]) -> None:
    objects.clear()
    gc.collect()


async def test_a_session_collected_unclosed_warns(server: ScriptedServer) -> None:
    session = new_session(server.url)
    await session.__aenter__()
    held: list[object] = [session]
    del session
    with pytest.warns(ResourceWarning, match=r"unclosed <AssetPaySession"):
        _drop_and_collect(held)
    await asyncio.sleep(0)  # the loop finishes closing the orphaned HTTP session


async def _cancel_once(client: AssetPayClient, listener: socket.socket) -> CancelResult:
    async with ScriptedServer(sock=listener.dup()) as server:
        server.script(cancel_ok())
        return await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)


def test_a_session_is_reused_across_two_asyncio_runs() -> None:
    # One listening socket for both runs, each served by its own loop, so the base URL stays the same.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        session = new_session(f"http://127.0.0.1:{port}")
        client = session.client(make_token())
        first = asyncio.run(_cancel_once(client, listener))
        second = asyncio.run(_cancel_once(client, listener))  # never "Event loop is closed"
    assert first.trade_id == second.trade_id == str(TRADE_ID)

    # Each loop's HTTP session was closed at that loop's shutdown: collecting the session is silent.
    held: list[object] = [session, client]
    del session, client
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _drop_and_collect(held)
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
