"""A missing extra is one usage line naming it (exit 2), asked for only by the command that needs it.

A module set to ``None`` in ``sys.modules`` cannot be imported (``ImportError``): that is how these tests take an
extra away. ``assetpay_async.redis_limiter`` goes too, as it would in a process without redis-py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from assetpay_async.cli import ExitCode, main
from tests.support.cli import FAST_QUOTA, World, on_world

REDIS_URL = "redis://:hunter2@127.0.0.1:1/0"  # never reached: the check comes first


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError


def _without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "redis", "redis.asyncio", "assetpay_async.redis_limiter")


def test_without_rich_every_command_names_the_cli_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _without(monkeypatch, "rich")
    assert main(["demo", "--fast"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err == (
        "assetpay: the command line needs the 'cli' extra (rich): pip install 'assetpay-async[cli]'\n"
    )
    assert main(["cancel", "--help"]) == ExitCode.OK  # --help needs no rich


def test_without_aiolimiter_compare_naive_names_it_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _without(monkeypatch, "aiolimiter")
    assert main(["demo", "--fast", "--compare-naive", "--seconds", "1"]) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "assetpay demo: --compare-naive needs aiolimiter, from the 'cli' extra: "
        "pip install 'assetpay-async[cli]'\n"
    )


def test_without_aiolimiter_the_demo_and_cancel_still_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _without(monkeypatch, "aiolimiter")
    assert main(["demo", "--fast", "--json", "--seconds", "1"]) == ExitCode.OK
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert (report["ok"], report["rate_limited"]) == (True, 0)
    assert "naive" not in report

    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[0].id
        run = await world.run(["cancel", *FAST_QUOTA, trade, item], capsys)
        assert (run.code, run.err) == (ExitCode.OK, "")
        assert len(world.cancels()) == 1

    on_world(test)


@pytest.mark.parametrize("command", ["cancel", "cancel-batch"])
@pytest.mark.parametrize("via", ["option", "environment"])
def test_without_redis_a_redis_url_names_the_redis_extra_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str, via: str
) -> None:
    _without_redis(monkeypatch)

    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[0].id
        args = [trade, item] if command == "cancel" else ["-"]
        option = ["--redis-url", REDIS_URL] if via == "option" else []
        env = {"ASSETPAY_REDIS_URL": REDIS_URL} if via == "environment" else {}
        run = await world.run([command, *FAST_QUOTA, *option, *args], capsys, **env)
        assert run.code == ExitCode.USAGE
        assert run.out == ""
        assert run.err == (
            f"assetpay {command}: --redis-url (or $ASSETPAY_REDIS_URL) needs the 'redis' extra: "
            "pip install 'assetpay-async[redis]'\n"
        )
        assert world.cancels() == []

    on_world(test)


def test_without_redis_a_cancel_without_a_redis_url_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_redis(monkeypatch)

    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[0].id
        run = await world.run(["cancel", *FAST_QUOTA, trade, item], capsys)
        assert (run.code, run.err) == (ExitCode.OK, "")

    on_world(test)


def test_without_redis_the_real_process_prints_one_line_and_no_traceback() -> None:
    code = (
        "import sys; sys.modules['redis'] = None; from assetpay_async.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    argv = ["cancel", "--tier", "verified", "--redis-url", REDIS_URL, "--base-url"]
    argv += ["http://127.0.0.1:1", "1" * 32, "2" * 32]
    env = {"ASSETPAY_CLIENT_TOKEN": "a.b.c", "PATH": ""}
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", code, *argv],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == ExitCode.USAGE
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "'redis' extra" in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr


@pytest.mark.parametrize("via", ["option", "environment"])
def test_a_redis_url_without_a_scheme_is_a_usage_line_without_the_url(
    capsys: pytest.CaptureFixture[str], via: str
) -> None:
    bad_url = (
        ":hunter2@127.0.0.1:1/0"  # the scheme forgotten: redis-py would raise a bare ValueError
    )

    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[0].id
        option = ["--redis-url", bad_url] if via == "option" else []
        env = {"ASSETPAY_REDIS_URL": bad_url} if via == "environment" else {}
        run = await world.run(["cancel", *FAST_QUOTA, *option, trade, item], capsys, **env)
        assert run.code == ExitCode.USAGE
        assert run.out == ""
        assert "redis://" in run.err
        assert "hunter2" not in run.err
        assert "Traceback" not in run.err
        assert world.cancels() == []

    on_world(test)
