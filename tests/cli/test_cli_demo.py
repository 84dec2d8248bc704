"""``assetpay demo --fast`` end to end (virtual time), and the pure parts of the demo."""

from __future__ import annotations

import json
import math

import pytest

from assetpay_async.cli import ExitCode, main
from assetpay_async.cli._backlog import BACKLOG_MIX, Category
from assetpay_async.cli._demo import DemoScale


def test_demo_fast_json_zero_429s_every_kind_as_seeded_and_the_naive_comparison(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["demo", "--fast", "--compare-naive", "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == ExitCode.OK
    assert report["ok"] is True
    assert report["rate_limited"] == 0
    assert report["sdk_rate_limited"] == 0
    assert report["requests"] == sum(BACKLOG_MIX.values())
    assert report["max_in_window"] <= report["quota"]["limit"] == 60
    assert {name: row["items"] for name, row in report["outcomes"].items()} == {
        c.name.lower(): n for c, n in BACKLOG_MIX.items()
    }
    assert all(row["as_expected"] == row["items"] for row in report["outcomes"].values())
    eligible = BACKLOG_MIX[Category.ELIGIBLE]
    assert report["callbacks"] == {
        "deliveries": eligible,
        "verified": eligible,
        "reverted_items_seen": eligible,
        "cancelled": eligible,
    }
    assert 15 <= report["elapsed_seconds"] <= 25  # "about 20 s" (virtual)
    # The same backlog through AsyncLimiter(N, T) meets the burst trap.
    assert report["naive"]["requests"] == sum(BACKLOG_MIX.values())
    assert report["naive"]["rate_limited"] > 0
    assert report["naive"]["cancelled"] < eligible


def test_demo_fast_prints_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--fast", "--seconds", "5"])
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    rows = {
        cells[0]: cells[1:]
        for line in out.splitlines()
        if line.startswith("│")
        for cells in [[c.strip() for c in line.strip("│").split("│")]]
    }
    assert rows["eligible CS2 item"] == ["200", "cancelled", "200"]
    assert rows["CS2 item younger than 30 min"] == ["25", "TRADE_CANCEL_TOO_SOON", "25"]
    assert rows["another user's trade"] == ["20", "FORBIDDEN", "20"]
    assert rows["item id not in the trade"] == ["15", "ITEM_NOT_FOUND", "15"]
    assert rows["429s from the server"] == ["0"]
    assert rows["cancelled items seen 'reverted' (refund now)"] == ["200 of 200"]
    assert "All as expected" in out


@pytest.mark.parametrize("seconds", [1.0, 5.0, 20.0, 300.0, 3600.0])
def test_the_scale_is_a_power_of_two_of_the_real_minute(seconds: float) -> None:
    scale = DemoScale.for_duration(seconds, 300)
    assert math.log2(scale.speedup).is_integer()
    # T, J, the revert delay and N/T are exact binary fractions (no float shortfall on virtual time)
    for value in (
        scale.quota.period_seconds,
        scale.latency_margin,
        scale.revert_delay,
        scale.quota.rate,
    ):
        assert value.as_integer_ratio()[1] & (value.as_integer_ratio()[1] - 1) == 0
    # (N - 1) grants spaced (T + J) / (N - 1) for 299 gaps land within a factor sqrt(2) of the target
    run = 299 * (scale.quota.period_seconds + scale.latency_margin) / 59
    assert seconds / math.sqrt(2) <= run <= seconds * math.sqrt(2)


@pytest.mark.parametrize("seconds", ["0.5", "nan", "7200"])
def test_demo_refuses_a_silly_duration(capsys: pytest.CaptureFixture[str], seconds: str) -> None:
    assert main(["demo", "--fast", "--seconds", seconds]) == ExitCode.USAGE
    assert "--seconds must be between 1 and 3600" in capsys.readouterr().err
