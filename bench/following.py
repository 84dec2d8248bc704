"""Following items to their final state: reads spent against the minimum, and the share of the read quota used.

Cancelled items turn ``reverted`` 60 s after their cancel; the reads that follow them go through the merchant's
trades-read quota, which the sandbox enforces and which every other reader of the merchant shares (a frontend,
``get_trade`` calls, whole-trade planning). SDK and sandbox share one virtual-time loop, so the numbers repeat
exactly and an hour of polling runs in seconds of wall time. Two scenes:

* the unverified quota, 30 reads a minute: 1,000 items across 100 trades;
* the verified quota, 3,000 reads a minute: 10,000 items across 1,000 trades.

Three ways to follow the same items:

* ``wait_for_items``: one call, the session's shared poller;
* ``wait_for_item`` x every item: one call per item, all at once -- they share the same poller;
* one poller per item: the pre-0.x ``wait_for_item`` loop (read the trade, back off 1 s -> 15 s), all at once;
* ``wait_for_items`` where every trade belongs to another user: a page of the list shows one user's trades only,
  so each trade is read on its own (``GET /client/trades/{id}``) -- the case where the poller's share of the
  read quota, not the list, bounds what it spends.

A third table sets the scene as a real backlog runs: the cancels are accepted over time, one whole-trade cancel
at a time within the tier's cancel quota (60 a minute verified, 10 unverified), and each trade is followed by its
own user's ``wait_for_items`` as soon as its cancel is accepted. There the poller learns the revert delay from
the first trades it sees final and reads the later ones once, at that delay after their cancel
(``_follow_plan``); the time reported is the slowest trade's, from its accepted cancel to its final state.

A second table follows the same items with the merchant's API key (``AssetPaySession(api_key=...)``): the
poller then reads a round 100 trades a request through ``GET /secure/trades/{refs}`` (the merchant read
quota: 100 a minute unverified, 3,000 verified), under both readings of whether that route returns the
clients' trades (UNCONFIRMED; the sandbox plays both), falling back to the client scope where it does not.

Reported: the trade reads spent (requests of the trades-read group, whatever the route), their ratio to the
minimum (one read per followed trade, once it is final), the share of the read quota used (the busiest window
of the quota's period, as the sandbox counted it), 429s drawn, and the time from the start of
following to the last final state.

Run: ``python -m bench following [--scenes 30,3000] [--share 0.5]``; ``--smoke`` for a tiny size.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence

import attrs

from assetpay_async import AssetPayClient, AssetPaySession, Quota, TradeItem
from assetpay_async._limiting import MemoryLimiterRegistry
from assetpay_async._read_pace import DEFAULT_READ_SHARE
from assetpay_async.sandbox import Sandbox, SandboxBehavior
from assetpay_async.testing import run_virtual

from ._common import VIRTUAL, stamp

CANCELS = Quota(100_000, 1.0)
"""Only to set the scene quickly: the cancels are not what is measured."""
REVERT_DELAY = 60.0

Jobs = Sequence[tuple[AssetPayClient, str, str]]
"""What to follow: each item with the client of its trade's user."""
Follow = Callable[[Jobs], Awaitable[None]]


@attrs.frozen
class Scene:
    reads_per_minute: int
    trades: int
    items_per_trade: int


SCENES = {30: Scene(30, 100, 10), 3000: Scene(3000, 1000, 10)}


@attrs.frozen
class Result:
    reads: int
    minimum: int
    peak_share: float
    limited: int
    took: float
    batch_reads: int = 0
    batch_share: float = 0.0


def _by_client(jobs: Jobs) -> dict[AssetPayClient, list[tuple[str, str]]]:
    grouped: dict[AssetPayClient, list[tuple[str, str]]] = {}
    for client, trade_id, item_id in jobs:
        grouped.setdefault(client, []).append((trade_id, item_id))
    return grouped


async def _shared(jobs: Jobs) -> None:
    calls = [c.wait_for_items(p, timeout=24 * 3600) for c, p in _by_client(jobs).items()]
    for outcomes in await asyncio.gather(*calls):
        assert all(o.final for o in outcomes)


async def _wait_for_item_each(jobs: Jobs) -> None:
    await asyncio.gather(*(c.wait_for_item(t, i, timeout=24 * 3600) for c, t, i in jobs))


async def poll_one_item(client: AssetPayClient, trade_id: str, item_id: str) -> TradeItem:
    """The former ``wait_for_item``: its own read of the trade per poll, 1 s apart growing to 15 s."""
    interval = 1.0
    while True:
        item = (await client.get_trade(trade_id)).item(item_id)
        if item is not None and item.status is not None and item.status.terminal:
            return item
        await asyncio.sleep(interval)
        interval = min(15.0, interval * 1.5)


