"""Backlog: how long a backlog of undelivered items takes to clear, and what it costs in requests.

The world: one sandbox merchant of each tier with its published quotas (verified: 60 cancels and 3,000 trade
reads a minute; unverified: 10 and 30), one user, ``--trades`` withdrawal trades of ``--items-per-trade``
undelivered items each (default 1,000 x 10 = 10,000 items), all an hour old so every cancel is allowed. An
accepted cancel turns its item ``reverted`` ``--revert-delay`` seconds later (default 60). The sandbox plays its
default server model (a sliding log). SDK and sandbox talk over loopback inside one
[`VirtualTimeLoop`][assetpay_async.testing.VirtualTimeLoop], so hours of quota-bound traffic cost only the CPU
of the requests themselves.

A strategy is a pair of small async functions: one that cancels the world's items (``(client, world) ->
Cancelled``) and one that follows the accepted items until each is seen final (``(client, world, accepted) ->
Followed``). The SDK session uses the tier's quotas and defaults (J = 1 s). Following starts when the cancel
function returns, as code that awaits a batch and then follows what it accepted does. Measured per strategy, on
the virtual clock from the start: when the last item was accepted, when the last was seen final; from the
sandbox's own log: requests spent on cancels and on reads, 429s, and the accepted cancel requests per minute as a
share of N/T. Ratios are against the first strategy of the same tier. An SDK strategy must draw no 429 and see
every item final, or the benchmark fails; the baseline's 429s are counted.

To add a strategy: write its cancel or follow function next to the others and add one ``Strategy`` line to
``STRATEGIES``.

Run: ``nox -s bench -- backlog`` or ``python -m bench backlog [--trades 1000] [--items-per-trade 10]
[--revert-delay 60] [--tiers verified,unverified]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
import attrs
from aiolimiter import AsyncLimiter

from assetpay_async import AssetPayClient, AssetPaySession, MerchantTier, TradeItem
from assetpay_async._limiting import MemoryLimiterRegistry
from assetpay_async._quota import Quota, RouteGroup, default_quota
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual

from ._common import VIRTUAL, stamp
from .following import poll_one_item

Pair = tuple[str, str]
FOLLOW_TIMEOUT = 7 * 24 * 3600.0
"""Long enough for any size here: a follower that gives up shows as items not seen final."""


@attrs.frozen
class World:
    """What a strategy works on.

    Attributes:
        sandbox: the running sandbox (its ``base_url``, its log).
        tier: the merchant's tier.
        token: the user's client token.
        trades: trade id -> the ids of its items, in creation order.
        pairs: every (trade id, item id), trade by trade.
    """

    sandbox: Sandbox
    tier: MerchantTier
    token: str
    trades: dict[str, list[str]]
    pairs: list[Pair]

    def quota(self, group: RouteGroup) -> Quota:
        return default_quota(self.tier, group)


@attrs.frozen
class Cancelled:
    """What a cancel function got accepted (``accepted``) and how many items it could not cancel."""

    accepted: list[Pair]
    failed: int = 0


@attrs.frozen
class Followed:
    """How many followed items were seen final, and how many were not (timed out)."""

    final: int
    not_final: int = 0


CancelFn = Callable[[AssetPayClient, World], Awaitable[Cancelled]]
FollowFn = Callable[[AssetPayClient, World, list[Pair]], Awaitable[Followed]]


# -- cancel functions ---------------------------------------------------------------------------------------


async def one_cancel_per_item(client: AssetPayClient, world: World) -> Cancelled:
    """The SDK's batch: one cancel request per item, paced by the merchant's limiter."""
    outcomes = await client.cancel_withdrawal_items(world.pairs)
    accepted = [(str(o.trade_id), str(o.item_id)) for o in outcomes if o.ok]
    return Cancelled(accepted, failed=len(outcomes) - len(accepted))


async def whole_trade_cancels(client: AssetPayClient, world: World) -> Cancelled:
    """The SDK's batch with ``whole_trades=True``: one trade read and one whole-trade cancel per trade."""
    outcomes = await client.cancel_withdrawal_items(world.pairs, whole_trades=True)
    accepted = [(str(o.trade_id), str(o.item_id)) for o in outcomes if o.ok]
    return Cancelled(accepted, failed=len(outcomes) - len(accepted))


