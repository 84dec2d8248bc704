"""What ``cancel-batch`` writes, when, and what a first and a second signal do (docs/cli.md, "Output and signals").

The signal tests run the command as a real process against a sandbox served from another thread, on the wall
clock, paced slowly (one cancel every half second) so that the signals land mid-batch.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assetpay_async.cli import ExitCode, main_async
from tests.cli.test_cli_processes import sandbox_in_thread
from tests.support.cli import FAST_QUOTA, World, on_world

CLI = [sys.executable, "-m", "assetpay_async.cli"]
PRECIOUS = '{"kept": "a row of an earlier run"}\n'


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _rows(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _start(world: World, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path, Path]:
    source, results = tmp_path / "items.csv", tmp_path / "results.jsonl"
    pairs = [(t.id, item.id) for t in (world.eligible, world.young) for item in t.items]
    source.write_text("trade_id,item_id\n" + "".join(f"{t},{i}\n" for t, i in pairs))
    results.write_text(PRECIOUS)
    argv = [
        *CLI,
        "cancel-batch",
        "--quota",
        "2/1",
        "--latency-margin",
        "0",
        "--workers",
        "1",
        "--base-url",
        world.sandbox.base_url,
        "--results",
        str(results),
        *extra,
        str(source),
    ]
    env = os.environ | {"ASSETPAY_CLIENT_TOKEN": world.token, "COLUMNS": "160"}
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, results, Path(f"{results}.partial")


def _accepted(world: World) -> int:
    return sum(r.status == 200 for r in world.cancels())


def test_rows_are_on_disk_as_pairs_end_and_the_file_is_whole_at_the_end(tmp_path: Path) -> None:
    with sandbox_in_thread() as world:
        proc, results, partial = _start(world, tmp_path)
        with proc:
            _wait_for(lambda: _accepted(world) >= 2)
            _wait_for(lambda: partial.exists() and len(_rows(partial.read_text())) >= 3)
            during = _rows(partial.read_text())
            assert results.read_text() == PRECIOUS  # FILE is replaced only at the end
            out, err = proc.communicate(timeout=30)
    world.assert_no_secret(out + err)
    assert during[0] == {"assetpay_results": 1, "source": str(tmp_path / "items.csv"), "pairs": 6}
    assert all(row["outcome"] == "cancelled" for row in during[1:])
    assert proc.returncode == ExitCode.FAILED  # the young items are refused
    assert not partial.exists()
    final = _rows(results.read_text())
    assert [row["line"] for row in final] == list(range(2, 8))
    assert [row["outcome"] for row in final] == ["cancelled"] * 4 + ["failed"] * 2


def test_the_first_signal_says_what_was_accepted_and_stops_cleanly(tmp_path: Path) -> None:
    with sandbox_in_thread() as world:
        proc, results, partial = _start(world, tmp_path)
        with proc:
            _wait_for(lambda: _accepted(world) >= 2)
            proc.send_signal(signal.SIGTERM)  # SIGTERM and SIGINT alike
            out, err = proc.communicate(timeout=30)
        accepted = _accepted(world)
    world.assert_no_secret(out + err)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    said = next(line for line in err.splitlines() if "cancels accepted so far" in line)
    assert int(said.split("interrupted: ")[1].split()[0]) in (accepted - 1, accepted)
    assert "Interrupted: " in out  # the summary
    rows = _rows(results.read_text())
    assert len(rows) == 6
    kinds = [row["outcome"] for row in rows]
    assert kinds.count("cancelled") <= accepted <= kinds.count("cancelled") + kinds.count("unknown")
    assert not partial.exists()


def test_a_second_signal_stops_at_once_and_keeps_every_row_written(tmp_path: Path) -> None:
    with sandbox_in_thread() as world:
        proc, results, partial = _start(world, tmp_path)
        with proc:
            _wait_for(lambda: _accepted(world) >= 2)
            # From here on every cancel hangs: one is on the wire when the signals come.
            world.sandbox.faults.add("latency", group="cancel-item", delay=30.0)
            time.sleep(1.0)  # the cancel already answered (if any) is written; the next one hangs
            accepted = _accepted(world)
            _wait_for(
                lambda: (
                    sum(r.get("outcome") == "cancelled" for r in _rows(partial.read_text()))
                    == accepted
                )
            )
            proc.send_signal(signal.SIGINT)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
    world.assert_no_secret(out + err)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    # Never truncated: FILE is the earlier run's, or this run's whole (if the first signal's stop was quicker
    # than the second signal); every accepted cancel is on disk either way.
    text = results.read_text()
    kept = _rows(partial.read_text()) if partial.exists() else _rows(text)
    assert text == PRECIOUS or len(_rows(text)) == 6
    assert sum(row.get("outcome") == "cancelled" for row in kept) == accepted
    if partial.exists():
        assert f"stopped at once: {accepted} cancels accepted" in err
        assert f"are in {partial}" in err


def test_without_a_terminal_a_plain_progress_line_comes_at_each_interval(tmp_path: Path) -> None:
    with sandbox_in_thread() as world:
        proc, _, _ = _start(world, tmp_path, "--progress-interval", "0.5")
        with proc:
            out, err = proc.communicate(timeout=60)
    world.assert_no_secret(out + err)
    progress = [line for line in err.splitlines() if line.startswith("progress: ")]
    assert len(progress) >= 3, err  # six pairs at two a second, a line every half second
    for line in progress:
        assert " pairs: " in line
        assert " accepted, " in line
        assert " failed, " in line
        assert " unknown, " in line
        assert "/s, ETA " in line
    last = next(line for line in out.splitlines() if line.startswith("6/6 pairs: "))
    assert last.startswith("6/6 pairs: 4 accepted, 2 failed, 0 unknown, ")


def test_duplicates_are_counted_once_in_progress_and_summary(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        pairs = [(world.eligible.id, item.id) for item in world.eligible.items]
        lines = [*pairs, pairs[0], pairs[1]]  # six lines, four pairs
        source.write_text("".join(f"{t},{i}\n" for t, i in lines))
        run = await world.run(["cancel-batch", *FAST_QUOTA, str(source)], capsys)
        assert run.code == ExitCode.OK
        assert "4 pairs (2 duplicate lines counted once)" in run.out
        assert "4/4 pairs: 4 accepted, 0 failed, 0 unknown, " in run.out
        assert "6/6" not in run.out + run.err

    on_world(test)


def test_a_dead_endpoint_reports_counts_that_add_up_and_a_sane_rate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "items.csv"

    async def test(world: World) -> None:
        source.write_text(
            "".join(
                f"{world.eligible.id},{i:08x}-0000-4000-8000-000000000000\n" for i in range(100)
            )
        )
        argv = [
            "cancel-batch",
            *FAST_QUOTA,
            "--base-url",
            "http://127.0.0.1:1",
            "--max-retries",
            "0",
            "--max-transport-failures",
            "20",
            str(source),
        ]
        run = await world.run(argv, capsys)
        assert run.code == ExitCode.FAILED
        line = next(x for x in run.out.splitlines() if x.endswith(" 0") and "/100 pairs: " in x)
        answered = int(line.split("/")[0])
        failed = int(line.split(" failed")[0].rsplit(" ", 1)[1])
        not_attempted = int(line.split(" not attempted")[0].rsplit(" ", 1)[1])
        rate = float(line.split("/s")[0].rsplit(" ", 1)[1])
        assert answered == failed
        assert answered + not_attempted == 100
        assert f"; {not_attempted} pairs not attempted." in run.out
        assert f"{answered} pairs had been sent before the stop took effect" in run.out
        assert rate <= answered  # over at least a second, never thousands a second
        assert "100/100" not in run.out + run.err

    on_world(test)


def test_timeout_and_max_retries_reach_the_session(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that accepts and never answers: --timeout bounds each attempt, --max-retries their number."""

    async def scenario() -> tuple[int, int, str]:
        connections = 0
        held: list[asyncio.StreamWriter] = []

        async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            held.append(writer)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        env = {"ASSETPAY_CLIENT_TOKEN": "opaque-token-for-a-silent-server"}
        argv = [
            "cancel",
            "--tier",
            "verified",
            "--merchant-id",
            "m-1",
            "--base-url",
            f"http://127.0.0.1:{port}",
            "--timeout",
            "0.3",
            "--max-retries",
            "1",
            "6f1c0b9e-6a4e-4b59-9a1e-2f3f8c1d2e3f",
            "0d9b3c4a-8e21-4f6b-a1b2-c3d4e5f60718",
        ]
        code = await main_async(argv, environ=env)
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
        return code, connections, capsys.readouterr().err

    code, connections, err = asyncio.run(scenario())
    assert code == ExitCode.FAILED
    assert connections == 2  # the first attempt and one retry
    assert err.startswith("outcome unknown: ")
    assert "stopping the batch" not in err  # a single cancel is no batch


def test_a_single_cancel_with_a_refused_token_does_not_talk_of_a_batch() -> None:
    with sandbox_in_thread() as world:
        issued = world.sandbox.clock.wall() - dt.timedelta(days=2)
        expired = world.sandbox.token(world.user, issued_at=issued)
        argv = [*CLI, "cancel", "--tier", "verified", "--base-url", world.sandbox.base_url]
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            [*argv, world.eligible.id, world.eligible.items[0].id],
            env=os.environ | {"ASSETPAY_CLIENT_TOKEN": expired},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert expired.split(".")[2] not in done.stdout + done.stderr
    assert done.returncode == ExitCode.FAILED
    assert "AuthenticationError" in done.stderr
    assert "batch" not in done.stdout + done.stderr
