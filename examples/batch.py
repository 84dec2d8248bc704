"""Cancel a file of withdrawal items, then follow every accepted cancel until the item is ``reverted``.

    export ASSETPAY_CLIENT_TOKEN=...   ASSETPAY_TIER=verified   # ASSETPAY_BASE_URL for a sandbox
    python examples/batch.py items.csv                          # trade_id,item_id per line

One session paces every request to the merchant's quota (cancels and trade reads alike), so this script can run
next to your web service without either of them drawing a 429. ``assetpay cancel-batch`` does the first half of
this with a progress bar; this is the same thing in a dozen lines of your own code.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from assetpay_async import (
    DEFAULT_BASE_URL,
    AssetPayClient,
    AssetPayError,
    AssetPaySession,
    CancelOutcome,
    CancelTooSoonError,
    OutcomeKind,
    TradeItem,
)


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """``trade_id,item_id`` per line; a header line and blank lines are skipped."""
    rows = csv.reader(path.read_text(encoding="utf-8").splitlines())
    return [
        (r[0].strip(), r[1].strip()) for r in rows if len(r) >= 2 and r[0].strip() != "trade_id"
    ]


def _say(text: str) -> None:
    print(text, flush=True)  # a long run: every step shows at once, also in a log file


async def _cancel_all(
    client: AssetPayClient, pairs: Sequence[tuple[str, str]]
) -> list[CancelOutcome]:
    """Cancel ``pairs``; items too young to cancel are said so, then cancelled once 30 minutes old."""
    outcomes = await client.cancel_withdrawal_items(pairs)
    young = [i for i, o in enumerate(outcomes) if isinstance(o.error, CancelTooSoonError)]
    if young:
        _say(
            f"{len(young)} item(s) are younger than 30 minutes (TRADE_CANCEL_TOO_SOON): waiting until "
            "each is 30 minutes old to cancel it again (at most 30 min; Ctrl-C leaves them as they are)"
        )
        again = await client.cancel_withdrawal_items(
            [pairs[i] for i in young], reschedule_too_soon=True
        )
        for index, outcome in zip(young, again, strict=True):
            outcomes[index] = outcome
    return outcomes


async def main(
    pairs: Sequence[tuple[str, str]],
    *,
    token: str,
    tier: str = "verified",
    base_url: str | None = None,
    follow_timeout: float = 900.0,
) -> dict[str, int]:
    """Cancel ``pairs``, wait for the accepted ones to be reverted; return counts by final state."""
    async with AssetPaySession(tier=tier, base_url=base_url or DEFAULT_BASE_URL) as session:
        client = session.client(token)
        quota = session.quota("cancel-item")
        _say(
            f"cancelling {len(pairs)} item(s), at most {quota.limit} per {quota.period_seconds:g}s"
        )
        outcomes = await _cancel_all(client, pairs)
        summary = Counter(
            o.kind.value
            if o.ok
            else f"{o.kind.value}: {getattr(o.error, 'key', None) or type(o.error).__name__}"
            for o in outcomes
        )

        async def follow(trade_id: object, item_id: object) -> TradeItem | AssetPayError:
            try:
                return await client.wait_for_item(trade_id, item_id, timeout=follow_timeout)  # type: ignore[arg-type]
            except AssetPayError as exc:  # e.g. WaitTimeoutError: still not final; check it later
                return exc

        accepted = [
            o for o in outcomes if o.kind is OutcomeKind.CANCELLED and o.duplicate_of is None
        ]
        if accepted:
            _say(
                f"{len(accepted)} cancel(s) accepted: following each item until AssetPay marks it "
                f"'reverted' (refund then; up to {follow_timeout / 60:g} min)"
            )
        finals = await asyncio.gather(*(follow(o.trade_id, o.item_id) for o in accepted))
        for final in finals:
            status = final.status if isinstance(final, TradeItem) else None
            summary[f"final: {status.value if status else type(final).__name__}"] += 1
    for label, count in sorted(summary.items()):
        print(f"{count:6d}  {label}")
    return dict(summary)


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path, help="CSV of trade_id,item_id")
    args = parser.parse_args(argv)
    token = os.environ.get("ASSETPAY_CLIENT_TOKEN")
    if not token:
        parser.error("set ASSETPAY_CLIENT_TOKEN")
    summary = asyncio.run(
        main(
            read_pairs(args.file),
            token=token,
            tier=os.environ.get("ASSETPAY_TIER", "verified"),
            base_url=os.environ.get("ASSETPAY_BASE_URL"),
        )
    )
    return 0 if all(k in ("cancelled", "final: reverted") for k in summary) else 1


if __name__ == "__main__":
    sys.exit(cli())
