"""The refund recipe: cancel, then refund the user exactly once when the item's ``reverted`` callback arrives.

    export ASSETPAY_CLIENT_TOKEN=...  ASSETPAY_API_SECRET=...  ASSETPAY_TIER=verified  # ASSETPAY_BASE_URL: sandbox
    python examples/refund_recipe.py --port 8001 TRADE_ID ITEM_ID [ITEM_ID ...]

AssetPay posts the callbacks to the URL saved for your merchant: ``http://<this host>:8001/assetpay/callback``.
Against the sandbox, start it with that URL and take the token, the secret and an item from what it prints::

    assetpay sandbox --port 8080 --callback-url http://127.0.0.1:8001/assetpay/callback
    export ASSETPAY_BASE_URL=http://127.0.0.1:8080 ASSETPAY_API_SECRET=<the merchant's secret>
    export ASSETPAY_CLIENT_TOKEN=<a user's token>

A 200 from the cancel only says the marketplace accepted; AssetPay refunds *your* wallet later and tells you
with a ``trade.*`` callback whose item is ``reverted``. That is when you credit your user. Callbacks are
retried and may arrive twice, so the refund is keyed on (trade id, item id) with a unique key in the same
transaction as the balance change: a second delivery, a retry after a crash or a second process changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import Final

from aiohttp import web

from assetpay_async import DEFAULT_BASE_URL, AssetPayClient, AssetPaySession, TradeStatus, TradeType
from assetpay_async.callbacks import CallbackEvent, EventHandler, callback_handler

CALLBACK_PATH: Final = "/assetpay/callback"


class RefundLedger:
    """Refunds and user balances in SQLite; ``(trade_id, item_id)`` is the refund's primary key."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path)
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS refunds (trade_id TEXT, item_id TEXT, user TEXT, cents INTEGER,"
                " PRIMARY KEY (trade_id, item_id))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS balances (user TEXT PRIMARY KEY, cents INTEGER)"
            )
        self.changed = asyncio.Event()

    def refund_once(self, trade_id: str, item_id: str, user: str, cents: int) -> bool:
        """Credit ``user`` for the item unless it was refunded already; True if this call refunded it."""
        with (
            self._db
        ):  # one transaction: the refund row and the balance move together, or not at all
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO refunds VALUES (?, ?, ?, ?)",
                (trade_id, item_id, user, cents),
            ).rowcount
            if inserted:
                self._db.execute(
                    "INSERT INTO balances VALUES (?, ?) ON CONFLICT (user) DO UPDATE SET cents = cents + ?",
                    (user, cents, cents),
                )
        self.changed.set()
        return bool(inserted)

    def refunded(self) -> set[tuple[str, str]]:
        return {(t, i) for t, i in self._db.execute("SELECT trade_id, item_id FROM refunds")}

    def balance(self, user: str) -> int:
        row = self._db.execute("SELECT cents FROM balances WHERE user = ?", (user,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._db.close()


def on_reverted(ledger: RefundLedger) -> EventHandler:
    """The callback coroutine: refund every reverted item of a withdrawal, once."""

    async def handle(event: CallbackEvent) -> None:
        trade = event.trade
        if trade.type != TradeType.WITHDRAW:
            return
        for item in trade.items:
            if item.status == TradeStatus.REVERTED:
                price = float((item.offer or {}).get("price", 0.0))
                ledger.refund_once(
                    trade.id, item.id, trade.client_steam_id or "?", round(price * 100)
                )

    return handle


def build_app(api_secret: str, ledger: RefundLedger) -> web.Application:
    app = web.Application()
    app.router.add_post(CALLBACK_PATH, callback_handler(api_secret, on_reverted(ledger)))
    return app


async def cancel_and_await_refunds(
    client: AssetPayClient,
    ledger: RefundLedger,
    trade_id: str,
    item_ids: Sequence[str],
    *,
    timeout: float = 900.0,
) -> set[tuple[str, str]]:
    """Cancel the items; return the accepted ones once all of them are refunded (TimeoutError after ``timeout``)."""
    outcomes = await client.cancel_withdrawal_items([(trade_id, i) for i in item_ids])
    accepted = {(trade_id.lower(), str(o.item_id).lower()) for o in outcomes if o.ok}
    async with asyncio.timeout(timeout):
        while not accepted <= ledger.refunded():
            ledger.changed.clear()
            await ledger.changed.wait()
    return accepted


async def main(
    trade_id: str,
    item_ids: Sequence[str],
    *,
    token: str,
    api_secret: str,
    ledger: RefundLedger,
    tier: str = "verified",
    base_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8001,
    timeout: float = 900.0,
) -> set[tuple[str, str]]:
    """Serve the callback endpoint, cancel the items and wait until each accepted one is refunded."""
    runner = web.AppRunner(build_app(api_secret, ledger))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        async with AssetPaySession(tier=tier, base_url=base_url or DEFAULT_BASE_URL) as session:
            return await cancel_and_await_refunds(
                session.client(token), ledger, trade_id, item_ids, timeout=timeout
            )
    finally:
        await runner.cleanup()


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trade_id")
    parser.add_argument("item_ids", nargs="+")
    parser.add_argument("--port", type=int, default=8001, help="where AssetPay's callbacks arrive")
    parser.add_argument("--db", default="refunds.sqlite3")
    args = parser.parse_args(argv)
    ledger = RefundLedger(args.db)
    try:
        refunded = asyncio.run(
            main(
                args.trade_id,
                args.item_ids,
                token=os.environ["ASSETPAY_CLIENT_TOKEN"],
                api_secret=os.environ["ASSETPAY_API_SECRET"],
                ledger=ledger,
                tier=os.environ.get("ASSETPAY_TIER", "verified"),
                base_url=os.environ.get("ASSETPAY_BASE_URL"),
                port=args.port,
            )
        )
    finally:
        ledger.close()
    print(f"refunded {len(refunded)} item(s)")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
