"""A 429 the sandbox injects (someone else spent the quota) pauses one merchant's whole queue, and only it."""

from __future__ import annotations

import asyncio
import datetime as dt

from assetpay_async import AssetPaySession, OutcomeKind, Quota
from assetpay_async._quota import RouteGroup
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual

QUOTA = Quota(60, 6.0)
PAUSE = 10.0


def test_an_injected_429_pauses_that_merchant_only_and_loses_nothing() -> None:
    async def main() -> None:
        async with Sandbox(seed=11) as sb:
            merchants = [sb.add_merchant("verified", quotas={"cancel-item": QUOTA}) for _ in "ab"]
            sessions = [
                AssetPaySession(cancel_quota=QUOTA, base_url=sb.base_url, latency_margin=0.2)
                for _ in merchants
            ]
            try:
                batches = []
                for merchant, session in zip(merchants, sessions, strict=True):
                    user = sb.add_user(merchant)
                    trades = [
                        sb.add_trade(user, items=5, age=dt.timedelta(hours=1)) for _ in range(24)
                    ]
                    pairs = [(t.id, i.id) for t in trades for i in t.items]
                    batches.append(session.client(sb.token(user)).cancel_withdrawal_items(pairs))
                running = asyncio.gather(*batches)
                await asyncio.sleep(2.0)
                injected_at = sb.clock.now()
                sb.faults.add("rate-limited", merchant=merchants[0], times=1, retry_after=PAUSE)
                outcomes_a, outcomes_b = await running
            finally:
                for session in sessions:
                    await session.aclose()

            # Nothing lost: every item of both merchants was cancelled, the refused one after the pause.
            assert all(o.kind is OutcomeKind.CANCELLED for o in [*outcomes_a, *outcomes_b])
            refused = [r for r in sb.requests if r.status == 429]
            assert len(refused) == 1
            assert refused[0].merchant_id == merchants[0].id
            start = refused[0].time
            assert start >= injected_at

            def sent(merchant_index: int, lo: float, hi: float) -> int:
                return sum(
                    1
                    for r in sb.requests
                    if r.merchant_id == merchants[merchant_index].id
                    and r.group is RouteGroup.CANCEL_ITEM
                    and lo < r.time < hi
                )

            # The paused merchant sent nothing for Retry-After seconds; the other kept its pace.
            assert sent(0, start, start + PAUSE) == 0
            assert sent(1, start, start + PAUSE) >= 0.9 * PAUSE * 59 / 6.2
            assert sent(0, start + PAUSE, start + PAUSE + 1.0) >= 1  # and it resumed right after
            stats = sessions[0].limiter_stats()
            assert (stats.rate_limited, stats.pauses) == (1, 1)
            assert sessions[1].limiter_stats().rate_limited == 0

    run_virtual(main())