async def naive_gather(client: AssetPayClient, world: World) -> Cancelled:
    """Not the SDK: ``asyncio.gather`` of one POST per item through ``AsyncLimiter(N, T)`` over plain aiohttp.

    A 429 is sent again through the same limiter, as such code usually does, until it is accepted.
    """
    quota = world.quota(RouteGroup.CANCEL_ITEM)
    limiter = AsyncLimiter(quota.limit, quota.period_seconds)
    headers = {"Authorization": f"Bearer {world.token}"}
    async with aiohttp.ClientSession(base_url=world.sandbox.base_url) as http:

        async def cancel(trade_id: str, item_id: str) -> bool:
            path = f"/client/trading/withdraw/{trade_id}/items/{item_id}/cancel"
            while True:
                async with limiter, http.post(path, headers=headers) as response:
                    await response.read()
                if response.status != 429:
                    return response.status == 200

        done = await asyncio.gather(*(cancel(t, i) for t, i in world.pairs))
    accepted = [pair for pair, ok in zip(world.pairs, done, strict=True) if ok]
    return Cancelled(accepted, failed=len(done) - len(accepted))


# -- follow functions ---------------------------------------------------------------------------------------


async def one_poller_per_item(
    client: AssetPayClient, world: World, accepted: list[Pair]
) -> Followed:
    """One polling loop per accepted item, all at once (the former ``wait_for_item``): each reads its trade."""
    seen = await asyncio.gather(
        *(asyncio.wait_for(poll_one_item(client, t, i), FOLLOW_TIMEOUT) for t, i in accepted),
        return_exceptions=True,
    )
    for result in seen:
        if isinstance(result, BaseException) and not isinstance(result, TimeoutError):
            raise result
    final = sum(isinstance(result, TradeItem) for result in seen)
    return Followed(final, not_final=len(seen) - final)


async def shared_poller(client: AssetPayClient, world: World, accepted: list[Pair]) -> Followed:
    """``wait_for_items``: the session's one poller reads each trade once a round, however many items it has."""
    outcomes = await client.wait_for_items(accepted, timeout=FOLLOW_TIMEOUT)
    final = sum(o.final for o in outcomes)
    return Followed(final, not_final=len(outcomes) - final)


# -- the strategies measured --------------------------------------------------------------------------------


@attrs.frozen
class Strategy:
    """One row: how items are cancelled and how they are followed; ``sdk`` rows must draw no 429."""

    label: str
    cancel: CancelFn
    follow: FollowFn
    sdk: bool = True


STRATEGIES = [
    Strategy(
        "(a) one cancel per item (`cancel_withdrawal_items`), one poller per item",
        one_cancel_per_item,
        one_poller_per_item,
    ),
    Strategy(
        "(a) one cancel per item (`cancel_withdrawal_items`), shared poller (`wait_for_items`)",
        one_cancel_per_item,
        shared_poller,
    ),
    Strategy(
        "(b) whole-trade cancels (`whole_trades=True`), shared poller (`wait_for_items`)",
        whole_trade_cancels,
        shared_poller,
    ),
    Strategy(
        "(c) naive `gather` over `AsyncLimiter(N, T)`, 429s sent again; one poller per item",
        naive_gather,
        one_poller_per_item,
        sdk=False,
    ),
]


# -- measuring ----------------------------------------------------------------------------------------------


@attrs.frozen
class Row:
    accepted_at: float
    final_at: float
    cancel_requests: int
    read_requests: int
    cancel_429s: int
    read_429s: int
    share: float
    accepted: int
    final: int
    items: int
    wall: float


