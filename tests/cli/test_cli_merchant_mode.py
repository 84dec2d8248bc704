"""``assetpay cancel-batch`` in merchant mode: a CSV naming each pair's end user, tokens issued per user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assetpay_async.cli import ExitCode, main_async
from assetpay_async.sandbox import SandboxTrade, User
from tests.support.cli import FAST_QUOTA, World, on_world


def _rows(trade: SandboxTrade, user: User) -> str:
    return "".join(f"{trade.id},{i.id},{user.steam_id},{user.trade_url}\n" for i in trade.items)


def _merchant_env(world: World) -> dict[str, str]:
    return {
        "ASSETPAY_CLIENT_TOKEN": "",  # no token: the API key and secret issue each user's
        "ASSETPAY_API_KEY": world.merchant.api_key,
        "ASSETPAY_API_SECRET": world.merchant.secret,
    }


def test_a_csv_with_steam_id_and_trade_url_cancels_each_pair_for_its_user(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, results = tmp_path / "items.csv", tmp_path / "results.jsonl"

    async def test(world: World) -> None:
        other = world.sandbox.users[world.foreign.user_id]  # the foreign trade's own user
        text = "trade_id,item_id,steam_id,trade_url\n"
        text += _rows(world.eligible, world.user) + _rows(world.foreign, other)
        source.write_text(text)
        argv = ["cancel-batch", *FAST_QUOTA, "--results", str(results), str(source)]
        run = await world.run(argv, capsys, **_merchant_env(world))
        assert run.code == ExitCode.OK, run.err
        assert "5/5" in run.out
        for secret in (world.merchant.api_key, world.merchant.secret):
            assert secret not in run.out + run.err
        auth = [r for r in world.sandbox.requests if r.path == "/auth/authenticate-client"]
        assert len(auth) == 1  # it named the merchant; the second user's token was minted locally
        assert len(world.cancels()) == 5

    on_world(test)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["line"] for r in rows] == list(range(2, 7))
    assert [r["outcome"] for r in rows] == ["cancelled"] * 5


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("{t},{i},123,{url}", "steam_id"),
        ("{t},{i},{steam},https://example.com/", "trade_url"),
        ("{t},{i},{steam}", "columns"),
    ],
)
def test_a_bad_user_column_names_the_line_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, row: str, reason: str
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        item = world.eligible.items[0]
        line = row.format(
            t=world.eligible.id, i=item.id, steam=world.user.steam_id, url=world.user.trade_url
        )
        source.write_text("trade_id,item_id,steam_id,trade_url\n" + line + "\n")
        run = await world.run(
            ["cancel-batch", *FAST_QUOTA, str(source)], capsys, **_merchant_env(world)
        )
        assert run.code == ExitCode.USAGE
        assert "line 2" in run.err
        assert reason in run.err
        assert world.sandbox.requests == ()

    on_world(test)


def test_user_columns_without_an_api_key_are_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        source.write_text(
            "trade_id,item_id,steam_id,trade_url\n" + _rows(world.eligible, world.user)
        )
        run = await world.run(["cancel-batch", *FAST_QUOTA, str(source)], capsys)
        assert run.code == ExitCode.USAGE
        assert "API key" in run.err
        assert world.sandbox.requests == ()

    on_world(test)


async def test_the_api_key_and_secret_never_show_in_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    key, secret = "ap_live_0123456789abcdef", "sk_secret_0123456789abcdef"
    code = await main_async(
        ["cancel-batch", "--api-key", key, f"--api-secret={secret}", "--tier", "nope", "f.csv"],
        environ={},
    )
    captured = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert key not in captured.err
    assert secret not in captured.err


async def test_an_api_secret_without_a_key_is_refused_without_showing_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "items.csv"
    source.write_text("trade_id,item_id\n")
    code = await main_async(
        ["cancel-batch", "--tier", "verified", str(source)],
        environ={"ASSETPAY_API_SECRET": "sk_secret_0123456789abcdef"},
    )
    captured = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert "API key" in captured.err
    assert "sk_secret_0123456789abcdef" not in captured.out + captured.err
