"""The refund recipe: cancel, then refund the user exactly once when the item's ``reverted`` callback arrives.

    export ASSETPAY_CLIENT_TOKEN=...  ASSETPAY_API_SECRET=...  ASSETPAY_TIER=verified  # ASSETPAY_BASE_URL: sandbox
    python examples/refund_recipe.py --port 8001 --db refunds.sqlite3 TRADE ITEM [ITEM ...]

TRADE and ITEM are AssetPay's ids or your own externalIds. AssetPay posts the callbacks to the URL saved for
your merchant: ``http://<this host>:8001/assetpay/callback``. Against the sandbox, start it with that URL and
take the token, the merchant's secret and an item from what it prints::

    assetpay sandbox --port 8080 --callback-url http://127.0.0.1:8001/assetpay/callback
    export ASSETPAY_BASE_URL=http://127.0.0.1:8080 ASSETPAY_API_SECRET=<the merchant's secret>
    export ASSETPAY_CLIENT_TOKEN=<a user's token>

A 200 from the cancel only says the marketplace accepted; AssetPay refunds *your* wallet later and tells you
with a callback whose item is ``reverted`` (the trade itself stays ``active`` while other items are still in
flight: look at each item's own status). That is when you credit your user. Callbacks are retried and may
arrive twice, so the refund is keyed on (trade id, item id) with a unique key in the same transaction as the
balance change: a second delivery, a retry after a crash or a second process changes nothing.

The ledger is the SQLite file given with ``--db``; without it, a new file in a temporary directory (printed).
Each item's outcome is printed; the exit status is 0 when every item was refunded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import attrs
from aiohttp import web

from assetpay_async import (
    DEFAULT_BASE_URL,
    APIError,
    AssetPayClient,
    AssetPaySession,
    TradeStatus,
    TradeType,
)
from assetpay_async.callbacks import CallbackEvent, EventHandler, callback_handler

CALLBACK_PATH: Final = "/assetpay/callback"


class RefundLedger:
    """Refunds and user balances in SQLite; ``(trade_id, item_id)`` (AssetPay's ids) is the refund's key."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._db = sqlite3.connect(path)
        with self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS refunds (trade_id TEXT, item_id TEXT, user TEXT, cents INTEGER,"
                " trade_external_id TEXT, item_external_id TEXT, PRIMARY KEY (trade_id, item_id))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS balances (user TEXT PRIMARY KEY, cents INTEGER)"
            )
        self.changed = asyncio.Event()

    def refund_once(
        self,
        trade_id: str,
        item_id: str,
        user: str,
        cents: int,
        *,
        trade_external_id: str | None = None,
        item_external_id: str | None = None,
    ) -> bool:
        """Credit ``user`` for the item unless it was refunded already; True if this call refunded it."""
        row = (trade_id, item_id, user, cents, trade_external_id, item_external_id)
        # One transaction: the refund row and the balance move together, or not at all.
        with self._db:
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO refunds VALUES (?, ?, ?, ?, ?, ?)", row
            ).rowcount
            if inserted:
                self._db.execute(
                    "INSERT INTO balances VALUES (?, ?) ON CONFLICT (user) DO UPDATE SET cents = cents + ?",
                    (user, cents, cents),
                )
        self.changed.set()
        return bool(inserted)

    def refunded(self) -> set[tuple[str, str]]:
        """Every refunded ``(trade id, item id)``, AssetPay's ids."""
        return {(t, i) for t, i in self._db.execute("SELECT trade_id, item_id FROM refunds")}

    def find(self, trade_ref: str, item_ref: str) -> tuple[str, str] | None:
        """The refund of the item ``item_ref`` of trade ``trade_ref``, each AssetPay's id or the externalId."""
        rows = self._db.execute(
            "SELECT trade_id, item_id, trade_external_id, item_external_id FROM refunds"
        )
        for trade_id, item_id, trade_external, item_external in rows:
            if _same(trade_ref, trade_id, trade_external) and _same(
                item_ref, item_id, item_external
            ):
                return trade_id, item_id
        return None

    def balance(self, user: str) -> int:
        row = self._db.execute("SELECT cents FROM balances WHERE user = ?", (user,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._db.close()


def _same(ref: str, assetpay_id: str, external_id: str | None) -> bool:
    """``ref`` names this row: AssetPay's id (UUIDs in any case and form) or the merchant's externalId."""
    if ref in (assetpay_id, external_id):
        return True
    try:
        return uuid.UUID(ref) == uuid.UUID(assetpay_id)
    except ValueError:
        return False


def on_reverted(ledger: RefundLedger) -> EventHandler:
    """The callback coroutine: refund every reverted item of a withdrawal, once.

    Each item carries its own status: an item is ``reverted`` while its trade may still be ``active``.
    """

    async def handle(event: CallbackEvent) -> None:
        trade = event.trade
        if trade.type != TradeType.WITHDRAW:
            return
        for item in event.items_with_status(TradeStatus.REVERTED):
            price = float((item.offer or {}).get("price", 0.0))
            ledger.refund_once(
                trade.id,
                item.id,
                trade.client_steam_id or "?",
                round(price * 100),
                trade_external_id=trade.external_id,
                item_external_id=item.external_id,
            )

    return handle


def build_app(api_secret: str, ledger: RefundLedger) -> web.Application:
    app = web.Application()
    app.router.add_post(CALLBACK_PATH, callback_handler(api_secret, on_reverted(ledger)))
    return app


@attrs.frozen
class RefundReport:
    """What happened to each item asked for.

    Attributes:
        refunded: the refunded items, as ``(trade id, item id)`` in AssetPay's ids.
        failed: the items whose cancel failed or whose outcome is unknown, with why (no refund is due).
        pending: the items whose cancel was accepted but whose refund had not arrived before the timeout.
    """

    refunded: frozenset[tuple[str, str]]
    failed: dict[str, str]
    pending: frozenset[str]

    @property
    def complete(self) -> bool:
        """Every item asked for was refunded."""
        return not self.failed and not self.pending


async def cancel_and_await_refunds(
    client: AssetPayClient,
    ledger: RefundLedger,
    trade_id: str,
    item_ids: Sequence[str],
    *,
    timeout: float = 900.0,
) -> RefundReport:
    """Cancel the items, then wait (up to ``timeout`` seconds) until each accepted one is refunded.

    ``trade_id`` and ``item_ids`` may be AssetPay's ids or your externalIds: the ledger matches either.
    """
    outcomes = await client.cancel_withdrawal_items([(trade_id, i) for i in item_ids])
    failed = {str(o.item_id): _why(o.error) for o in outcomes if not o.ok}
    waiting = {str(o.item_id) for o in outcomes if o.ok}
    refunded: set[tuple[str, str]] = set()
    try:
        async with asyncio.timeout(timeout):
            while True:
                ledger.changed.clear()
                for item_ref in list(waiting):
                    found = ledger.find(trade_id, item_ref)
                    if found is not None:
                        refunded.add(found)
                        waiting.discard(item_ref)
                if not waiting:
                    break
                await ledger.changed.wait()
    except TimeoutError:
        pass
    return RefundReport(frozenset(refunded), failed, frozenset(waiting))


def _why(error: BaseException | None) -> str:
    if isinstance(error, APIError) and error.key:
        return f"{error.key}: {error}"
    return f"{type(error).__name__}: {error}" if error is not None else "not attempted"


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
) -> RefundReport:
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
    parser.add_argument("trade_id", help="AssetPay's trade id or your externalId")
    parser.add_argument("item_ids", nargs="+", help="AssetPay's item ids or your externalIds")
    parser.add_argument("--port", type=int, default=8001, help="where AssetPay's callbacks arrive")
    parser.add_argument(
        "--db",
        type=Path,
        help="the ledger's SQLite file (default: a new file in a temporary directory)",
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for the refunds (default 900)"
    )
    args = parser.parse_args(argv)
    db: Path = args.db or Path(tempfile.mkdtemp(prefix="assetpay-refunds-")) / "refunds.sqlite3"
    print(f"ledger: {db}")
    ledger = RefundLedger(db)
    try:
        report = asyncio.run(
            main(
                args.trade_id,
                args.item_ids,
                token=os.environ["ASSETPAY_CLIENT_TOKEN"],
                api_secret=os.environ["ASSETPAY_API_SECRET"],
                ledger=ledger,
                tier=os.environ.get("ASSETPAY_TIER", "verified"),
                base_url=os.environ.get("ASSETPAY_BASE_URL"),
                port=args.port,
                timeout=args.timeout,
            )
        )
    finally:
        ledger.close()
    return print_report(report, len(args.item_ids))


def print_report(report: RefundReport, asked: int) -> int:
    """Print each item's outcome and a summary; the exit status (0 only when every item was refunded)."""
    for trade_id, item_id in sorted(report.refunded):
        print(f"refunded       {trade_id} {item_id}")
    for item_ref, why in sorted(report.failed.items()):
        print(f"NOT CANCELLED  {item_ref}: {why} (no refund is due)")
    for item_ref in sorted(report.pending):
        print(
            f"NO REFUND YET  {item_ref}: cancel accepted, no reverted callback before the timeout"
        )
    print(
        f"refunded {len(report.refunded)} of {asked} item(s); {len(report.failed)} not cancelled, "
        f"{len(report.pending)} still waiting"
    )
    return 0 if report.complete else 1


if __name__ == "__main__":
    sys.exit(cli())
