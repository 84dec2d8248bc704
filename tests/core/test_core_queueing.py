"""Waiting for quota or for a connection is not a request timeout (aiohttp 10313, httpx 444).

On virtual time: a gather far larger than the quota queues for minutes, and every call still succeeds
with a one-second request timeout because that timeout starts only once the attempt may go.
"""

from __future__ import annotations

import asyncio

import attrs

from assetpay_async import CancelResult, Quota
from assetpay_async.testing import run_virtual
from tests.support.core import ScriptedServer, echo_cancel, make_token, new_session

ITEMS = 200


def _ids(n: int) -> list[tuple[str, str]]:
    return [
        (f"00000000-0000-4000-8000-{i:012x}", f"11111111-1111-4111-8111-{i:012x}") for i in range(n)
    ]


def test_a_big_gather_queues_for_quota_without_timing_out() -> None:
    async def scenario() -> tuple[list[CancelResult], int, int, float]:
        loop = asyncio.get_running_loop()
        async with (
            ScriptedServer() as server,
            new_session(
                server.url, cancel_quota=Quota(60, 60.0), latency_margin=1.0, timeout=1.0
            ) as s,
        ):
            server.respond = echo_cancel
            client = s.client(make_token())
            started = loop.time()
            results = await asyncio.gather(
                *(client.cancel_withdrawal_item(trade, item) for trade, item in _ids(ITEMS))
            )
            return results, len(server.requests), s.limiter_stats().granted, loop.time() - started

    results, requests, granted, elapsed = run_virtual(scenario())
    assert [str(r.item_id) for r in results] == [item for _, item in _ids(ITEMS)]
    assert requests == granted == ITEMS  # no retries: nothing timed out
    assert elapsed > 60 * ITEMS / 60 - 1  # the calls really did queue, for minutes


def test_waiting_for_a_pooled_connection_is_not_a_timeout() -> None:
    # Two connections, answers taking 0.6 s, a 1 s timeout: the third wave waits 1.2 s for a connection.
    async def scenario() -> tuple[int, int, float]:
        loop = asyncio.get_running_loop()
        async with (
            ScriptedServer() as server,
            new_session(server.url, max_connections=2, timeout=1.0) as session,
        ):
            server.respond = lambda request: attrs.evolve(echo_cancel(request), delay=0.6)
            client = session.client(make_token())
            started = loop.time()
            results = await asyncio.gather(
                *(client.cancel_withdrawal_item(trade, item) for trade, item in _ids(6))
            )
            return len(results), len(server.requests), loop.time() - started

    results, requests, elapsed = run_virtual(scenario())
    assert results == requests == 6
    assert elapsed >= 1.8  # three waves of two
