"""Issue 12: two threads, each with its own event loop and its own session of one merchant.

Before, every call on the second thread raised a plain ``RuntimeError`` ("in use by another running event
loop"): the process-wide registry handed both sessions one limiter bound to the first loop. Real loops and a
scaled quota (one grant every 58 ms), so this takes well under a second.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

from assetpay_async import AssetPaySession, OutcomeKind, Quota
from assetpay_async._limiting import LimiterPolicy, default_registry
from assetpay_async._quota import RouteGroup
from assetpay_async.sandbox import Sandbox

MERCHANT = "m-two-threads"
QUOTA = Quota(10, 0.5)
CANCELS = 5


def test_two_threads_with_their_own_loop_and_session_of_one_merchant() -> None:
    outcomes: dict[int, list[OutcomeKind]] = {}
    errors: list[BaseException] = []

    async def main(index: int) -> None:
        async with Sandbox(seed=index) as sb:
            merchant = sb.add_merchant(quotas={"cancel-item": QUOTA}, merchant_id=MERCHANT)
            user = sb.add_user(merchant)
            trade = sb.add_trade(user, items=CANCELS, age=dt.timedelta(hours=1))
            async with AssetPaySession(
                cancel_quota=QUOTA, base_url=sb.base_url, latency_margin=0.02
            ) as session:
                client = session.client(sb.token(user))
                results = await client.cancel_withdrawal_items(
                    [(trade.id, item.id) for item in trade.items]
                )
                outcomes[index] = [r.kind for r in results]

    def thread(index: int) -> None:
        try:
            asyncio.run(main(index))
        except BaseException as exc:  # reported below, with its type
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == []
    assert outcomes == {i: [OutcomeKind.CANCELLED] * CANCELS for i in range(2)}
    # one limiter, shared by both threads, paced them together
    shared = default_registry().get(
        MERCHANT, RouteGroup.CANCEL_ITEM, QUOTA, policy=LimiterPolicy.EVEN, latency_margin=0.02
    )
    assert shared.stats().granted == 2 * CANCELS
