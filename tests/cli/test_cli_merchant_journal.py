"""``cancel-batch --journal`` with ``steam_id,trade_url`` columns: one journal per end user, derived from the
given path, every one checked before anything is sent; a run killed with SIGKILL resumes with nothing decided
sent again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from assetpay_async._quota import RouteGroup
from assetpay_async.cli import ExitCode
from assetpay_async.cli._per_user import journal_path
from assetpay_async.sandbox import SandboxTrade, User
from tests.cli.test_cli_processes import CLI, _wait_for, sandbox_in_thread
from tests.support.cli import FAST_QUOTA, World, on_world

HEADER = "trade_id,item_id,steam_id,trade_url\n"


def _rows(trade: SandboxTrade, user: User) -> str:
    return "".join(f"{trade.id},{i.id},{user.steam_id},{user.trade_url}\n" for i in trade.items)


def _merchant_env(world: World, *, merchant_id: bool = True) -> dict[str, str]:
    env = {
        "ASSETPAY_CLIENT_TOKEN": "",
        "ASSETPAY_API_KEY": world.merchant.api_key,
        "ASSETPAY_API_SECRET": world.merchant.secret,
    }
    if merchant_id:
        env["ASSETPAY_MERCHANT_ID"] = world.merchant.id
    return env


def _states(path: Path) -> dict[str, str]:
    with closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT path, state FROM pairs").fetchall())


def _path(trade_id: str, item_id: str) -> str:
    return f"/client/trading/withdraw/{trade_id}/items/{item_id}/cancel"


def test_each_user_gets_a_journal_of_its_own_named_without_their_details(tmp_path: Path) -> None:
    base = str(tmp_path / "batch.journal")
    url = "https://steamcommunity.com/tradeoffer/new/?partner=39734314&token=Ab3_xY-9"
    one = journal_path(base, "76561198000000042", url)
    assert one == journal_path(base, "76561198000000042", url)  # the same command finds it again
    assert one != journal_path(base, "76561198000000043", url)
    assert one.startswith(base + ".user-")
    assert "76561198000000042" not in one
    assert "Ab3_xY-9" not in one
    assert journal_path(base, None, None) == base  # the command's own client


def test_a_journal_needs_the_merchant_id_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        source.write_text(HEADER + _rows(world.eligible, world.user))
        argv = ["cancel-batch", *FAST_QUOTA, "--journal", str(tmp_path / "j"), str(source)]
        run = await world.run(argv, capsys, **_merchant_env(world, merchant_id=False))
        assert run.code == ExitCode.USAGE
        assert "--merchant-id" in run.err
        assert world.sandbox.requests == ()

    on_world(test)


def test_one_user_s_journal_that_does_not_fit_stops_every_user_with_nothing_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, base = tmp_path / "items.csv", tmp_path / "batch.journal"

    async def test(world: World) -> None:
        other = world.sandbox.users[world.foreign.user_id]
        argv = ["cancel-batch", *FAST_QUOTA, "--journal", str(base), str(source)]
        source.write_text(HEADER + _rows(world.foreign, other))
        run = await world.run(argv, capsys, **_merchant_env(world))
        assert run.code == ExitCode.OK, run.err
        assert os.path.exists(journal_path(str(base), other.steam_id, other.trade_url))  # noqa: ASYNC240
        sent = len(world.cancels())
        # Now the other user's lines name other pairs than its journal holds (an edited file).
        later = world.sandbox.add_trade(other, items=1, age=3600.0)
        source.write_text(HEADER + _rows(world.eligible, world.user) + _rows(later, other))
        run = await world.run(argv, capsys, **_merchant_env(world))
        assert run.code == ExitCode.USAGE
        assert "nothing was sent" in run.err
        assert len(world.cancels()) == sent  # not even the first user's pairs

    on_world(test)


def test_a_merchant_batch_killed_with_sigkill_resumes_from_its_users_journals(
    tmp_path: Path,
) -> None:
    source, base, results = tmp_path / "items.csv", tmp_path / "batch.journal", tmp_path / "r.jsonl"
    with sandbox_in_thread() as world:
        sandbox = world.sandbox
        users = [sandbox.add_user(world.merchant) for _ in range(3)]
        trades = [sandbox.add_trade(user, items=3, age=3600.0) for user in users]
        pairs = [(t.id, i.id) for t in trades for i in t.items]
        source.write_text(HEADER + "".join(_rows(t, u) for t, u in zip(trades, users, strict=True)))
        sandbox.faults.add("latency", group="cancel-item", delay=0.3)
        env = os.environ | {
            "ASSETPAY_API_KEY": world.merchant.api_key,
            "ASSETPAY_API_SECRET": world.merchant.secret,
            "ASSETPAY_MERCHANT_ID": world.merchant.id,
            "COLUMNS": "120",
        }
        env.pop("ASSETPAY_CLIENT_TOKEN", None)
        common = ["--latency-margin", "0", "--base-url", sandbox.base_url, "--journal", str(base)]

        def cancels() -> list[tuple[str, int]]:
            return [
                (r.path, r.status) for r in sandbox.requests if r.group is RouteGroup.CANCEL_ITEM
            ]

        first_argv = [*CLI, "cancel-batch", "--quota", "5/1", *common, "--workers", "1"]
        with subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*first_argv, str(source)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as proc:
            _wait_for(lambda: sum(status == 200 for _, status in cancels()) >= 4)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=20)
        assert proc.returncode == -signal.SIGKILL
        killed_at = len(cancels())
        journals = [Path(journal_path(str(base), u.steam_id, u.trade_url)) for u in users]
        before: dict[str, str] = {}
        for one in journals:
            before |= _states(one)
        decided = {p for p, state in before.items() if state in ("cancelled", "failed")}
        maybe_sent = {p for p, state in before.items() if state == "sent"}
        assert len(decided) >= 3
        assert len(decided) < len(pairs)  # it really died mid-batch

        second_argv = [*CLI, "cancel-batch", "--quota", "60/1", *common, "--results", str(results)]
        second = subprocess.run(  # noqa: S603 - our own interpreter and module
            [*second_argv, str(source)],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        requests = cancels()

    for secret in (world.merchant.api_key, world.merchant.secret):
        assert secret not in second.stdout + second.stderr
    assert second.returncode == ExitCode.OK, second.stderr
    sent_again = {p for p, _ in requests[killed_at:]}
    assert not decided & sent_again  # none decided in the first run was sent again
    accepted = Counter(p for p, status in requests if status == 200)
    assert set(accepted) == {_path(t, i) for t, i in pairs}
    for path, times in accepted.items():
        assert times == 1 or (times == 2 and path in maybe_sent), path
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["trade_id"], r["item_id"]) for r in rows] == pairs
    for row in rows:
        path = _path(str(row["trade_id"]), str(row["item_id"]))
        assert row["outcome"] == "cancelled", row
        assert row["detail"] == ("from-journal" if path in decided else None)
    assert "not sent again" in second.stdout
