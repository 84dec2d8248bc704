"""The command as a real process: ``assetpay sandbox`` serving until Ctrl-C, and Ctrl-C during ``cancel-batch``.

These run on the wall clock (another process cannot share a virtual clock), kept to about a second each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assetpay_async.cli import ExitCode, main
from assetpay_async.sandbox import Sandbox
from tests.support.cli import World, build_world

CLI = [sys.executable, "-m", "assetpay_async.cli"]


@contextlib.contextmanager
def sandbox_in_thread() -> Iterator[World]:
    """A sandbox world served by an event loop in another thread, so a child process can talk to it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sandbox", daemon=True)
    thread.start()

    async def start() -> World:
        sandbox = Sandbox(seed=1)
        await sandbox.start()
        return build_world(sandbox)

    world = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield world
    finally:
        asyncio.run_coroutine_threadsafe(world.sandbox.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _wait_for(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_ctrl_c_stops_cancel_batch_cleanly_and_reports(tmp_path: Path) -> None:
    source, results = tmp_path / "items.csv", tmp_path / "results.jsonl"
    with sandbox_in_thread() as world:
        pairs = [(world.eligible.id, item.id) for item in world.eligible.items]
        source.write_text("".join(f"{t},{i}\n" for t, i in pairs))
        argv = [
            *CLI,
            "cancel-batch",
            "--quota",
            "2/1",  # one cancel a second: Ctrl-C lands mid-batch
            "--latency-margin",
            "0",
            "--workers",
            "1",
            "--base-url",
            world.sandbox.base_url,
            "--results",
            str(results),
            str(source),
        ]
        env = os.environ | {"ASSETPAY_CLIENT_TOKEN": world.token, "COLUMNS": "120"}
        with subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            _wait_for(lambda: len(world.cancels()) >= 1)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        answered = sum(r.status == 200 for r in world.cancels())
    world.assert_no_secret(out + err)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "Interrupted: " in out
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    kinds = [r["outcome"] for r in rows]
    assert len(rows) == 4
    assert kinds.count("cancelled") <= answered <= kinds.count("cancelled") + kinds.count("unknown")
    assert kinds.count("not-attempted") >= 2
    assert f"{kinds.count('not-attempted')} not attempted." in out


def test_sandbox_command_prints_url_and_tokens_serves_and_stops_on_ctrl_c(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*CLI, "sandbox", "--port", "0", "--json"]
    with subprocess.Popen(  # noqa: S603 - our own interpreter and module
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        world = json.loads(proc.stdout.readline())
        merchant = world["merchants"][0]
        user = merchant["users"][0]
        trade = next(t for t in user["trades"] if t["game"] == "cs2" and t["age_minutes"] > 30)
        assert world["url"].startswith("http://127.0.0.1:")
        assert merchant["quotas"]["cancel-item"] == [60, 60.0]
        monkeypatch.setenv("ASSETPAY_CLIENT_TOKEN", user["token"])
        code = main(
            [
                "cancel",
                "--tier",
                "verified",
                "--base-url",
                world["url"],
                trade["id"],
                trade["items"][0]["id"],
            ]
        )
        printed = capsys.readouterr()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert code == ExitCode.OK
    assert printed.out.startswith("cancelled: ")
    assert user["token"] not in printed.out + printed.err
    assert proc.returncode == ExitCode.OK
    assert "sandbox stopped" in err


def test_sandbox_command_reads_a_seed_and_prints_for_humans(tmp_path: Path) -> None:
    seed = tmp_path / "world.json"
    seed.write_text(
        json.dumps(
            {
                "merchants": [
                    {
                        "id": "m-1",
                        "secret": "dev-secret",
                        "tier": "unverified",
                        "quotas": {"cancel-item": [60, 3]},
                        "users": [
                            {
                                "steam_id": "76561198000000042",
                                "trades": [{"items": 2, "age_minutes": 45}],
                            }
                        ],
                    }
                ]
            }
        )
    )
    argv = [*CLI, "sandbox", "--port", "0", "--seed", str(seed), "--algorithm", "gcra"]
    with subprocess.Popen(  # noqa: S603 - our own interpreter and module
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(7)]
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
    text = "".join(lines) + rest
    assert proc.returncode == ExitCode.OK
    assert "(server algorithm gcra)" in lines[0]
    assert (
        "merchant m-1 (unverified; cancel-item 60/3s, trades-read 30/60s, merchant-read 100/60s, "
        "auth 100/3600s) secret dev-secret" in text
    )
    assert "user steam 76561198000000042" in text
    assert "ASSETPAY_CLIENT_TOKEN=eyJ" in text
    assert "withdraw cs2 45 min old" in text


def test_a_bad_seed_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = tmp_path / "world.json"
    seed.write_text('{"users": []}')
    assert main(["sandbox", "--port", "0", "--seed", str(seed)]) == ExitCode.USAGE
    assert 'a seed is a JSON object with a "merchants" list' in capsys.readouterr().err


def test_importing_the_sdk_or_the_cli_package_does_not_import_rich() -> None:
    code = (
        "import sys, assetpay_async, assetpay_async.cli; assert 'rich' not in sys.modules, 'rich'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)  # noqa: S603
