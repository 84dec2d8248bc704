"""The benchmark runner: every benchmark runs whatever fails before it, and the docs blocks it writes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from bench.__main__ import DOCS, _run_child, available, replace_block, run_all


class FakeRunner:
    """Stands in for the child interpreters: answers a scripted failure per benchmark name."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        self.calls: list[tuple[str, list[str], float | None]] = []

    def __call__(self, name: str, argv: list[str], timeout: float | None) -> tuple[str, str]:
        self.calls.append((name, argv, timeout))
        return self.failures.get(name, ""), f"output of {name}\n"


def test_a_failing_benchmark_does_not_stop_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    runner = FakeRunner({"first": "exit status 1"})

    status = run_all(
        ["first", "second", "third"], smoke=False, timeout=None, write_docs=False, runner=runner
    )

    assert [name for name, _, _ in runner.calls] == ["first", "second", "third"]
    assert status == 1
    assert "failed: first (exit status 1)" in capsys.readouterr().err


def test_all_passing_exits_zero_and_smoke_reaches_every_benchmark() -> None:
    runner = FakeRunner({})

    status = run_all(["a", "b"], smoke=True, timeout=120.0, write_docs=False, runner=runner)

    assert status == 0
    assert runner.calls == [("a", ["--smoke"], 120.0), ("b", ["--smoke"], 120.0)]


def test_a_failing_child_interpreter_is_reported_by_its_exit_status() -> None:
    # `python -m bench no-such-benchmark` is refused by the runner's own parser (exit status 2).
    failure, _ = _run_child("no-such-benchmark", [], 60.0)
    assert failure == "exit status 2"


def test_a_benchmark_over_its_timeout_counts_as_failed() -> None:
    failure, _ = _run_child("limiter", [], 0.01)
    assert failure == "timed out after 0.01 s"


def test_replace_block_replaces_only_the_named_block() -> None:
    document = (
        "intro\n<!-- bench:one -->\nold one\n<!-- /bench:one -->\n"
        "<!-- bench:two -->\nold two\n<!-- /bench:two -->\n"
    )

    updated = replace_block(document, "one", "new | table\n\n")

    assert updated == (
        "intro\n<!-- bench:one -->\nnew | table\n<!-- /bench:one -->\n"
        "<!-- bench:two -->\nold two\n<!-- /bench:two -->\n"
    )
    with pytest.raises(KeyError):
        replace_block(document, "three", "x")


def test_the_docs_hold_one_block_per_benchmark_and_no_other() -> None:
    blocks = re.findall(r"<!-- bench:(\w+) -->", DOCS.read_text())
    assert sorted(blocks) == available()


def test_every_benchmark_takes_smoke() -> None:
    # The CI line `nox -s bench -- --smoke` passes --smoke to each; a benchmark without it would fail there.
    for name in available():
        source = (Path(sys.modules["bench"].__file__ or "").parent / f"{name}.py").read_text()
        assert '"--smoke"' in source, name
