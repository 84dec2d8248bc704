"""Done when: ``assetpay cancel-batch --journal`` killed with SIGKILL mid-batch resumes with nothing decided resent.

A real process against a sandbox served over loopback by a thread of this process, on the wall clock with a scaled
quota (a few seconds in all). The sandbox's own request records are the evidence.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from collections import Counter
from contextlib import closing
from pathlib import Path

from assetpay_async._quota import RouteGroup
from assetpay_async.cli import ExitCode
from tests.cli.test_cli_processes import CLI, _wait_for, sandbox_in_thread


def _journal_states(path: Path) -> dict[str, str]:
    with closing(sqlite3.connect(path)) as db:  # a reader after the crash, as the next run is
        return dict(db.execute("SELECT path, state FROM pairs").fetchall())


def _path(trade_id: str, item_id: str) -> str:
    return f"/client/trading/withdraw/{trade_id}/items/{item_id}/cancel"


def test_a_batch_killed_with_sigkill_resumes_from_its_journal(tmp_path: Path) -> None:
    source, journal = tmp_path / "items.csv", tmp_path / "batch.journal"
    results = tmp_path / "results.jsonl"
    with sandbox_in_thread() as world:
        sandbox = world.sandbox
        trades = [sandbox.add_trade(world.user, items=4, age=3600.0) for _ in range(3)]
        eligible = [(t.id, i.id) for t in trades for i in t.items]
        pairs = [*eligible[:6], (world.rust.id, world.rust.items[0].id), *eligible[6:]]
        source.write_text("trade_id,item_id\n" + "".join(f"{t},{i}\n" for t, i in pairs))
        # Every cancel spends 0.3 s at the server, so the kill finds one on the wire.
        sandbox.faults.add("latency", group="cancel-item", delay=0.3)
        env = os.environ | {"ASSETPAY_CLIENT_TOKEN": world.token, "COLUMNS": "120"}
        common = ["--latency-margin", "0", "--base-url", sandbox.base_url]
        common += ["--journal", str(journal)]

        def cancels() -> list[tuple[str, int]]:
            return [
                (r.path, r.status) for r in sandbox.requests if r.group is RouteGroup.CANCEL_ITEM
            ]

        first_argv = [*CLI, "cancel-batch", "--quota", "5/1", *common, "--workers", "2"]
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
        before = _journal_states(journal)
        decided = {p for p, state in before.items() if state in ("cancelled", "failed")}
        maybe_sent = {p for p, state in before.items() if state == "sent"}
        # The kill may land between AssetPay's answer and its record: that pair is left possibly sent.
        assert len(decided) >= 3
        assert len(decided | maybe_sent) >= 4
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

    world.assert_no_secret(second.stdout + second.stderr)
    assert second.returncode == ExitCode.FAILED, second.stderr  # the Rust item is refused
    sent_again = [p for p, _ in requests[killed_at:]]
    assert not decided & set(sent_again)  # none decided in the first run was sent again
    # The first run's possibly-sent pairs are resolved before anything else.
    assert set(sent_again[: len(maybe_sent)]) == maybe_sent
    accepted = Counter(p for p, status in requests if status == 200)
    assert set(accepted) == {_path(t, i) for t, i in eligible}  # every eligible pair accepted
    for path, times in accepted.items():
        # Once, or a second time only for a pair the kill left possibly sent (the repeat is harmless).
        assert times == 1 or (times == 2 and path in maybe_sent), path
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["trade_id"], r["item_id"]) for r in rows] == pairs
    assert [r["line"] for r in rows] == list(range(2, len(pairs) + 2))
    for row in rows:
        path = _path(str(row["trade_id"]), str(row["item_id"]))
        if row["trade_id"] == world.rust.id:
            assert row["outcome"] == "failed"
            assert row["error"]["key"] == "TRADE_NOT_CANCELLABLE"
        else:
            assert row["outcome"] == "cancelled", row
        assert row["detail"] == ("from-journal" if path in decided else None)
    assert "not sent again" in second.stdout


def test_ctrl_c_during_cancel_reports_that_the_outcome_is_unknown() -> None:
    """A real SIGINT while the one cancel is on the wire: the command says so, in JSON too, and exits 130."""
    with sandbox_in_thread() as world:
        slow = world.sandbox.faults.add("latency", group="cancel-item", delay=2.0)
        trade, item = world.eligible.id, world.eligible.items[0].id
        argv = [*CLI, "cancel", "--quota", "60/1", "--base-url", world.sandbox.base_url, "--json"]
        env = os.environ | {"ASSETPAY_CLIENT_TOKEN": world.token}
        with subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*argv, trade, item], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            _wait_for(lambda: slow.fired >= 1)  # the request reached the server
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        _wait_for(lambda: len(world.cancels()) == 1)  # the server's slow answer, before it closes
    world.assert_no_secret(out + err)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    body = json.loads(out)
    assert (body["ok"], body["interrupted"], body["state"]) == (False, True, "unknown")


def test_two_runs_on_one_journal_the_second_ends_at_once_and_a_killed_holder_releases_it(
    tmp_path: Path,
) -> None:
    """Issue 19.1 with real processes: the journal's lock is the OS's, so SIGKILL cannot leave it held."""
    source, journal = tmp_path / "items.csv", tmp_path / "batch.journal"
    with sandbox_in_thread() as world:
        sandbox = world.sandbox
        trade = sandbox.add_trade(world.user, items=4, age=3600.0)
        pairs = [(trade.id, i.id) for i in trade.items]
        source.write_text("trade_id,item_id\n" + "".join(f"{t},{i}\n" for t, i in pairs))
        slow = sandbox.faults.add("latency", group="cancel-item", delay=3.0)
        env = os.environ | {"ASSETPAY_CLIENT_TOKEN": world.token, "COLUMNS": "120"}
        argv = [*CLI, "cancel-batch", "--quota", "60/1", "--latency-margin", "0", "--workers", "1"]
        argv += ["--base-url", sandbox.base_url, "--journal", str(journal), str(source)]

        def cancels() -> list[str]:
            return [r.path for r in sandbox.requests if r.group is RouteGroup.CANCEL_ITEM]

        with subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ) as holder:
            _wait_for(lambda: slow.fired >= 1)  # the holder has a cancel on the wire
            second = subprocess.run(  # noqa: S603 - our own interpreter and module
                argv, check=False, env=env, capture_output=True, text=True, timeout=60
            )
            assert holder.poll() is None  # still running: the second run met a live holder
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=20)
        sent_by_holder = cancels()
        assert len(sent_by_holder) == len(set(sent_by_holder))  # the second run sent nothing
        sandbox.faults.remove(slow)
        third = subprocess.run(  # noqa: S603 - our own interpreter and module
            argv, check=False, env=env, capture_output=True, text=True, timeout=60
        )
        accepted = Counter(
            r.path
            for r in sandbox.requests
            if r.group is RouteGroup.CANCEL_ITEM and r.status == 200
        )

    world.assert_no_secret(second.stdout + second.stderr + third.stdout + third.stderr)
    assert second.returncode == ExitCode.USAGE, second.stderr
    message = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(message) == 1, second.stderr
    assert "in use by another run" in message[0]
    assert third.returncode == ExitCode.OK, third.stderr  # the killed holder's lock went with it
    assert set(accepted) == {_path(t, i) for t, i in pairs}