async def measure(
    strategy: Strategy, tier: MerchantTier, trades: int, per_trade: int, revert_delay: float
) -> Row:
    """Run ``strategy`` on a fresh world of ``tier`` and return what it took."""
    wall_start = time.perf_counter()
    async with Sandbox(seed=7, revert_delay=revert_delay) as sb:
        merchant = sb.add_merchant(tier)
        user = sb.add_user(merchant)
        made = [
            sb.add_trade(user, items=per_trade, age=dt.timedelta(hours=1)) for _ in range(trades)
        ]
        world = World(
            sandbox=sb,
            tier=tier,
            # AssetPay's tokens live 24 h, less than 10,000 items take at 10 a minute (renewal is not measured).
            token=sb.token(user, lifetime=dt.timedelta(days=30)),
            trades={t.id: [i.id for i in t.items] for t in made},
            pairs=[(t.id, i.id) for t in made for i in t.items],
        )
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with AssetPaySession(
            tier=tier, base_url=sb.base_url, limiter=MemoryLimiterRegistry()
        ) as session:
            client = session.client(world.token)
            cancelled = await strategy.cancel(client, world)
            accepted_at = loop.time() - start
            followed = await strategy.follow(client, world, cancelled.accepted)
            final_at = loop.time() - start
        await sb.settle()
        log = sb.requests
        reverted = sum(item.status == "reverted" for t in made for item in t.items)
    # By route, not quota group: an item cancel and a whole-trade cancel are both a POST ending in /cancel.
    cancels = [r for r in log if r.method == "POST" and r.path.endswith("/cancel")]
    reads = [r for r in log if r.group is RouteGroup.TRADES_READ]
    accepted_times = [r.time for r in cancels if r.status == 200]
    quota = world.quota(RouteGroup.CANCEL_ITEM)
    share = 0.0
    if len(accepted_times) > 1 and accepted_times[-1] > accepted_times[0]:
        span = accepted_times[-1] - accepted_times[0]
        share = (len(accepted_times) - 1) / span / quota.rate
    return Row(
        accepted_at=accepted_at,
        final_at=final_at,
        cancel_requests=len(cancels),
        read_requests=len(reads),
        cancel_429s=sum(r.rate_limited for r in cancels),
        read_429s=sum(r.rate_limited for r in reads),
        share=share,
        accepted=min(len(cancelled.accepted), reverted),
        final=followed.final,
        items=len(world.pairs),
        wall=time.perf_counter() - wall_start,
    )


def hms(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def table(tier: MerchantTier, rows: Sequence[tuple[Strategy, Row]]) -> list[str]:
    cancel_q = default_quota(tier, RouteGroup.CANCEL_ITEM)
    read_q = default_quota(tier, RouteGroup.TRADES_READ)
    lines = [
        f"{tier.value.capitalize()} tier: {cancel_q.limit:,} cancels and {read_q.limit:,} reads per "
        f"{cancel_q.period_seconds:g} s.",
        "",
        "| strategy | last accepted (h:mm:ss) | last seen final (h:mm:ss) | cancel requests "
        "| read requests | 429s (cancel / read) | accepted cancel requests per minute, share of N/T "
        "| time to last final, ratio to (a) | requests, ratio to (a) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    first = rows[0][1]
    for strategy, row in rows:
        requests = row.cancel_requests + row.read_requests
        base_requests = first.cancel_requests + first.read_requests
        unfinished = ""
        if row.final < row.items:
            unfinished = f" ({row.items - row.final:,} never seen final)"
        lines.append(
            f"| {strategy.label} | {hms(row.accepted_at)} | {hms(row.final_at)}{unfinished} "
            f"| {row.cancel_requests:,} | {row.read_requests:,} | {row.cancel_429s:,} / {row.read_429s:,} "
            f"| {row.share:.1%} | {row.final_at / first.final_at:.2f} | {requests / base_requests:.2f} |"
        )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench backlog", description=__doc__)
    parser.add_argument("--trades", type=int, default=1000, help="withdrawal trades in the world")
    parser.add_argument(
        "--items-per-trade", type=int, default=10, help="undelivered items per trade"
    )
    parser.add_argument(
        "--revert-delay",
        type=float,
        default=60.0,
        help="seconds from an accepted cancel to reverted",
    )
    parser.add_argument(
        "--tiers", default="verified,unverified", help="comma-separated merchant tiers"
    )
    parser.add_argument("--smoke", action="store_true", help="200 items over 20 trades")
    args = parser.parse_args(argv)
    if args.smoke:
        args.trades, args.items_per_trade = 20, 10
    tiers = [MerchantTier(t) for t in args.tiers.split(",")]
    items = args.trades * args.items_per_trade

    out = [
        stamp("backlog", argv, clock=VIRTUAL)
        + f" {items:,} undelivered items over {args.trades:,} trades; an accepted item turns"
        f" `reverted` {args.revert_delay:g} s later; the sandbox's default server model (sliding log).",
    ]
    failures = []
    for tier in tiers:
        rows = []
        for strategy in STRATEGIES:
            row = run_virtual(
                measure(strategy, tier, args.trades, args.items_per_trade, args.revert_delay)
            )
            print(
                f"backlog: {tier.value}, {strategy.label}: {row.wall:.1f} s wall",
                file=sys.stderr,
                flush=True,
            )
            rows.append((strategy, row))
            if strategy.sdk and (row.cancel_429s or row.read_429s or row.final < row.items):
                failures.append(f"{tier.value}: {strategy.label}")
        out += ["", *table(tier, rows)]
    print("\n".join(out))
    if failures:
        print(
            "an SDK strategy drew 429s or left items unseen: " + "; ".join(failures),
            file=sys.stderr,
        )
        return 1
    return 0
