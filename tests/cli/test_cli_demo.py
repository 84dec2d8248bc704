"""``assetpay demo --fast`` end to end (virtual time), and the pure parts of the demo."""

from __future__ import annotations

import json
import math
from pathlib import Path

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


def test_demo_draws_accepted_per_window_against_the_quota_line_beside_the_naive_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["demo", "--fast", "--compare-naive", "--seconds", "5"])
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    sdk = next(
        line for line in out.splitlines() if line.startswith("AssetPaySession: accepted per")
    )
    naive = next(line for line in out.splitlines() if line.startswith("AsyncLimiter(60, "))
    peak = int(sdk.split("at most ")[1].split()[0])
    table_peak = next(
        line for line in out.splitlines() if line.startswith("│ most accepted in a")
    ).split("│")[2]
    assert peak == int(table_peak) <= 60  # the chart and the table agree
    assert "429" not in sdk
    assert "refused with 429" in naive
    quota_lines = [line for line in out.splitlines() if line.startswith("N=60  │")]
    assert len(quota_lines) == 2  # one quota line per chart
    assert any(line.startswith("429s  │") and "x" in line for line in out.splitlines())
    # The progress bar counts the seeded refusals as such, not as failures of a run that went as expected.
    assert "100 refused (of 100 seeded to be)" in out
    assert " failed" not in out


def test_demo_plot_writes_the_same_chart_as_an_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    image = tmp_path / "windows.svg"
    assert main(["demo", "--fast", "--compare-naive", "--plot", str(image)]) == ExitCode.OK
    svg = image.read_text()
    assert svg.lstrip().startswith("<?xml")
    assert "<svg" in svg
    for text in ("AssetPaySession", "AsyncLimiter(60, 3.75)", "quota N = 60", "429s"):
        assert text in svg
    assert f"Chart written to {image}" in capsys.readouterr().out


def test_the_docs_show_the_demo_image_and_the_command_that_makes_it() -> None:
    root = Path(__file__).parents[2]
    assert (root / "docs" / "img" / "demo-windows.svg").read_text().count("<svg") == 1
    command = "assetpay demo --fast --compare-naive --plot docs/img/demo-windows.svg"
    limiter = (root / "docs" / "limiter.md").read_text()
    readme = (root / "README.md").read_text()
    assert "](img/demo-windows.svg)" in limiter
    assert "](docs/img/demo-windows.svg)" in readme
    assert command in limiter
    assert command in readme
