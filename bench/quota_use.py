"""Quota use per server model: the SDK's limiter against ``AsyncLimiter(N, T)``, same backlog, same run.

For every rate-limiting algorithm the sandbox plays and both tiers (verified: N = 60 per T = 60 s; unverified:
N = 10 per T = 60 s; J = 1 s, the default), 5 x N cancels of one merchant go out from many coroutines over three
sessions, SDK and sandbox in one virtual-time loop, so a 5-minute schedule runs in well under a second of wall
time. The baseline sends the same
backlog through ``aiolimiter.AsyncLimiter(N, T)`` over plain aiohttp (a 429 is counted, not retried).

Reported: 429s drawn; for the SDK, the accepted rate between the first and the last accepted cancel as a share of
N / T (every cancel gets through); for the baseline, how many of the backlog it got accepted (its 429s are lost).

Run: ``nox -s bench -- quota_use`` or ``python -m bench quota_use [--cancels-per-n 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt

from assetpay_async import AssetPaySession, MerchantTier, Quota
from assetpay_async._limiting import MemoryLimiterRegistry
from assetpay_async._quota import RouteGroup, default_quota
from assetpay_async.cli._naive import cancel_naively
from assetpay_async.sandbox import Sandbox, ServerAlgorithm
from assetpay_async.testing import run_virtual

from ._common import VIRTUAL, stamp

TIERS = (MerchantTier.VERIFIED, MerchantTier.UNVERIFIED)
SESSIONS = 3
MODELS: list[tuple[ServerAlgorithm, int | None]] = [
    (ServerAlgorithm.FIXED_WINDOW, None),
    (ServerAlgorithm.ANCHORED_WINDOW, None),
    (ServerAlgorithm.BLOCK_PENALTY, None),
    (ServerAlgorithm.SLIDING_LOG, None),
    (ServerAlgorithm.SLIDING_COUNTER, None),
    (ServerAlgorithm.GCRA, None),  # a bucket of N
    (ServerAlgorithm.GCRA, 2),
]


def _share(times: list[float], quota: Quota) -> float:
    """Accepted per second between the first and the last accepted, as a share of N / T."""
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0]) / quota.rate


async def _run(
    tier: MerchantTier, algorithm: ServerAlgorithm, burst: int | None, cancels: int, naive: bool
) -> tuple[int, float, int]:
    quota = default_quota(tier, RouteGroup.CANCEL_ITEM)
    async with Sandbox(algorithm=algorithm, burst=burst, seed=3, revert_delay=10**6) as sb:
        merchant = sb.add_merchant(tier)
        user = sb.add_user(merchant)
        trades = [
            sb.add_trade(user, items=5, age=dt.timedelta(hours=1)) for _ in range(cancels // 5)
        ]
        pairs = [(t.id, i.id) for t in trades for i in t.items]
        if naive:
            await cancel_naively(sb.base_url, sb.token(user), pairs, quota, workers=64)
        else:
            # a fresh registry: nothing carried over between models
            registry = MemoryLimiterRegistry()
            sessions = [
                AssetPaySession(tier=tier, base_url=sb.base_url, limiter=registry)
                for _ in range(SESSIONS)
            ]
            try:
                clients = [s.client(sb.token(user)) for s in sessions]
                await asyncio.gather(
                    *(
                        clients[k % SESSIONS].cancel_withdrawal_item(trade_id, item_id)
                        for k, (trade_id, item_id) in enumerate(pairs)
                    )
                )
            finally:
                for session in sessions:
                    await session.aclose()
        accepted = sorted(
            r.time for r in sb.requests if r.group is RouteGroup.CANCEL_ITEM and r.status == 200
        )
        return (
            sb.totals(merchant, "cancel-item").rate_limited,
            _share(accepted, quota),
            len(accepted),
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench quota_use", description=__doc__)
    parser.add_argument(
        "--cancels-per-n", type=int, default=5, help="backlog size in multiples of N"
    )
    parser.add_argument("--smoke", action="store_true", help="a backlog of 2 x N")
    args = parser.parse_args(argv)
    per_n = 2 if args.smoke else args.cancels_per_n
    print(
        stamp("quota_use", argv, clock=VIRTUAL)
        + f" A backlog of {per_n} x N cancels per tier, J = 1 s."
    )
    print()
    print(
        "| tier (N per T) | server model | SDK: 429s | SDK: accepted per minute, share of N/T "
        "| SDK: accepted | `AsyncLimiter(N, T)`: 429s | `AsyncLimiter`: accepted |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for tier in TIERS:
        quota = default_quota(tier, RouteGroup.CANCEL_ITEM)
        cancels = per_n * quota.limit
        for algorithm, burst in MODELS:
            ours = run_virtual(_run(tier, algorithm, burst, cancels, naive=False))
            naive = run_virtual(_run(tier, algorithm, burst, cancels, naive=True))
            if burst is not None:
                name = f"{algorithm.value}, burst {burst}"
            elif algorithm is ServerAlgorithm.GCRA:
                name = f"{algorithm.value} (burst N)"
            else:
                name = algorithm.value
            print(
                f"| {tier.value} ({quota.limit} per {quota.period_seconds:g} s) | {name} "
                f"| {ours[0]} | {ours[1]:.1%} | {ours[2]}/{cancels} "
                f"| {naive[0]} | {naive[2]}/{cancels} |"
            )
    return 0
