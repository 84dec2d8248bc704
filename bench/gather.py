"""10,000 concurrent cancels through ``asyncio.gather``: throughput and memory per in-flight call.

The SDK (unbounded quota, ``max_connections=100``) and raw aiohttp (a ``TCPConnector(limit=100)``, the same
POST and JSON decode) each cancel 10,000 distinct items of the loopback sandbox, all started at once, in the
same run; throughput is calls per second of wall time. A second pass of each runs under ``tracemalloc``:
its peak above the starting point, divided by the number of calls in flight, is the memory per in-flight call.

Run: ``nox -s bench -- gather`` or ``python -m bench gather [--calls 10000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable

import aiohttp

from assetpay_async import AssetPaySession, Quota
from assetpay_async.sandbox import Sandbox

from ._common import stamp
from .overhead import raw_call, sdk_call

UNBOUNDED = Quota(10**9, 1.0)
ITEMS_PER_TRADE = 100


async def _gather(calls: list[Callable[[], Awaitable[object]]]) -> float:
    started = time.perf_counter()
    results = await asyncio.gather(*(call() for call in calls))
    elapsed = time.perf_counter() - started
    assert len(results) == len(calls)
    return elapsed


async def _peak_per_call(calls: list[Callable[[], Awaitable[object]]]) -> float:
    """Bytes of peak traced memory above the start, per call in flight."""
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    await asyncio.gather(*(call() for call in calls))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (peak - base) / len(calls)


async def run(count: int, argv: list[str]) -> int:
    async with Sandbox(seed=2, revert_delay=10**9) as sb:
        merchant = sb.add_merchant("verified", quotas={"cancel-item": UNBOUNDED})
        user = sb.add_user(merchant)
        token = sb.token(user)
        pairs = [
            (trade.id, item.id)
            for _ in range(-(-count // ITEMS_PER_TRADE))
            for trade in [sb.add_trade(user, items=ITEMS_PER_TRADE, age=3600)]
            for item in trade.items
        ][:count]
        base = sb.base_url
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, limit_per_host=0)
            ) as http,
            AssetPaySession(cancel_quota=UNBOUNDED, base_url=base, latency_margin=0.0) as session,
        ):
            client = session.client(token)

            def sdk_calls() -> list[Callable[[], Awaitable[object]]]:
                return [sdk_call(client, t, i) for t, i in pairs]

            def raw_calls() -> list[Callable[[], Awaitable[object]]]:
                url = base + "/client/trading/withdraw/{}/items/{}/cancel"
                return [raw_call(http, url.format(t, i), token) for t, i in pairs]

            # The first pass cancels every item; later passes repeat cancels the sandbox answers 200 again.
            sdk_first = await _gather(sdk_calls())
            raw_first = await _gather(raw_calls())
            sdk_second = await _gather(sdk_calls())
            raw_second = await _gather(raw_calls())
            sdk_mem = await _peak_per_call(sdk_calls())
            raw_mem = await _peak_per_call(raw_calls())
        accepted = sb.totals(merchant).accepted
    assert accepted == 6 * count, accepted
    sdk_rate = count / min(sdk_first, sdk_second)
    raw_rate = count / min(raw_first, raw_second)
    print(
        stamp("gather", argv)
        + f" {count:,} concurrent cancels; best of 2 passes, memory under tracemalloc."
    )
    print()
    print("| client | cancels/s | peak memory per in-flight call (KiB) |")
    print("|---|---:|---:|")
    print(f"| SDK | {sdk_rate:,.0f} | {sdk_mem / 1024:.1f} |")
    print(f"| raw aiohttp | {raw_rate:,.0f} | {raw_mem / 1024:.1f} |")
    print(f"| ratio SDK / raw | {sdk_rate / raw_rate:.3f} | {sdk_mem / raw_mem:.2f} |")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench gather", description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000, help="concurrent cancels per pass")
    parser.add_argument("--smoke", action="store_true", help="500 cancels")
    args = parser.parse_args(argv)
    return asyncio.run(run(500 if args.smoke else args.calls, argv))
