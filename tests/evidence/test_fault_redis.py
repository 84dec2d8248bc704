"""Fault matrix, Redis cells: the shared limiter's ``redis-server`` dies in the middle of a batch.

Redis is stopped (connections refused) or frozen (SIGSTOP: connections accepted, nothing answered; the
limiter's call deadline detects it). These run on the ordinary event loop (Redis ``TIME`` is wall-clock
time, and a server in another process cannot follow a virtual clock), with a quota scaled to milliseconds:
each batch takes well under a second (a frozen Redis adds its one-second call deadline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from assetpay_async import (
    AssetPaySession,
    BatchProgress,
    CancelOutcome,
    LimiterBackendError,
    OutcomeKind,
    Quota,
    RouteGroup,
)
from assetpay_async.redis_limiter import RedisLimiter, RedisLimiterRegistry
from assetpay_async.sandbox import Sandbox
from tests.support.evidence import (
    acted_on,
    attempts_per_request_id,
    kinds,
    mixed_pairs,
    request_id_of,
    valid_outcomes,
)
from tests.support.redis_server import RedisServer, redis_server_binary

pytestmark = pytest.mark.redis_server

QUOTA = Quota(100, 0.5)
ITEMS = 40
STOP_AFTER = 10


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    with RedisServer(redis_server_binary()) as server:
        yield server


async def _batch_losing_redis(
    server: RedisServer, *, fallback: bool, freeze: bool = False
) -> tuple[list[CancelOutcome], Sandbox, list[bool], bool]:
    """Cancel ITEMS items through a Redis-limited session; stop (or freeze) Redis after STOP_AFTER pairs."""
    async with Sandbox(seed=3) as sandbox:
        merchant = sandbox.add_merchant("verified", quotas={"cancel-item": QUOTA})
        user = sandbox.add_user(merchant)
        trade = sandbox.add_trade(user, items=ITEMS, age=3600)
        registry = RedisLimiterRegistry(server.url, fallback=fallback)
        async with AssetPaySession(
            cancel_quota=QUOTA,
            base_url=sandbox.base_url,
            latency_margin=0.05,
            limiter=registry,
        ) as session:
            reached = asyncio.Event()

            def on_progress(progress: BatchProgress) -> None:
                if progress.done >= STOP_AFTER:
                    reached.set()

            batch = session.client(sandbox.token(user)).batch(
                mixed_pairs(trade), workers=8, on_progress=on_progress
            )
            batch_task = asyncio.create_task(batch.run())
            await reached.wait()
            await asyncio.to_thread(server.freeze if freeze else server.stop)
            outcomes = await batch_task
            limiter = session._requester.limiter(merchant.id, RouteGroup.CANCEL_ITEM)
            assert isinstance(limiter, RedisLimiter)
            degraded = limiter.degraded
        await registry.aclose()
        return outcomes, sandbox, acted_on(trade), degraded


@pytest.mark.parametrize("freeze", [False, True], ids=["stopped", "frozen"])
async def test_redis_gone_mid_batch_falls_back_and_cancels_every_item(
    own_redis_server: RedisServer, freeze: bool
) -> None:
    outcomes, sandbox, acted, degraded = await _batch_losing_redis(
        own_redis_server, fallback=True, freeze=freeze
    )

    assert len(outcomes) == ITEMS + 2
    items = valid_outcomes(outcomes)
    assert kinds(items) == [OutcomeKind.CANCELLED] * ITEMS
    assert outcomes[1].kind is OutcomeKind.FAILED  # the escaping pair
    assert outcomes[-1].duplicate_of == 0
    attempts = attempts_per_request_id(sandbox)
    assert all(attempts[request_id_of(o)] >= 1 for o in items)
    assert acted == [True] * ITEMS
    assert degraded  # the in-memory fallback served the rest
    assert (
        sandbox.totals(sandbox.trades[str(items[0].trade_id).lower()].merchant_id).rate_limited == 0
    )


async def test_redis_gone_mid_batch_without_fallback_fails_unsent_pairs(
    own_redis_server: RedisServer,
) -> None:
    outcomes, sandbox, acted, degraded = await _batch_losing_redis(own_redis_server, fallback=False)

    assert len(outcomes) == ITEMS + 2
    items = valid_outcomes(outcomes)
    done = [o for o in items if o.kind is OutcomeKind.CANCELLED]
    refused = [o for o in items if o.kind is not OutcomeKind.CANCELLED]
    assert (
        len(done) >= STOP_AFTER - 2
    )  # done before the stop (the escaping pair and a duplicate count)
    assert refused, "Redis died with pairs still queued"
    assert all(o.kind is OutcomeKind.FAILED for o in refused)
    assert all(type(o.error) is LimiterBackendError and not o.error.ambiguous for o in refused)
    # Nothing was sent for a refused pair: the sandbox saw exactly the cancelled ones, once each.
    attempts = attempts_per_request_id(sandbox)
    assert sorted(attempts[request_id_of(o)] for o in done) == [1] * len(done)
    assert sum(attempts.values()) == len(done)
    assert not degraded
    assert acted == [o.kind is OutcomeKind.CANCELLED for o in items]
