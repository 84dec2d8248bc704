"""One "process" of a merchant's backend in the multi-process tests: cancels its share of a backlog.

Reads a JSON job from the file named on its command line, waits for the common start time, cancels every
item through its own ``AssetPaySession`` (with a Redis limiter or without), and prints a JSON report on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from assetpay_async import AssetPayError, AssetPaySession, Quota, RetryPolicy, RouteGroup
from assetpay_async.redis_limiter import RedisLimiter, RedisLimiterRegistry


async def run(job: dict[str, Any]) -> dict[str, Any]:
    limit, period = job["quota"]
    registry = (
        RedisLimiterRegistry(job["redis"], key_prefix=job["prefix"]) if job["redis"] else None
    )
    async with AssetPaySession(
        cancel_quota=Quota(limit, period),
        merchant_id=job["merchant_id"],
        base_url=job["base_url"],
        limiter=registry,
        latency_margin=job["latency_margin"],
        retry=RetryPolicy(max_rate_limited_wait=60.0),
    ) as session:
        client = session.client(job["token"])

        limiter = session._requester.limiter(job["merchant_id"], RouteGroup.CANCEL_ITEM)
        most_peers = 0

        async def cancel(trade_id: str, item_id: str) -> str:
            nonlocal most_peers
            try:
                result = await client.cancel_withdrawal_item(trade_id, item_id)
            except AssetPayError as exc:
                return type(exc).__name__
            finally:
                if isinstance(limiter, RedisLimiter):
                    most_peers = max(most_peers, limiter.peers)
            return str(result.status)

        await asyncio.sleep(max(0.0, job["start_at"] - time.time()))
        outcomes = await asyncio.gather(*(cancel(trade, item) for trade, item in job["items"]))
        stats = limiter.stats()
        shared = (
            {"local_granted": limiter.local_granted, "peers": most_peers}
            if isinstance(limiter, RedisLimiter)
            else {}
        )
    if registry is not None:
        await registry.aclose()
    return {
        **shared,
        "outcomes": dict(zip((item for _, item in job["items"]), outcomes, strict=True)),
        "rate_limited": stats.rate_limited,
        "granted": stats.granted,
    }


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    report = asyncio.run(run(job))
    sys.stdout.write(json.dumps(report))


if __name__ == "__main__":
    main()
