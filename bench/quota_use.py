"""Quota use per server model: the SDK's limiter against ``AsyncLimiter(N, T)``, same backlog, same run.

For every rate-limiting algorithm the sandbox plays, 5 x N cancels of one merchant go out from many coroutines
over three sessions (AssetPay's verified quota, N = 60 per T = 60 s, J = 1 s), SDK and sandbox in one
virtual-time loop, so a 5-minute schedule runs in well under a second of wall time. The baseline sends the same
backlog through ``aiolimiter.AsyncLimiter(N, T)`` over plain aiohttp (a 429 is counted, not retried).

Reported: 429s drawn; for the SDK, the accepted rate between the first and the last accepted cancel as a share of
N / T (every cancel gets through); for the baseline, how many of the backlog it got accepted (its 429s are lost).

Run: ``nox -s bench -- quota_use`` or ``python -m bench quota_use [--cancels-per-n 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import platform

from assetpay_async import AssetPaySession, Quota
from assetpay_async._limiting import LimiterRegistry
from assetpay_async._quota import RouteGroup
from assetpay_async.cli._naive import cancel_naively
from assetpay_async.sandbox import Sandbox, ServerAlgorithm
from assetpay_async.testing import run_virtual

QUOTA = Quota(60, 60.0)
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


def _share(times: list[float]) -> float:
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0]) / QUOTA.rate


async def _run(
    algorithm: ServerAlgorithm, burst: int | None, cancels: int, naive: bool
) -> tuple[int, float, int]:
    async with Sandbox(algorithm=algorithm, burst=burst, seed=3, revert_delay=10**6) as sb:
        merchant = sb.add_merchant("verified", quotas={"cancel-item": QUOTA})
        user = sb.add_user(merchant)
        trades = [
            sb.add_trade(user, items=5, age=dt.timedelta(hours=1)) for _ in range(cancels // 5)
        ]
        pairs = [(t.id, i.id) for t in trades for i in t.items]
        if naive:
            await cancel_naively(sb.base_url, sb.token(user), pairs, QUOTA, workers=64)
        else:
            registry = LimiterRegistry()  # a fresh registry: nothing carried over between models
            sessions = [
                AssetPaySession(cancel_quota=QUOTA, base_url=sb.base_url, limiter=registry)
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
        return sb.totals(merchant, "cancel-item").rate_limited, _share(accepted), len(accepted)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench quota_use", description=__doc__)
    parser.add_argument(
        "--cancels-per-n", type=int, default=5, help="backlog size in multiples of N"
    )
    args = parser.parse_args(argv)
    cancels = args.cancels_per_n * QUOTA.limit
    print(
        f"# quota use: {cancels} cancels at N = {QUOTA.limit} per T = {QUOTA.period_seconds:g} s, J = 1 s, "
        f"virtual time (Python {platform.python_version()})\n"
    )
    print(
        "| server model | SDK: 429s | SDK: share of N/T | SDK: accepted "
        "| AsyncLimiter(N, T): 429s | AsyncLimiter: accepted |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for algorithm, burst in MODELS:
        ours = run_virtual(_run(algorithm, burst, cancels, naive=False))
        naive = run_virtual(_run(algorithm, burst, cancels, naive=True))
        name = algorithm.value + ("" if burst is None else f", burst {burst}")
        print(
            f"| {name} | {ours[0]} | {ours[1]:.1%} | {ours[2]}/{cancels} "
            f"| {naive[0]} | {naive[2]}/{cancels} |"
        )
    return 0