async def _poller_per_item(jobs: Jobs) -> None:
    await asyncio.gather(*(poll_one_item(c, t, i) for c, t, i in jobs))


async def _run(
    follow: Follow,
    scene: Scene,
    share: float | None,
    *,
    users: int,
    merchant_scope: bool | None = None,
) -> Result:
    """``merchant_scope``: None follows without the API key; True / False with it, the batch route returning
    the clients' trades or not."""
    reads = Quota(scene.reads_per_minute, 60.0)
    tier = "verified" if scene.reads_per_minute >= 3000 else "unverified"
    behavior = SandboxBehavior(secure_trades_include_clients=bool(merchant_scope))
    async with Sandbox(seed=11, revert_delay=REVERT_DELAY, behavior=behavior) as sb:
        merchant = sb.add_merchant(tier, quotas={"cancel-item": CANCELS, "trades-read": reads})
        api_key = None if merchant_scope is None else merchant.api_key
        people = [sb.add_user(merchant) for _ in range(users)]
        made = [
            sb.add_trade(people[n % users], items=scene.items_per_trade, age=dt.timedelta(hours=1))
            for n in range(scene.trades)
        ]
        async with AssetPaySession(
            cancel_quota=CANCELS,
            trades_quota=reads,
            base_url=sb.base_url,
            limiter=MemoryLimiterRegistry(),  # nothing carried over between the variants
            poll_read_share=DEFAULT_READ_SHARE if share is None else share,
            tier=tier,
            merchant_id=merchant.id,
            api_key=api_key,
        ) as session:
            clients = [session.client(sb.token(person)) for person in people]
            jobs = [(clients[n % users], t.id, i.id) for n, t in enumerate(made) for i in t.items]
            for client, pairs in _by_client(jobs).items():
                cancelled = await client.cancel_withdrawal_items(pairs, workers=64)
                assert all(o.ok for o in cancelled)
            before = sb.totals(merchant, "trades-read").accepted
            batch_before = sb.totals(merchant, "merchant-read").accepted
            started = sb.clock.now()
            await follow(jobs)
            took = sb.clock.now() - started
        totals = sb.totals(merchant, "trades-read")
        spent = totals.accepted - before
        return Result(
            reads=spent,
            minimum=scene.trades,
            peak_share=sb.quota_share(merchant, "trades-read"),
            limited=totals.rate_limited + sb.totals(merchant, "merchant-read").rate_limited,
            took=took,
            batch_reads=sb.totals(merchant, "merchant-read").accepted - batch_before,
            batch_share=sb.quota_share(merchant, "merchant-read"),
        )


@attrs.frozen
class Paced:
    reads: int
    minimum: int
    peak_share: float
    limited: int
    slowest: float
    mean: float


async def _run_paced(scene: Scene, share: float | None) -> Paced:
    """Whole-trade cancels accepted one at a time within the tier's cancel quota, each trade another user's
    and followed by its own ``wait_for_items`` from the moment its cancel was accepted."""
    reads = Quota(scene.reads_per_minute, 60.0)
    tier = "verified" if scene.reads_per_minute >= 3000 else "unverified"
    cancels = Quota(60 if tier == "verified" else 10, 60.0)
    async with Sandbox(seed=11, revert_delay=REVERT_DELAY) as sb:
        merchant = sb.add_merchant(tier, quotas={"cancel-item": cancels, "trades-read": reads})
        people = [sb.add_user(merchant) for _ in range(scene.trades)]
        made = [
            sb.add_trade(person, items=scene.items_per_trade, age=dt.timedelta(hours=1))
            for person in people
        ]
        took: list[float] = []
        async with AssetPaySession(
            cancel_quota=cancels,
            trades_quota=reads,
            base_url=sb.base_url,
            limiter=MemoryLimiterRegistry(),
            poll_read_share=DEFAULT_READ_SHARE if share is None else share,
            tier=tier,
            merchant_id=merchant.id,
        ) as session:

            async def follow(client: AssetPayClient, pairs: list[tuple[str, str]]) -> None:
                accepted = sb.clock.now()
                outcomes = await client.wait_for_items(pairs, timeout=24 * 3600)
                assert all(o.final for o in outcomes)
                took.append(sb.clock.now() - accepted)

            followers = []
            for person, trade in zip(people, made, strict=True):
                client = session.client(sb.token(person))
                result = await client.cancel_withdrawal_trade(trade.id)
                assert result.cancelled == scene.items_per_trade
                pairs = [(trade.id, item.id) for item in trade.items]
                followers.append(asyncio.create_task(follow(client, pairs)))
            await asyncio.gather(*followers)
        totals = sb.totals(merchant, "trades-read")
        return Paced(
            reads=totals.accepted,
            minimum=scene.trades,
            peak_share=sb.quota_share(merchant, "trades-read"),
            limited=totals.rate_limited,
            slowest=max(took),
            mean=sum(took) / len(took),
        )


