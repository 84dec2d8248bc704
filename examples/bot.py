"""A bot that keeps a user's withdrawals moving: every few minutes, cancel CS2 items stuck for too long.

    export ASSETPAY_CLIENT_TOKEN=...   ASSETPAY_TIER=verified   # ASSETPAY_BASE_URL for a sandbox
    python examples/bot.py --stuck-after 45 --interval 300

Each round reads the user's withdrawals (through the trades-read quota), picks the CS2 items still in flight
whose trade is older than ``--stuck-after`` minutes, and cancels them (through the cancel quota). The bot never
counts requests itself: the session paces everything, shared with whatever else of the merchant runs.
Rust items are skipped (no cancel API); a refused cancel is logged and tried again next round.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Sequence

import attrs

from assetpay_async import (
    DEFAULT_BASE_URL,
    AssetPayClient,
    AssetPaySession,
    Game,
    OutcomeKind,
    TradeType,
)

log = logging.getLogger("assetpay_bot")


@attrs.define
class BotStats:
    rounds: int = 0
    cancelled: int = 0
    refused: int = 0


async def one_round(client: AssetPayClient, stuck_after: dt.timedelta, stats: BotStats) -> None:
    """Cancel every stuck CS2 item of this user once."""
    now = client.session.wall_clock()
    stuck: list[tuple[str, str]] = []
    async for trade in client.iter_trades(type=TradeType.WITHDRAW, game=Game.CS2):
        if trade.created_at is None or now - trade.created_at < stuck_after:
            continue
        stuck.extend(
            (trade.id, item.id) for item in trade.items if item.status and not item.status.terminal
        )
    for outcome in await client.cancel_withdrawal_items(stuck):
        if outcome.kind is OutcomeKind.CANCELLED:
            stats.cancelled += 1
            log.info("cancelled item %s of trade %s", outcome.item_id, outcome.trade_id)
        else:
            stats.refused += 1
            log.warning("item %s of trade %s: %s", outcome.item_id, outcome.trade_id, outcome.error)
    stats.rounds += 1


async def main(
    *,
    token: str,
    tier: str = "verified",
    base_url: str | None = None,
    stuck_after: dt.timedelta = dt.timedelta(minutes=45),
    interval: float = 300.0,
    rounds: int | None = None,
    wall_clock: Callable[[], dt.datetime] | None = None,
) -> BotStats:
    """Run rounds every ``interval`` seconds, forever or ``rounds`` times; return what was done.

    ``wall_clock`` (default: the system's) is what trade ages are measured against; tests on virtual time pass
    the sandbox's.
    """
    stats = BotStats()
    async with AssetPaySession(
        tier=tier, base_url=base_url or DEFAULT_BASE_URL, wall_clock=wall_clock
    ) as session:
        client = session.client(token)
        while rounds is None or stats.rounds < rounds:
            await one_round(client, stuck_after, stats)
            if rounds is None or stats.rounds < rounds:
                await asyncio.sleep(interval)
    return stats


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stuck-after", type=float, default=45.0, help="minutes (at least 30)")
    parser.add_argument("--interval", type=float, default=300.0, help="seconds between rounds")
    parser.add_argument("--rounds", type=int, help="stop after this many rounds")
    args = parser.parse_args(argv)
    token = os.environ.get("ASSETPAY_CLIENT_TOKEN")
    if not token:
        parser.error("set ASSETPAY_CLIENT_TOKEN")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        asyncio.run(
            main(
                token=token,
                tier=os.environ.get("ASSETPAY_TIER", "verified"),
                base_url=os.environ.get("ASSETPAY_BASE_URL"),
                stuck_after=dt.timedelta(minutes=max(args.stuck_after, 30.0)),
                interval=args.interval,
                rounds=args.rounds,
            )
        )
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(cli())
