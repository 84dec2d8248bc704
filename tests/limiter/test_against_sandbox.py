"""The limiter against every server algorithm of the sandbox, SDK and sandbox in one virtual-time loop.

5 x N cancels from many coroutines over several sessions of one merchant: zero 429s and at least 96 % of N / T
through our limiter. The same run through ``AsyncLimiter(N, T)`` and through no limiter at all (each call only
honouring its own ``Retry-After``) records how many 429s those draw.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import itertools
from collections.abc import Callable

import aiolimiter
import attrs
import pytest

from assetpay_async import AssetPaySession, Quota
from assetpay_async._limiting import (
    LimiterKey,
    LimiterPolicy,
    LimiterRegistry,
    LimiterStats,
    RateLimiter,
)
from assetpay_async._quota import RouteGroup
from assetpay_async.sandbox import Sandbox, User
from assetpay_async.testing import run_virtual

N, T = 60, 60.0
CANCELS = 5 * N
SESSIONS = 3
USERS = 6

ALGORITHMS = [
    ("fixed-window", None),
    ("anchored-window", None),
    ("block-penalty", None),
    ("sliding-log", None),
    ("sliding-counter", None),
    ("gcra", None),  # a bucket of N
    ("gcra", 2),  # the smallest burst the even policy is meant for
]


# -- the baselines, plugged in where the SDK asks for a limiter --------------------------------------------

_own_retry_after: contextvars.ContextVar[float] = contextvars.ContextVar(
    "own_retry_after", default=0.0
)


@attrs.define
class _Baseline:
    """No shared pause: a call that drew a 429 sleeps its own ``Retry-After``, then asks ``gate``."""

    key: LimiterKey
    gate: aiolimiter.AsyncLimiter | None
    granted: int = 0
    seen_429: int = 0

    async def acquire(self, *, max_wait: float | None = None) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        if (
            retry_after := _own_retry_after.get()
        ) > 0:  # the client calls acquire again in the same task
            _own_retry_after.set(0.0)
            await asyncio.sleep(retry_after)
        if self.gate is not None:
            await self.gate.acquire()
        self.granted += 1
        return loop.time() - start

    def rate_limited(self, retry_after: float | None) -> None:
        self.seen_429 += 1
        _own_retry_after.set(T if retry_after is None else retry_after)

    def succeeded(self) -> None:
        return None

    def observe_wire(self, seconds: float) -> None:
        return None

    def stats(self) -> LimiterStats:
        return LimiterStats(
            self.key.merchant_id,
            self.key.group,
            self.granted,
            0,
            0.0,
            0.0,
            self.seen_429,
            0,
            0.0,
            0.0,
        )


class _BaselineRegistry:
    """A [`LimiterRegistry`][assetpay_async._limiting.LimiterRegistry] handing out the baselines."""

    def __init__(self, gate: Callable[[], aiolimiter.AsyncLimiter | None]) -> None:
        self._gate = gate
        self._baselines: dict[LimiterKey, _Baseline] = {}

    def get(
        self,
        merchant_id: str,
        group: RouteGroup,
        quota: Quota,
        *,
        policy: LimiterPolicy = LimiterPolicy.EVEN,
        latency_margin: float = 1.0,
    ) -> RateLimiter:
        key = LimiterKey(merchant_id, RouteGroup(group))
        if key not in self._baselines:
            self._baselines[key] = _Baseline(key, self._gate())
        return self._baselines[key]

    async def aclose(self) -> None:
        return None


# -- one run ------------------------------------------------------------------------------------------


@attrs.frozen
class RunResult:
    accepted: int
    rate_limited: int
    accepted_times: list[float]

    @property
    def share_of_quota(self) -> float:
        """Accepted cancels per second, from the first to the last, as a share of N / T."""
        first, last = self.accepted_times[0], self.accepted_times[-1]
        return (len(self.accepted_times) - 1) / (last - first) / (N / T)


def _run(algorithm: str, burst: int | None, registry: LimiterRegistry | None) -> RunResult:
    async def main() -> RunResult:
        async with Sandbox(algorithm=algorithm, burst=burst, seed=7) as sb:
            merchant = sb.add_merchant("verified", quotas={"cancel-item": (N, T)})
            users = [sb.add_user(merchant) for _ in range(USERS)]
            items: list[tuple[User, str, str]] = []
            for user in itertools.islice(itertools.cycle(users), CANCELS // 10):
                trade = sb.add_trade(user, items=10, age=dt.timedelta(hours=1))
                items.extend((user, trade.id, item.id) for item in trade.items)
            sessions = [
                AssetPaySession(cancel_quota=Quota(N, T), base_url=sb.base_url, limiter=registry)
                for _ in range(SESSIONS)
            ]
            try:
                clients = {
                    (s, user.id): session.client(sb.token(user))
                    for s, session in enumerate(sessions)
                    for user in users
                }
                await asyncio.gather(
                    *(
                        clients[(i % SESSIONS, user.id)].cancel_withdrawal_item(trade_id, item_id)
                        for i, (user, trade_id, item_id) in enumerate(items)
                    )
                )
            finally:
                for session in sessions:
                    await session.aclose()
            totals = sb.totals(merchant, "cancel-item")
            accepted_times = sorted(
                r.time for r in sb.requests if r.group == RouteGroup.CANCEL_ITEM and r.status == 200
            )
            return RunResult(totals.accepted, totals.rate_limited, accepted_times)

    return run_virtual(main())


@pytest.mark.parametrize(("algorithm", "burst"), ALGORITHMS)
def test_zero_429s_and_at_least_96_percent_of_the_quota(algorithm: str, burst: int | None) -> None:
    result = _run(algorithm, burst, registry=None)  # the process-wide registry, as sessions use it
    assert result.rate_limited == 0
    assert result.accepted == CANCELS
    assert result.share_of_quota >= 0.96


@pytest.mark.parametrize(
    ("algorithm", "burst", "gate", "expected_429s"),
    [
        ("sliding-log", None, "AsyncLimiter(N, T)", 63),
        ("gcra", 2, "AsyncLimiter(N, T)", 58),
        ("sliding-log", None, "none", 678),
    ],
)
def test_the_baselines_draw_429s_where_the_limiter_draws_none(
    algorithm: str, burst: int | None, gate: str, expected_429s: int
) -> None:
    """Recorded counts (the run is deterministic on virtual time); every cancel still goes through."""
    make_gate = (lambda: aiolimiter.AsyncLimiter(N, T)) if gate != "none" else (lambda: None)
    result = _run(algorithm, burst, _BaselineRegistry(make_gate))
    assert result.accepted == CANCELS
    assert result.rate_limited == expected_429s
