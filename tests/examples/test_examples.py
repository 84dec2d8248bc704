"""Each example in ``examples/`` run against the sandbox on virtual time, through its own main coroutine."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import aiohttp
import pytest

from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual
from tests.support.examples import free_port, load_example, now

HOUR = dt.timedelta(hours=1)


def test_batch_cancels_a_file_and_follows_every_item_to_reverted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = load_example("batch")

    async def scenario() -> dict[str, int]:
        async with Sandbox(seed=3, start=now()) as sb:
            user = sb.add_user(sb.add_merchant("verified"))
            old = sb.add_trade(user, items=3, age=HOUR)
            rust = sb.add_trade(user, game="rust", age=HOUR)
            source = tmp_path / "items.csv"
            source.write_text(
                "trade_id,item_id\n"
                + "".join(f"{old.id},{item.id}\n" for item in old.items)
                + f"{rust.id},{rust.items[0].id}\n"
            )
            summary: dict[str, int] = await batch.main(
                batch.read_pairs(source), token=sb.token(user), base_url=sb.base_url
            )
            assert [item.status for item in old.items] == ["reverted"] * 3
            assert sb.totals(user.merchant_id).rate_limited == 0
            return summary

    summary = run_virtual(scenario())
    assert summary == {
        "cancelled": 3,
        "failed: TRADE_NOT_CANCELLABLE": 1,
        "final: reverted": 3,
    }
    assert "3  final: reverted" in capsys.readouterr().out


def test_batch_says_what_it_waits_for_before_waiting_for_young_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A young item (as ``assetpay sandbox`` seeds them) is waited for, and the wait is announced first."""
    batch = load_example("batch")
    said: list[tuple[float, str]] = []

    async def scenario() -> dict[str, int]:
        loop = asyncio.get_running_loop()
        async with Sandbox(seed=3, start=now()) as sb:
            user = sb.add_user(sb.add_merchant("verified"))
            young = sb.add_trade(user, items=1, age=dt.timedelta(minutes=10))
            source = tmp_path / "items.csv"
            source.write_text(f"{young.id},{young.items[0].id}\n")
            started = loop.time()

            def watch() -> None:
                text = capsys.readouterr().out
                if text:
                    said.append((loop.time() - started, text))
                loop.call_later(1.0, watch)

            watch()
            summary: dict[str, int] = await batch.main(
                batch.read_pairs(source), token=sb.token(user), base_url=sb.base_url
            )
            return summary

    summary = run_virtual(scenario())
    assert summary == {"cancelled": 1, "final: reverted": 1}
    announced = next(at for at, text in said if "younger than 30 minutes" in text)
    assert announced < 5.0  # said at once, not after the ~20 minute wait
    assert any("waiting until each is 30 minutes old" in text for _, text in said)


def test_bot_cancels_only_stuck_cs2_items_round_after_round() -> None:
    bot = load_example("bot")

    async def scenario() -> None:
        async with Sandbox(seed=4, start=now()) as sb:
            user = sb.add_user(sb.add_merchant("verified"))
            stuck = sb.add_trade(user, items=2, age=HOUR)
            young = sb.add_trade(user, items=1, age=dt.timedelta(minutes=20))
            rust = sb.add_trade(user, game="rust", age=HOUR)
            done = sb.add_trade(user, age=HOUR, status="completed", item_status="completed")
            stats = await bot.main(
                token=sb.token(user),
                base_url=sb.base_url,
                stuck_after=dt.timedelta(minutes=45),
                interval=30 * 60,  # by the second round the young trade is 50 minutes old
                rounds=2,
                wall_clock=sb.clock.wall,
            )
            assert (stats.rounds, stats.cancelled, stats.refused) == (2, 3, 0)
            sb.advance(60)
            await sb.settle()
            assert [i.status for i in stuck.items + young.items] == ["reverted"] * 3
            assert rust.items[0].status == "active"
            assert done.items[0].status == "completed"
            # Stuck items were cancelled once each: the second round only saw the then-stuck young one.
            assert sum(r.group == "cancel-item" for r in sb.requests) == 3

    run_virtual(scenario())


def test_web_service_cancel_endpoint_and_callback_refund() -> None:
    web_service = load_example("web_service")

    async def scenario() -> None:
        async with Sandbox(seed=5, start=now()) as sb:
            merchant = sb.add_merchant("verified")
            user = sb.add_user(merchant)
            trade = sb.add_trade(user, items=2, age=HOUR)
            young = sb.add_trade(user, age=dt.timedelta(minutes=1))
            port = free_port()
            merchant.callback_url = f"http://127.0.0.1:{port}/assetpay/callback"
            config = web_service.Config(
                token=sb.token(user), api_secret=merchant.secret, base_url=sb.base_url
            )
            server = asyncio.create_task(web_service.main(config, port=port))
            await asyncio.sleep(0.1)  # listening
            try:
                async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                    answers = []
                    for trade_id, item_id in [
                        (trade.id, trade.items[0].id),
                        (trade.id, trade.items[1].id),
                        (young.id, young.items[0].id),
                        (trade.id, young.items[0].id),
                    ]:
                        path = f"/withdrawals/{trade_id}/items/{item_id}/cancel"
                        async with http.post(path) as response:
                            answers.append((response.status, await response.json()))
                assert [status for status, _ in answers] == [202, 202, 409, 404]
                assert answers[0][1]["status"] == "cancelled"
                assert answers[2][1]["error"] == "TRADE_CANCEL_TOO_SOON"
                assert answers[3][1]["error"] == "ITEM_NOT_FOUND"
                sb.advance(10)
                await sb.settle()
                assert [d.status for d in sb.deliveries] == [200, 200]  # verified and handled
            finally:
                server.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await server

    run_virtual(scenario())


def test_refund_recipe_refunds_each_item_exactly_once_despite_duplicate_callbacks() -> None:
    recipe = load_example("refund_recipe")

    async def scenario() -> None:
        ledger = recipe.RefundLedger()
        try:
            async with Sandbox(seed=6, start=now(), duplicate_callbacks=True) as sb:
                merchant = sb.add_merchant("verified")
                user = sb.add_user(merchant)
                trade = sb.add_trade(user, items=3, age=HOUR)
                port = free_port()
                merchant.callback_url = f"http://127.0.0.1:{port}{recipe.CALLBACK_PATH}"
                wanted = [item.id for item in trade.items[:2]]
                report = await recipe.main(
                    trade.id,
                    wanted,
                    token=sb.token(user),
                    api_secret=merchant.secret,
                    ledger=ledger,
                    base_url=sb.base_url,
                    port=port,
                    timeout=120,
                )
                refunded = report.refunded
                await sb.settle()
                assert report.complete
                assert refunded == {(trade.id, item_id) for item_id in wanted}
                # two reverts, each delivered twice with one delivery id, all answered 200
                assert [d.status for d in sb.deliveries] == [200] * 4
                assert ledger.refunded() == refunded
                cents = sum(round(item.price * 100) for item in trade.items[:2])
                assert ledger.balance(user.steam_id) == cents
                # a replay of the whole story (say, after a crash) refunds nothing more
                assert not ledger.refund_once(trade.id, wanted[0], user.steam_id, 999)
                assert ledger.balance(user.steam_id) == cents
        finally:
            ledger.close()

    run_virtual(scenario())
