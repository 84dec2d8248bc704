"""examples/refund_recipe.py beyond the happy path: externalIds, a cancel that fails, where the ledger goes."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from pathlib import Path

import pytest

from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual
from tests.support.examples import free_port, load_example, now

HOUR = dt.timedelta(hours=1)


def test_refs_given_as_external_ids_are_matched_and_refunded() -> None:
    # Issue 22: given externalIds, the recipe compared them with AssetPay's ids and waited forever.
    recipe = load_example("refund_recipe")

    async def scenario() -> None:
        ledger = recipe.RefundLedger()
        try:
            async with Sandbox(seed=11, start=now()) as sb:
                merchant = sb.add_merchant("verified")
                user = sb.add_user(merchant)
                trade = sb.add_trade(
                    user, items=3, age=HOUR, external_id="order-7", item_external_ids=True
                )
                port = free_port()
                merchant.callback_url = f"http://127.0.0.1:{port}{recipe.CALLBACK_PATH}"
                wanted = trade.items[:2]
                report = await recipe.main(
                    "order-7",
                    [item.external_id for item in wanted],
                    token=sb.token(user),
                    api_secret=merchant.secret,
                    ledger=ledger,
                    base_url=sb.base_url,
                    port=port,
                    timeout=120,
                )
                await sb.settle()
                assert report.complete
                assert report.refunded == {(trade.id, item.id) for item in wanted}
                assert ledger.balance(user.steam_id) == sum(round(i.price * 100) for i in wanted)
        finally:
            ledger.close()

    run_virtual(scenario())


async def test_a_too_soon_item_is_reported_and_the_exit_status_is_1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Issue 22: a too-soon item printed "refunded 0 item(s)" and exited 0; the ledger landed in the cwd.
    recipe = load_example("refund_recipe")
    work, scratch = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    scratch.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    async with Sandbox(seed=12) as sb:  # a real loop: the recipe runs its own in a thread
        young = _too_young_item(sb, monkeypatch)
        argv = ["--port", str(free_port()), "--timeout", "5", *young]
        status = await asyncio.to_thread(recipe.cli, argv)

    out = capsys.readouterr().out
    assert status == 1
    assert f"NOT CANCELLED  {young[1]}: TRADE_CANCEL_TOO_SOON" in out
    assert "refunded 0 of 1 item(s); 1 not cancelled, 0 still waiting" in out
    assert _names(work) == []  # nothing written where it was run
    [ledger] = scratch.glob("assetpay-refunds-*/refunds.sqlite3")
    assert f"ledger: {ledger}" in out


async def test_the_ledger_goes_where_db_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = load_example("refund_recipe")
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "ledgers" / "mine.sqlite3"
    db.parent.mkdir()
    async with Sandbox(seed=13) as sb:
        argv = ["--db", str(db), "--port", str(free_port()), *_too_young_item(sb, monkeypatch)]
        status = await asyncio.to_thread(recipe.cli, argv)

    assert status == 1
    assert db.exists()
    assert _names(tmp_path) == ["ledgers"]
    assert f"ledger: {db}" in capsys.readouterr().out


def _too_young_item(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A minute-old trade's (trade id, item id), and the recipe's environment pointing at the sandbox."""
    merchant = sb.add_merchant("verified")
    user = sb.add_user(merchant)
    young = sb.add_trade(user, age=dt.timedelta(minutes=1))
    monkeypatch.setenv("ASSETPAY_CLIENT_TOKEN", sb.token(user))
    monkeypatch.setenv("ASSETPAY_API_SECRET", merchant.secret)
    monkeypatch.setenv("ASSETPAY_BASE_URL", sb.base_url)
    return young.id, young.items[0].id


def _names(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())
