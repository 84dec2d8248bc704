"""A real client token typed anywhere on the command line or in any ``ASSETPAY_*`` variable is never printed.

Each case runs ``assetpay`` as a real process (the way an operator's typo meets it), with a real JWT minted by
the sandbox, and checks stdout, stderr and the working directory: neither the token, nor its signature, nor a
file named after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assetpay_async.sandbox import Sandbox

CLI = [sys.executable, "-m", "assetpay_async.cli"]
TRADE = "6f1c0b9e-6a4e-4b59-9a1e-2f3f8c1d2e3f"
ITEM = "0d9b3c4a-8e21-4f6b-a1b2-c3d4e5f60718"
DEAD = "http://127.0.0.1:1"  # nothing listens: whatever is sent is refused at once
FAST = ["--timeout", "1", "--max-retries", "0"]


def _jwt() -> str:
    sandbox = Sandbox(seed=11)
    return sandbox.token(sandbox.add_user(sandbox.add_merchant("verified")))


TOKEN = _jwt()

# "{T}" stands for the token; every argument position of both talking commands, and of the others.
ARGV_CASES = [
    ["cancel", "--tier", "{T}", TRADE, ITEM],
    ["cancel", "--tier={T}", TRADE, ITEM],
    ["cancel", "--quota", "{T}", TRADE, ITEM],
    ["cancel", "--latency-margin", "{T}", TRADE, ITEM],
    ["cancel", "--wait-timeout", "{T}", TRADE, ITEM],
    ["cancel", "--timeout", "{T}", "--tier", "verified", TRADE, ITEM],
    ["cancel", "--max-retries", "{T}", "--tier", "verified", TRADE, ITEM],
    ["cancel", "--tier", "verified", "--base-url", "{T}", TRADE, ITEM],
    ["cancel", "--tier", "verified", "--redis-url", "{T}", TRADE, ITEM],
    [
        "cancel",
        "--tier",
        "verified",
        "--base-url",
        DEAD,
        *FAST,
        "--merchant-id",
        "{T}",
        TRADE,
        ITEM,
    ],
    ["cancel", "--tier", "verified", "--base-url", DEAD, *FAST, "--token", "{T}", TRADE, ITEM],
    ["cancel", "--tier", "verified", "{T}", ITEM],
    ["cancel", "--tier", "verified", TRADE, "{T}"],
    ["cancel", "--tier", "verified", TRADE, ITEM, "{T}"],
    ["cancel", "{T}"],
    ["{T}"],
    ["--{T}"],
    ["cancel-batch", "--tier", "verified", "{T}"],
    ["cancel-batch", "--tier", "verified", "--journal", "{T}", "items.csv"],
    ["cancel-batch", "--tier", "verified", "--results", "{T}", "items.csv"],
    ["cancel-batch", "--tier", "verified", "--workers", "{T}", "items.csv"],
    ["cancel-batch", "--tier", "verified", "--max-transport-failures", "{T}", "items.csv"],
    ["cancel-batch", "--tier", "verified", "--progress-interval", "{T}", "items.csv"],
    ["sandbox", "--port", "{T}"],
    ["sandbox", "--algorithm", "{T}"],
    ["sandbox", "--seed", "{T}"],
    ["demo", "--seconds", "{T}"],
    ["demo", "--plot", "{T}"],
]
ENV_CASES = [
    "ASSETPAY_TIER",
    "ASSETPAY_BASE_URL",
    "ASSETPAY_REDIS_URL",
    "ASSETPAY_MERCHANT_ID",
    "ASSETPAY_CLIENT_TOKEN",
]


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASSETPAY_")}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [*CLI, *argv],
        env=base | {"COLUMNS": "200"} | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_nothing_leaked(done: subprocess.CompletedProcess[str], cwd: Path) -> None:
    printed = done.stdout + done.stderr
    signature = TOKEN.split(".")[2]
    for secret in (TOKEN, signature, TOKEN.lower(), signature.lower(), TOKEN[:40]):
        assert secret not in printed, printed
        assert secret not in printed.lower(), printed
    named = [p.name for p in cwd.iterdir() if signature[:16] in p.name or "eyJ" in p.name]
    assert named == [], named
    assert "Traceback" not in done.stderr, done.stderr


def _items(cwd: Path) -> None:
    (cwd / "items.csv").write_text(f"{TRADE},{ITEM}\n")


@pytest.mark.parametrize("argv", ARGV_CASES, ids=" ".join)
def test_a_token_in_any_argument_is_never_printed_nor_used_as_a_file_name(
    tmp_path: Path, argv: list[str]
) -> None:
    _items(tmp_path)
    real = [arg.replace("{T}", TOKEN) for arg in argv]
    done = _run(real, {"ASSETPAY_CLIENT_TOKEN": TOKEN, "ASSETPAY_BASE_URL": DEAD}, tmp_path)
    _assert_nothing_leaked(done, tmp_path)
    assert done.returncode != 0


@pytest.mark.parametrize("variable", ENV_CASES)
@pytest.mark.parametrize("command", ["cancel", "cancel-batch"])
def test_a_token_in_any_environment_variable_is_never_printed(
    tmp_path: Path, variable: str, command: str
) -> None:
    _items(tmp_path)
    env = {
        "ASSETPAY_CLIENT_TOKEN": TOKEN,
        "ASSETPAY_TIER": "verified",
        "ASSETPAY_BASE_URL": DEAD,
    } | {variable: TOKEN}
    args = [TRADE, ITEM] if command == "cancel" else ["items.csv"]
    done = _run(
        [command, *args], env, tmp_path
    )  # no new flag: the same line fails on older versions
    _assert_nothing_leaked(done, tmp_path)
    assert done.returncode != 0


def test_a_token_given_as_the_batch_file_or_journal_creates_nothing_and_says_why(
    tmp_path: Path,
) -> None:
    _items(tmp_path)
    env = {"ASSETPAY_CLIENT_TOKEN": TOKEN, "ASSETPAY_BASE_URL": DEAD}
    for argv in (
        ["cancel-batch", "--tier", "verified", "--journal", TOKEN, "items.csv"],
        ["cancel-batch", "--tier", "verified", "--results", TOKEN, "items.csv"],
        ["cancel-batch", "--tier", "verified", TOKEN],
    ):
        done = _run(argv, env, tmp_path)
        _assert_nothing_leaked(done, tmp_path)
        assert done.returncode == 2
        assert "looks like a client token" in done.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["items.csv"]
