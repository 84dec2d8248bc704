"""A Redis the limiter cannot use (a wrong password) is a configuration error for the CLI: one line, exit 2.

The limiter checks the connection before its first grant; a refused password is not an outage to ride through
(issue 20), and for the command line it is a setting to fix, like a bad option: nothing was sent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer, redis_server_binary

PASSWORD = "right-password-4f1c"
WRONG = "wrong-password-9d2e"
# A JWT-shaped token for merchant m-1: the CLI reads the merchant from it; nothing is ever sent with it.
TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInVzZXJJZCI6Im0tMSJ9."
    "eyJtZXJjaGFudElkIjoibS0xIiwiaWF0IjoxLCJleHAiOjR9."
    "c2lnbmF0dXJlLW5vdC1jaGVja2VkLWhlcmU"
)

pytestmark = pytest.mark.redis_server


@pytest.fixture
def guarded() -> Iterator[RedisServer]:
    with RedisServer(
        redis_server_binary(), args=["--requirepass", PASSWORD], password=PASSWORD
    ) as server:
        yield server


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETPAY_")}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "assetpay_async.cli", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _common(server: RedisServer) -> list[str]:
    url = f"{server.url}?password={WRONG}"
    # Nothing listens on port 1: had anything been sent, the run would report transport failures.
    return ["--tier", "verified", "--base-url", "http://127.0.0.1:1", "--redis-url", url]


def test_cancel_with_a_wrong_redis_password_is_one_line_and_exit_2(
    guarded: RedisServer, tmp_path: Path
) -> None:
    done = _run(["cancel", *_common(guarded), "--token", TOKEN, "trade-1", "item-1"], tmp_path)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "ConfigurationError" in lines[0] or "credentials" in lines[0]
    assert WRONG not in done.stdout + done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_cancel_batch_with_a_wrong_redis_password_is_one_line_and_exit_2(
    guarded: RedisServer, tmp_path: Path
) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("trade_id,item_id\ntrade-1,item-1\ntrade-2,item-2\ntrade-3,item-3\n")
    done = _run(["cancel-batch", str(pairs), *_common(guarded), "--token", TOKEN], tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "nothing was sent" in lines[0]
    assert WRONG not in done.stdout + done.stderr
