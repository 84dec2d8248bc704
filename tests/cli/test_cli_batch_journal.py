"""``assetpay cancel-batch``: --journal resumes, early stops, duplicates counted once, header-only and wrong headers."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from assetpay_async.cli import ExitCode, main_async
from tests.support.cli import FAST_QUOTA, World, on_world


def _csv(pairs: list[tuple[str, str]]) -> str:
    return "trade_id,item_id\n" + "".join(f"{t},{i}\n" for t, i in pairs)


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _table(out: str) -> set[tuple[str, ...]]:
    return {
        tuple(cell.strip() for cell in line.strip("│┃ ").split("│")[:3])
        for line in out.splitlines()
        if line.startswith("│")
    }


def test_an_interrupted_batch_resumes_from_its_journal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, journal = tmp_path / "items.csv", tmp_path / "batch.journal"
    results = tmp_path / "results.jsonl"

    async def test(world: World) -> None:
        pairs = [(world.eligible.id, i.id) for i in world.eligible.items]
        source.write_text(_csv(pairs))
        slow = ["--quota", "2/1", "--latency-margin", "0", "--workers", "1"]
        argv = ["cancel-batch", *slow, "--journal", str(journal), str(source)]
        task = asyncio.create_task(main_async(argv, environ=world.env()))
        await asyncio.sleep(1.5)  # two answered, the third waits for quota
        task.cancel()
        assert await task == ExitCode.INTERRUPTED
        assert "run the same command again to resume" in capsys.readouterr().out
        first = Counter(r.path for r in world.cancels())
        assert sum(first.values()) == 2
        capsys.readouterr()

        argv = [
            "cancel-batch",
            *FAST_QUOTA,
            "--journal",
            str(journal),
            "--results",
            str(results),
            str(source),
        ]
        run = await world.run(argv, capsys)
        assert run.code == ExitCode.OK
        again = Counter(r.path for r in world.cancels()) - first
        assert set(again).isdisjoint(first)  # nothing decided in the first run was sent again
        assert sum(again.values()) == 2
        assert _table(run.out) == {("cancelled", "earlier run", "2"), ("cancelled", "-", "2")}
        assert (
            f"Resumed from {journal}: 2 pairs decided by an earlier run were not sent again."
            in run.out
        )

    on_world(test)
    rows = _rows(results)
    assert [r["outcome"] for r in rows] == ["cancelled"] * 4
    assert [r["detail"] for r in rows] == ["from-journal"] * 2 + [None] * 2
    assert [r["line"] for r in rows] == [2, 3, 4, 5]


def test_a_journal_of_another_batch_is_refused_and_nothing_is_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, other, journal = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "j"

    async def test(world: World) -> None:
        source.write_text(_csv([(world.eligible.id, world.eligible.items[0].id)]))
        other.write_text(_csv([(world.eligible.id, world.eligible.items[1].id)]))
        first = await world.run(
            ["cancel-batch", *FAST_QUOTA, "--journal", str(journal), str(source)], capsys
        )
        assert first.code == ExitCode.OK
        run = await world.run(
            ["cancel-batch", *FAST_QUOTA, "--journal", str(journal), str(other)], capsys
        )
        assert run.code == ExitCode.USAGE
        assert "was written for other pairs" in run.err
        assert run.err.rstrip().endswith("nothing was sent")
        assert len(world.cancels()) == 1

    on_world(test)


def test_an_expired_token_stops_the_batch_with_the_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, results = tmp_path / "items.csv", tmp_path / "results.jsonl"

    async def test(world: World) -> None:
        trades = [world.sandbox.add_trade(world.user, items=5, age=dt.timedelta(hours=1))]
        trades += [world.sandbox.add_trade(world.user, items=5, age=dt.timedelta(hours=1))]
        pairs = [(t.id, i.id) for t in trades for i in t.items]
        source.write_text(_csv(pairs))
        expired = world.sandbox.token(
            world.user, issued_at=world.sandbox.clock.wall() - dt.timedelta(days=2)
        )
        argv = ["cancel-batch", *FAST_QUOTA, "--workers", "1", "--results", str(results)]
        code = await main_async(
            [*argv, str(source)], environ=world.env(ASSETPAY_CLIENT_TOKEN=expired)
        )
        out = capsys.readouterr().out
        assert expired not in out
        assert code == ExitCode.FAILED
        assert len(world.cancels()) == 1
        assert "Stopped early: AssetPay refused the client token" in out
        assert "; 9 pairs not attempted." in out
        assert ("not-attempted", "batch stopped", "9") in _table(out)

    on_world(test)
    rows = _rows(results)
    assert rows[0]["outcome"] == "failed"
    assert {r["detail"] for r in rows[1:]} == {"batch-stopped"}
    assert {r["error"]["type"] for r in rows[1:]} == {"BatchStoppedError"}  # type: ignore[index]


def test_transport_failures_in_a_row_stop_the_batch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, closed_port: int
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        pairs = [(world.eligible.id, i.id) for i in world.eligible.items]
        source.write_text(_csv(pairs))
        argv = [
            "cancel-batch",
            *FAST_QUOTA,
            "--workers",
            "1",
            "--max-transport-failures",
            "2",
            "--base-url",
            f"http://127.0.0.1:{closed_port}",
            str(source),
        ]
        run = await world.run(argv, capsys)
        assert run.code == ExitCode.FAILED
        assert "Stopped early: 2 pairs in a row failed with nothing getting through" in run.out
        assert ("not-attempted", "batch stopped", "2") in _table(run.out)
        zero = ["cancel-batch", *FAST_QUOTA, "--max-transport-failures", "0", str(source)]
        bad = await world.run(zero, capsys)
        assert bad.code == ExitCode.USAGE
        assert "--max-transport-failures must be at least 1" in bad.err

    on_world(test)


def test_a_duplicated_pair_is_cancelled_once_and_counted_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        pairs = [(world.eligible.id, i.id) for i in world.eligible.items[:2]]
        source.write_text(_csv([*pairs, pairs[0]]))
        run = await world.run(["cancel-batch", *FAST_QUOTA, str(source)], capsys)
        assert run.code == ExitCode.OK
        assert len(world.cancels()) == 2
        assert _table(run.out) == {("cancelled", "-", "2")}
        assert "2 pairs (1 duplicate line counted once)" in run.out

    on_world(test)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trade_id,item_id\n", "line 1: no trade_id,item_id pairs in the file (a header only)"),
        (
            "a,b\n6f1c0b9e-6a4e-4b59-9a1e-2f3f8c1d2e3f,0d9b3c4a-8e21-4f6b-a1b2-c3d4e5f60718\n",
            "line 1: the header 'a,b' does not name the columns trade_id and item_id",
        ),
    ],
)
def test_header_only_and_wrong_header_files_send_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        source.write_text(text)
        run = await world.run(["cancel-batch", *FAST_QUOTA, str(source)], capsys)
        assert run.code == ExitCode.USAGE
        assert message in run.err
        assert "not a UUID" not in run.err
        assert world.sandbox.requests == ()

    on_world(test)


def test_a_damaged_journal_is_one_line_and_exit_2_with_nothing_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue 19.7: a damaged record is a JournalError (exit 2), not a traceback of json or sqlite3."""
    source, journal = tmp_path / "items.csv", tmp_path / "batch.journal"

    async def test(world: World) -> None:
        pairs = [(world.eligible.id, i.id) for i in world.eligible.items[:2]]
        source.write_text(_csv(pairs))
        argv = ["cancel-batch", *FAST_QUOTA, "--journal", str(journal), str(source)]
        first = await world.run(argv, capsys)
        assert first.code == ExitCode.OK
        with closing(sqlite3.connect(journal)) as db, db:
            db.execute("UPDATE pairs SET record = '{truncated'")
        sent = len(world.sandbox.requests)
        run = await world.run(argv, capsys)
        assert run.code == ExitCode.USAGE
        lines = [line for line in run.err.splitlines() if line.strip()]
        assert len(lines) == 1, run.err
        assert "is damaged" in lines[0]
        assert "Traceback" not in run.err
        assert len(world.sandbox.requests) == sent

    on_world(test)
