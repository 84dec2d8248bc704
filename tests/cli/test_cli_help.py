"""``--help`` on every command (with examples) and ``--version`` (a missing extra: ``test_cli_extras.py``)."""

from __future__ import annotations

import pytest

from assetpay_async import __version__
from assetpay_async.cli import ExitCode, main

SECRET = "eyJhbGciOiJIUzI1NiJ9.eyJtZXJjaGFudElkIjoibS0xIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([], ["assetpay cancel --tier verified TRADE_ID ITEM_ID", "130 interrupted"]),
        (["cancel"], ["--wait", "exits 1", "ASSETPAY_CLIENT_TOKEN"]),
        (["cancel-batch"], ["--results FILE", "line number", "- for stdin"]),
        (["sandbox"], ["--seed FILE", "--algorithm", "sliding-log"]),
        (["demo"], ["--compare-naive", "--fast", "zero 429s"]),
    ],
)
def test_help_has_examples_and_never_the_token(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    expected: list[str],
) -> None:
    monkeypatch.setenv("ASSETPAY_CLIENT_TOKEN", SECRET)
    monkeypatch.setenv("COLUMNS", "100")
    assert main([*command, "--help"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "examples:" in out
    for fragment in expected:
        assert fragment in out
    assert SECRET not in out
    assert SECRET[:20] not in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == ExitCode.OK
    assert capsys.readouterr().out.strip() == f"assetpay {__version__}"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == ExitCode.USAGE
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err
