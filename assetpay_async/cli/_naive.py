"""The comparison the demo offers: the same backlog paced by ``aiolimiter.AsyncLimiter(N, T)`` over plain aiohttp.

That is what most code does: a token bucket of capacity N refilled at N/T. After an idle period it lets N requests
through at once and then one every T/N, so a rolling window of T can hold up to 2N-1 of them (see
``docs/limiter.md``); the server answers the excess with 429s.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Sequence

import aiohttp
import attrs

from assetpay_async._quota import Quota

__all__ = ["NaiveRun", "cancel_naively"]


@attrs.frozen
class NaiveRun:
    """What the naive pacing got: HTTP statuses by count, and how long it took (loop seconds)."""

    statuses: dict[int, int]
    elapsed: float

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def rate_limited(self) -> int:
        return self.statuses.get(429, 0)


async def cancel_naively(
    base_url: str,
    token: str,
    pairs: Sequence[tuple[str, str]],
    quota: Quota,
    *,
    workers: int = 32,
) -> NaiveRun:
    """POST every cancel once through ``AsyncLimiter(quota.limit, quota.period_seconds)``; a 429 is not retried."""
    from aiolimiter import AsyncLimiter  # noqa: PLC0415 - only `demo --compare-naive` needs it (see ._extras)

    limiter = AsyncLimiter(quota.limit, quota.period_seconds)
    queue = deque(pairs)
    statuses: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with aiohttp.ClientSession(base_url=base_url) as http:

        async def worker() -> None:
            while queue:
                trade_id, item_id = queue.popleft()
                async with limiter:
                    path = f"/client/trading/withdraw/{trade_id}/items/{item_id}/cancel"
                    async with http.post(path, headers=headers) as response:
                        await response.read()
                        statuses[response.status] += 1

        await asyncio.gather(*(worker() for _ in range(min(workers, len(queue)))))
    return NaiveRun(statuses=dict(statuses), elapsed=loop.time() - started)
