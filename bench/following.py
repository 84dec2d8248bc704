"""Following items to their final state: one shared poller per merchant against one poller per item.

1,000 cancelled items across 100 trades (10 each) turn ``reverted`` 60 s after their cancel; the reads that follow
them go through AssetPay's unverified trades-read quota, 30 a minute, which the sandbox enforces. SDK and sandbox
share one virtual-time loop, so half an hour of polling runs in seconds of wall time.

Three ways to follow the same items:

* ``wait_for_items``: one call, the shared poller reads each trade once a round;
* ``wait_for_item`` x 1,000: one call per item, all running at once -- they share the same poller;
* one poller per item: the pre-0.x ``wait_for_item`` loop (read the trade, back off 1 s -> 15 s), 1,000 at once.

Reported: trade reads spent, 429s drawn, and the time from the start of following to the last final state.

Run: ``nox -s bench -- following`` or ``python -m bench following [--trades 100] [--items-per-trade 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence

from assetpay_async import AssetPayClient, AssetPaySession, Quota, TradeItem
from assetpay_async._limiting import MemoryLimiterRegistry
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual

from ._common import VIRTUAL, stamp

READS = Quota(30, 60.0)
"""AssetPay's unverified trades-read quota."""
CANCELS = Quota(1000, 1.0)
"""Only to set the scene quickly: the cancels are not what is measured."""
REVERT_DELAY = 60.0

Pairs = Sequence[tuple[str, str]]
Follow = Callable[[AssetPayClient, Pairs], Awaitable[None]]


async def _shared(client: AssetPayClient, pairs: Pairs) -> None:
    outcomes = await client.wait_for_items(pairs, timeout=24 * 3600)
    assert all(o.final for o in outcomes)


async def _wait_for_item_each(client: AssetPayClient, pairs: Pairs) -> None:
    await asyncio.gather(*(client.wait_for_item(t, i, timeout=24 * 3600) for t, i in pairs))


async def poll_one_item(client: AssetPayClient, trade_id: str, item_id: str) -> TradeItem:
    """The former ``wait_for_item``: its own read of the trade per poll, 1 s apart growing to 15 s."""
    interval = 1.0
    while True:
        item = (await client.get_trade(trade_id)).item(item_id)
        if item is not None and item.status is not None and item.status.terminal:
            return item
        await asyncio.sleep(interval)
        interval = min(15.0, interval * 1.5)


async def _poller_per_item(client: AssetPayClient, pairs: Pairs) -> None:
    await asyncio.gather(*(poll_one_item(client, t, i) for t, i in pairs))


async def _run(follow: Follow, trades: int, items: int) -> tuple[int, int, float]:
    async with Sandbox(seed=11, revert_delay=REVERT_DELAY) as sb:
        merchant = sb.add_merchant(
            "unverified", quotas={"cancel-item": CANCELS, "trades-read": READS}
        )
        user = sb.add_user(merchant)
        made = [sb.add_trade(user, items=items, age=dt.timedelta(hours=1)) for _ in range(trades)]
        pairs = [(t.id, i.id) for t in made for i in t.items]
        async with AssetPaySession(
            cancel_quota=CANCELS,
            trades_quota=READS,
            base_url=sb.base_url,
            limiter=MemoryLimiterRegistry(),  # nothing carried over between the variants
        ) as session:
            client = session.client(sb.token(user))
            cancelled = await client.cancel_withdrawal_items(pairs, workers=64)
            assert all(o.ok for o in cancelled)
            started = sb.clock.now()
            await follow(client, pairs)
            took = sb.clock.now() - started
        totals = sb.totals(merchant, "trades-read")
        return totals.accepted, totals.rate_limited, took


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench following", description=__doc__)
    parser.add_argument("--trades", type=int, default=100)
    parser.add_argument("--items-per-trade", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="10 trades of 5 items: checks it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.trades, args.items_per_trade = 10, 5
    total = args.trades * args.items_per_trade
    print(stamp("following", argv, clock=VIRTUAL))
    print()
    print(
        f"{total} items across {args.trades} trades, reverted {REVERT_DELAY:g} s after the cancel, "
        f"trades-read quota {READS.limit}/{READS.period_seconds:g} s.\n"
    )
    print("| how | trade reads | 429s | time to the last final state |")
    print("|---|---:|---:|---:|")
    variants: list[tuple[str, Follow]] = [
        ("`wait_for_items` (shared poller)", _shared),
        (f"`wait_for_item` x {total}, at once (shared poller)", _wait_for_item_each),
        (f"one poller per item x {total} (the former `wait_for_item`)", _poller_per_item),
    ]
    for name, follow in variants:
        reads, limited, took = run_virtual(_run(follow, args.trades, args.items_per_trade))
        print(f"| {name} | {reads} | {limited} | {took:,.0f} s ({took / 60:.1f} min) |")
    return 0
