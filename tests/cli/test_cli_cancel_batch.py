"""``assetpay cancel-batch`` in-process on virtual time: summary, results, exit codes, bad files, interruption."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from assetpay_async.cli import ExitCode, main_async
from tests.support.cli import FAST_QUOTA, World, on_world


def _csv(pairs: list[tuple[str, str]]) -> str:
    return "trade_id,item_id\n" + "".join(f"{t},{i}\n" for t, i in pairs)


def _all_items(world: World) -> list[tuple[str, str]]:
    trades = (world.eligible, world.young, world.rust, world.foreign)
    return [(t.id, item.id) for t in trades for item in t.items]


def test_a_mixed_batch_summarises_by_outcome_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, results = tmp_path / "items.csv", tmp_path / "results.jsonl"

    async def test(world: World) -> None:
        source.write_text(_csv(_all_items(world)))
        argv = ["cancel-batch", *FAST_QUOTA, "--results", str(results), str(source)]
        run = await world.run(argv, capsys)
        assert run.code == ExitCode.FAILED
        table = {
            tuple(cell.strip() for cell in line.strip("│┃ ").split("│")[:3])
            for line in run.out.splitlines()
            if line.startswith("│")
        }
        assert table == {
            ("cancelled", "-", "4"),
            ("failed", "TRADE_CANCEL_TOO_SOON", "2"),
            ("failed", "TRADE_NOT_CANCELLABLE", "1"),
            ("failed", "FORBIDDEN", "1"),
        }
        assert "8/8" in run.out  # the progress bar's final state
        assert "429s: 0" in run.out
        assert world.sandbox.totals(world.merchant).rate_limited == 0
        assert len(world.cancels()) == 8

    on_world(test)
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [x["line"] for x in lines] == list(range(2, 10))
    assert [x["outcome"] for x in lines] == ["cancelled"] * 4 + ["failed"] * 4
    assert lines[4]["error"]["key"] == "TRADE_CANCEL_TOO_SOON"
    assert lines[0]["result"]["status"] == "cancelled"


def test_all_cancelled_exits_0_and_results_go_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    async def test(world: World) -> None:
        pairs = [(world.eligible.id, item.id) for item in world.eligible.items]
        stdin = "\n".join(json.dumps({"trade_id": t, "item_id": i}) for t, i in pairs)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stdin", io.StringIO(stdin))
            run = await world.run(["cancel-batch", *FAST_QUOTA, "--results", "-", "-"], capsys)
        assert run.code == ExitCode.OK
        rows = [json.loads(line) for line in run.out.splitlines()]  # stdout holds JSON lines only
        assert [(r["trade_id"], r["item_id"], r["outcome"]) for r in rows] == [
            (t, i, "cancelled") for t, i in pairs
        ]
        assert "cancelled" in run.err  # the summary went to stderr

    on_world(test)


def test_a_malformed_file_names_the_line_and_sends_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        good = _all_items(world)[:3]
        source.write_text(_csv(good) + f"{good[0][0]};{good[0][1]}\n")
        run = await world.run(["cancel-batch", *FAST_QUOTA, str(source)], capsys)
        assert run.code == ExitCode.USAGE
        assert (
            f"{source}, line 5: expected two columns: trade_id,item_id; nothing was sent" in run.err
        )
        assert world.sandbox.requests == ()

    on_world(test)


def test_unreadable_input_and_unwritable_results_send_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        source.write_text(_csv(_all_items(world)))
        missing = await world.run(["cancel-batch", *FAST_QUOTA, str(tmp_path / "nope.csv")], capsys)
        assert missing.code == ExitCode.USAGE
        assert "cannot read" in missing.err
        results = str(tmp_path / "no-such-dir" / "r.jsonl")
        unwritable = await world.run(
            ["cancel-batch", *FAST_QUOTA, "--results", results, str(source)], capsys
        )
        assert unwritable.code == ExitCode.USAGE
        assert "cannot write" in unwritable.err
        workers = await world.run(
            ["cancel-batch", *FAST_QUOTA, "--workers", "0", str(source)], capsys
        )
        assert workers.code == ExitCode.USAGE
        assert world.sandbox.requests == ()

    on_world(test)


def test_interrupting_reports_what_was_done(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Ctrl-C cancels the command's task (asyncio.run does that): it reports, writes results and exits 130."""
    source, results = tmp_path / "items.csv", tmp_path / "results.jsonl"

    async def test(world: World) -> None:
        source.write_text(_csv([(world.eligible.id, item.id) for item in world.eligible.items]))
        # 2 cancels per 1 s with no margin: one request a second, so the interruption lands mid-batch. One
        # worker: the third pair is waiting for quota when the task is cancelled, so it was never sent.
        argv = [
            "cancel-batch",
            "--quota",
            "2/1",
            "--latency-margin",
            "0",
            "--workers",
            "1",
            "--results",
            str(results),
            str(source),
        ]
        task = asyncio.create_task(main_async(argv, environ=world.env()))
        await asyncio.sleep(
            1.5
        )  # virtual: grants at 0 s and 1 s are answered, the third waits for 2 s
        task.cancel()
        code = await task
        captured = capsys.readouterr()
        world.assert_no_secret(captured.out + captured.err)
        assert code == ExitCode.INTERRUPTED
        assert len(world.cancels()) == 2
        assert "Interrupted: 2 of 4 done (2 cancelled, 0 failed); 0 unfinished" in captured.out
        assert "; 2 not attempted." in captured.out
        rows = [json.loads(line) for line in results.read_text().splitlines()]
        assert [r["outcome"] for r in rows] == [
            "cancelled",
            "cancelled",
            "not-attempted",
            "not-attempted",
        ]
        assert (
            world.sandbox.requests[-1].status == 200
        )  # the session closed normally, nothing half-sent

    on_world(test)


def test_whole_trades_sends_one_cancel_for_a_fully_listed_trade(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        source.write_text(_csv(_all_items(world)))
        run = await world.run(["cancel-batch", *FAST_QUOTA, "--whole-trades", str(source)], capsys)
        assert run.code == ExitCode.FAILED  # the young, Rust and foreign pairs still fail
        paths = [r.path for r in world.cancels()]
        # eligible (4 items) and young (2) as one request each; the one-item trades item by item.
        assert sorted(p for p in paths if "/items/" not in p) == sorted(
            f"/client/trading/withdraw/{t.id}/cancel" for t in (world.eligible, world.young)
        )
        assert len(paths) == 4
        assert "cancelled" in run.out

    on_world(test)