def _paced_table(scene: Scene, share: float | None) -> None:
    """The backlog as it really runs: cancels accepted over time, each trade followed as accepted."""
    r = run_virtual(_run_paced(scene, share))
    print(
        "\nCancels accepted over time (one whole-trade cancel at a time within the tier's cancel quota), "
        "each trade another user's, followed as soon as its cancel is accepted.\n"
    )
    print(
        "| trade reads | reads / minimum | read quota used (busiest 60 s) | 429s | "
        "cancel to final: slowest trade | mean |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r.reads:,} | {r.reads / r.minimum:.2f} | {r.peak_share:.0%} | {r.limited} | "
        f"{r.slowest:,.1f} s | {r.mean:,.1f} s |"
    )


def _variants(scene: Scene) -> list[tuple[str, Follow, int]]:
    total = scene.trades * scene.items_per_trade
    return [
        ("`wait_for_items` (shared poller)", _shared, 1),
        (f"`wait_for_item` x {total:,}, at once (shared poller)", _wait_for_item_each, 1),
        (f"one poller per item x {total:,} (the former `wait_for_item`)", _poller_per_item, 1),
        (
            f"`wait_for_items`, each trade another user's ({scene.trades:,} client tokens)",
            _shared,
            scene.trades,
        ),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench following", description=__doc__)
    parser.add_argument(
        "--scenes", default="30,3000", help="trades-read quotas per minute, of 30 and 3000"
    )
    parser.add_argument(
        "--share", type=float, default=None, help="poll_read_share (default: the session's)"
    )
    parser.add_argument("--smoke", action="store_true", help="10 trades of 5 items: checks it runs")
    parser.add_argument(
        "--only-paced", action="store_true", help="only the table of cancels accepted over time"
    )
    args = parser.parse_args(argv)
    scenes = [SCENES[int(one)] for one in args.scenes.split(",")]
    if args.smoke:
        scenes = [attrs.evolve(scene, trades=10, items_per_trade=5) for scene in scenes]
    print(stamp("following", argv, clock=VIRTUAL))
    for scene in scenes:
        total = scene.trades * scene.items_per_trade
        print()
        print(
            f"{total:,} items across {scene.trades:,} trades, reverted {REVERT_DELAY:g} s after the "
            f"cancel; trades-read quota {scene.reads_per_minute:,} per 60 s. Minimum: one read per "
            f"trade, {scene.trades:,}.\n"
        )
        if args.only_paced:
            _paced_table(scene, args.share)
            continue
        print(
            "| how | trade reads | reads / minimum | read quota used (busiest 60 s) | 429s | "
            "time to the last final state |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for name, follow, users in _variants(scene):
            r = run_virtual(_run(follow, scene, args.share, users=users))
            print(
                f"| {name} | {r.reads:,} | {r.reads / r.minimum:.2f} | {r.peak_share:.0%} | "
                f"{r.limited} | {r.took:,.0f} s ({r.took / 60:.1f} min) |"
            )
        _paced_table(scene, args.share)
        _merchant_table(scene, args.share)
    return 0


def _merchant_table(scene: Scene, share: float | None) -> None:
    """The same items followed with the API key, under both readings of the batch route."""
    print(
        "\nWith the API key (each trade another user's): batch reads go through the merchant read "
        "quota, trade reads through the trades-read quota.\n"
    )
    print(
        "| batch route returns clients' trades | batch reads | trade reads | "
        "merchant read quota used | trades-read quota used | 429s | time to the last final state |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for returns in (True, False):
        r = run_virtual(_run(_shared, scene, share, users=scene.trades, merchant_scope=returns))
        print(
            f"| {'yes' if returns else 'no'} | {r.batch_reads:,} | {r.reads:,} | "
            f"{r.batch_share:.0%} | {r.peak_share:.0%} | {r.limited} | "
            f"{r.took:,.0f} s ({r.took / 60:.1f} min) |"
        )
