"""``assetpay cancel`` tells the truth when interrupted, and ``--wait`` prints the acceptance before the wait."""

from __future__ import annotations

import asyncio
import json

import pytest

from assetpay_async.cli import ExitCode, main_async
from tests.support.cli import FAST_QUOTA, World, on_world


async def _interrupt_after(
    world: World, argv: list[str], seconds: float, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    task = asyncio.create_task(main_async(argv, environ=world.env()))
    await asyncio.sleep(seconds)
    assert not task.done()
    task.cancel()  # what asyncio.run() does on Ctrl-C
    code = await task
    captured = capsys.readouterr()
    world.assert_no_secret(captured.out + captured.err)
    return code, captured.out, captured.err


@pytest.mark.parametrize("as_json", [False, True])
def test_interrupted_while_the_cancel_is_on_the_wire_says_outcome_unknown(
    capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    async def test(world: World) -> None:
        world.sandbox.faults.add("latency", group="cancel-item", delay=10.0)
        trade, item = world.eligible.id, world.eligible.items[0].id
        argv = ["cancel", *FAST_QUOTA, *(["--json"] if as_json else []), trade, item]
        code, out, _ = await _interrupt_after(world, argv, 1.0, capsys)
        assert code == ExitCode.INTERRUPTED
        if as_json:
            body = json.loads(out)
            assert body["interrupted"] is True
            assert body["state"] == "unknown"
            assert body["ok"] is False
        else:
            assert out.startswith(
                "interrupted: outcome unknown: the cancel may have reached AssetPay"
            )
            assert f"check item {item} of trade {trade}" in out

    on_world(test)


@pytest.mark.parametrize("as_json", [False, True])
def test_interrupted_while_waiting_for_quota_says_nothing_was_sent(
    capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    async def test(world: World) -> None:
        quota = ["--quota", "1/100", "--latency-margin", "0"]
        first, second = world.eligible.items[0].id, world.eligible.items[1].id
        assert (
            await main_async(["cancel", *quota, world.eligible.id, first], environ=world.env()) == 0
        )
        capsys.readouterr()
        argv = ["cancel", *quota, *(["--json"] if as_json else []), world.eligible.id, second]
        code, out, _ = await _interrupt_after(
            world, argv, 5.0, capsys
        )  # the quota is spent for 100 s
        assert code == ExitCode.INTERRUPTED
        assert len(world.cancels()) == 1
        if as_json:
            assert json.loads(out) | {"error": None} == {
                "ok": False,
                "interrupted": True,
                "state": "not-sent",
                "result": None,
                "error": None,
            }
        else:
            assert out == "interrupted before the cancel was sent: nothing was cancelled\n"

    on_world(test)


def test_wait_prints_the_acceptance_at_once_then_the_final_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[0].id
        task = asyncio.create_task(
            main_async(["cancel", *FAST_QUOTA, "--wait", trade, item], environ=world.env())
        )
        await asyncio.sleep(1.0)  # accepted at once; the item reverts after 5 s
        assert not task.done()
        early = capsys.readouterr()
        assert early.out.startswith(f"cancelled: item {item} of trade {trade}")
        assert await task == ExitCode.OK
        assert capsys.readouterr().out == "final status: reverted\n"

    on_world(test)


@pytest.mark.parametrize("as_json", [False, True])
def test_interrupted_while_waiting_reports_the_acceptance(
    capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[0].id
        argv = ["cancel", *FAST_QUOTA, "--wait", *(["--json"] if as_json else []), trade, item]
        code, out, _ = await _interrupt_after(world, argv, 1.0, capsys)
        assert code == ExitCode.INTERRUPTED
        if as_json:
            body = json.loads(out)
            assert (body["ok"], body["interrupted"], body["state"]) == (True, True, "accepted")
            assert body["result"]["item_id"] == item
        else:
            lines = out.splitlines()
            assert lines[0].startswith(f"cancelled: item {item} of trade {trade}")
            assert (
                lines[1]
                == "interrupted while waiting for the final status; the cancel was accepted"
            )

    on_world(test)
