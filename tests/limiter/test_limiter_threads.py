"""Issue 12: one limiter for several event loops (threads), each with its own queue.

Two threads, each with its own event loop and its own session of one merchant: before, every call on the
second thread raised a plain ``RuntimeError`` ("in use by another running event loop"), because the
process-wide registry handed both sessions one limiter bound to the first loop. Real loops and a scaled quota
(one grant every 58 ms), so this takes well under a second.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

from assetpay_async import AssetPaySession, OutcomeKind, Quota
from assetpay_async._limiting import LimiterPolicy, MemoryLimiter, default_registry
from assetpay_async._quota import RouteGroup
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import VirtualTimeLoop
from tests.support.limiter import KEY

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


def test_a_grant_handed_back_in_one_loop_wakes_the_waiter_of_another_loop() -> None:
    """Loop A's waiter is granted and cancelled before it runs: the grant goes back to the schedule, and loop
    B's waiter, whose own timer is 10 s away, is woken through ``call_soon_threadsafe`` and served at once.

    Deterministic: both loops read loop A's virtual clock, and loop B runs only when the test says so.
    """
    loop_a = VirtualTimeLoop()
    loop_b = asyncio.new_event_loop()
    limiter = MemoryLimiter(KEY, Quota(2, 10.0), latency_margin=0.0, clock=loop_a.time)
    interval = limiter.pacing.interval  # 10 s
    try:

        async def b_queues() -> asyncio.Task[float]:
            assert await limiter.acquire() == 0.0  # idle: at once; the next grant is due at 10 s
            waiter = asyncio.create_task(limiter.acquire())
            await asyncio.sleep(0)
            return waiter

        b_waiter = loop_b.run_until_complete(b_queues())
        assert limiter.stats().queued == 1

        async def a_grabs_and_gives_back() -> bool:
            loop = asyncio.get_running_loop()
            a_waiter = asyncio.create_task(limiter.acquire())
            await asyncio.sleep(0)
            # Right after the limiter's timer grants A's waiter, in the same loop iteration: cancel it.
            loop.call_at(interval + 1e-10, a_waiter.cancel)
            try:
                await a_waiter
            except asyncio.CancelledError:
                return True
            return False

        assert loop_a.run_until_complete(a_grabs_and_gives_back())  # A's grant was handed back
        assert limiter.stats().granted == 1

        async def b_is_served() -> float:
            return await asyncio.wait_for(b_waiter, 2.0)  # its own timer would fire only after 10 s

        loop_b.run_until_complete(b_is_served())
        assert limiter.stats().granted == 2
        assert limiter.stats().queued == 0
    finally:
        loop_a.close()
        loop_b.close()
