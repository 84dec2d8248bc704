"""The Redis limiter on a real Redis Cluster of three masters, started by the test (slow).

Several limiters, each with its own cluster client (as processes would have), share merchants whose keys
live on different nodes: the client follows MOVED to the node of the key's slot, both keys of a merchant
share one hash tag (one slot, one node), and the busiest window of grants stays under N. A master that dies
is an outage (the share takes over), never a configuration error and never a reason to grant alone.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from assetpay_async import AssetPaySession, QueueTimeoutError, Quota, RouteGroup
from assetpay_async.redis_limiter import RedisLimiter, RedisLimiterRegistry
from tests.support.redis_server import RedisCluster, redis_server_binary

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]

QUOTA = Quota(20, 1.0)
# J covers the delay between a grant and its use, as it does for AssetPay's count: the grant times here are read
# by the test's callers after `acquire()` returns, and a loaded 2-core CI worker can resume a caller tenths of a
# second late.
MARGIN = 0.5
LIMITERS = 3


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    with RedisCluster(redis_server_binary()) as started:
        yield started


def busiest(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((bisect.bisect_right(times, t + window) - i for i, t in enumerate(times)), default=0)


@contextlib.asynccontextmanager
async def _registries(
    url: str, *, count: int, timeout: float
) -> AsyncIterator[list[RedisLimiterRegistry]]:
    """``count`` registries on the cluster, closed even when the test fails (no connection outlives it)."""
    registries = [RedisLimiterRegistry(url, timeout=timeout) for _ in range(count)]
    try:
        yield registries
    finally:
        for registry in registries:
            await registry.aclose()


async def _run(limiters: list[RedisLimiter], seconds: float) -> list[float]:
    """Grant times of three callers per limiter for ``seconds``; a caller never waits past the end (a limiter
    that grants nothing, say while it cannot count its peers, ends the run instead of hanging it)."""
    times: list[float] = []
    end = time.monotonic() + seconds

    async def caller(lim: RedisLimiter) -> None:
        while (left := end - time.monotonic()) > 0:
            try:
                await lim.acquire(max_wait=left)
            except QueueTimeoutError:
                return
            times.append(time.monotonic())

    async with asyncio.timeout(seconds + 30):  # a hang is a failure, not a stuck CI run
        await asyncio.gather(*(caller(lim) for lim in limiters for _ in range(3)))
    return times


async def test_limiters_on_a_cluster_share_one_schedule_per_merchant(cluster: RedisCluster) -> None:
    # A generous deadline: this test is about slots and MOVED, not a slow Redis (a loaded 2-core CI machine
    # can take over a second to answer).
    async with _registries(cluster.url, count=LIMITERS, timeout=10.0) as registries:
        merchants = [f"merchant-{i}" for i in range(6)]
        keys: dict[str, list[RedisLimiter]] = {}
        for merchant in merchants:
            got = [
                reg.get(merchant, RouteGroup.CANCEL_ITEM, QUOTA, latency_margin=MARGIN)
                for reg in registries
            ]
            keys[merchant] = [lim for lim in got if isinstance(lim, RedisLimiter)]
            assert len(keys[merchant]) == LIMITERS

        # One grant each first: a limiter's first call checks the connection and loads its scripts, which a
        # loaded 2-core machine can take seconds to do; the timed run starts once every limiter is ready.
        warm: dict[str, list[float]] = {merchant: [] for merchant in keys}

        async def first(merchant: str, lim: RedisLimiter) -> None:
            await lim.acquire()
            warm[merchant].append(time.monotonic())

        async with asyncio.timeout(60):
            await asyncio.gather(*(first(m, lim) for m, lims in keys.items() for lim in lims))
        # One merchant at a time: 18 limiters' callers at once in one event loop, beside another xdist worker,
        # resume late enough to bunch the grant times the test reads on the client.
        runs = [await _run(lims, 2.0) for lims in keys.values()]
        per_merchant = [warm[m] + times for m, times in zip(keys, runs, strict=True)]

        nodes = set()
        for merchant, lims in keys.items():
            lim = lims[0]
            assert f"{{{merchant}}}" in lim.redis_key
            assert f"{{{merchant}}}" in lim.peers_key
            assert cluster.port_of(lim.redis_key) == cluster.port_of(lim.peers_key)  # one node
            nodes.add(cluster.port_of(lim.redis_key))
            assert not any(one.degraded or one.local_granted for one in lims)  # MOVED was followed
        assert len(nodes) > 1, "the merchants' keys should live on more than one node"
        for times in per_merchant:
            assert len(times) >= QUOTA.limit
            assert busiest(times, QUOTA.period_seconds + MARGIN) <= QUOTA.limit


async def test_a_cluster_client_passed_as_limiter_works_in_a_session(cluster: RedisCluster) -> None:
    client = aioredis.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
    try:
        async with AssetPaySession(
            cancel_quota=QUOTA, merchant_id="merchant-s", limiter=client
        ) as session:
            lim = session._requester.limiter("merchant-s", RouteGroup.CANCEL_ITEM)
            assert isinstance(lim, RedisLimiter)
            async with asyncio.timeout(10):
                for _ in range(3):
                    await lim.acquire()
            assert await client.exists(lim.redis_key) == 1
    finally:
        await client.aclose()


async def test_a_dead_master_is_an_outage_not_a_reason_to_grant_alone(
    cluster: RedisCluster,
) -> None:
    """Last in the module: it kills the master that holds the merchant's slot."""
    async with _registries(cluster.url, count=2, timeout=1.5) as registries:
        lims = [
            reg.get("merchant-dead", RouteGroup.CANCEL_ITEM, QUOTA, latency_margin=MARGIN)
            for reg in registries
        ]
        assert all(isinstance(lim, RedisLimiter) for lim in lims)
        typed: list[RedisLimiter] = [lim for lim in lims if isinstance(lim, RedisLimiter)]
        before = await _run(typed, 1.5)
        for _ in range(
            20
        ):  # until both count each other as peers (a heartbeat or two; longer on a loaded host)
            if all(lim.peers == 2 for lim in typed):
                break
            before += await _run(typed, 0.5)
        assert all(lim.peers == 2 for lim in typed)

        await asyncio.to_thread(cluster.kill, cluster.port_of(typed[0].redis_key))
        during = await _run(typed, 4.0)

        assert all(lim.degraded for lim in typed)
        assert all(lim.local_granted > 0 for lim in typed)
        assert busiest(before + during, QUOTA.period_seconds + MARGIN) <= QUOTA.limit
