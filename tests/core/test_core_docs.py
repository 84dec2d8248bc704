"""The request-path docs stay true: every module ``docs/architecture.md`` names exists and the page is in the
navigation; every test the hardening section of ``docs/evidence.md`` cites exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_architecture_page_names_real_modules_and_is_in_the_nav() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(_?[a-z_]+)\.py`", page)) | set(re.findall(r"`(_[a-z_]+)`", page))
    assert {"_session", "_client", "_transport", "_http", "_protocol"} <= named
    for module in named:
        assert (ROOT / "assetpay_async" / f"{module}.py").exists(), module
    assert "architecture.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def _cited_in(heading: str) -> set[str]:
    evidence = (ROOT / "docs" / "evidence.md").read_text(encoding="utf-8")
    section = evidence.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"\b(test_[a-z0-9_]+)\b(?!\.py)", section))


def _defined_tests() -> set[str]:
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    return set(re.findall(r"def (test_[a-z0-9_]+)", sources))


def test_every_test_the_hardening_section_cites_exists() -> None:
    cited = _cited_in("Request-path hardening")
    assert len(cited) >= 20
    assert cited - _defined_tests() == set()


def test_every_test_the_fails_closed_section_cites_exists_in_the_file_it_names() -> None:
    evidence = (ROOT / "docs" / "evidence.md").read_text(encoding="utf-8")
    section = evidence.split("## Fails closed", 1)[1].split("\n## ", 1)[0]
    cited = _cited_in("Fails closed")
    assert len(cited) >= 30
    assert cited - _defined_tests() == set()
    # A `tests/x/test_y.py::test_z` citation names the file that defines the test.
    for path, name in re.findall(r"(tests/[\w/]+\.py)::(test_\w+)", section):
        assert f"def {name}(" in (ROOT / path).read_text(encoding="utf-8"), f"{path}::{name}"


def _reference() -> str:
    return (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")


def test_every_public_name_has_an_entry_in_the_api_reference_under_its_public_path() -> None:
    import assetpay_async

    entries = set(re.findall(r"^::: assetpay_async\.(\w+)$", _reference(), flags=re.M))
    public = set(assetpay_async.__all__) - {"__version__"}
    # Modules documented whole: their members appear under the module's path.
    modules = {"redis_limiter", "callbacks", "sandbox", "testing"}
    assert public - entries == set(), "add a '::: assetpay_async.NAME' entry to docs/reference.md"
    assert entries - public - modules == set()
    # Nothing documented under a private path (errors under assetpay_async._errors, say).
    assert re.findall(r"^::: assetpay_async\.(?:\w+\.)*_\w+", _reference(), flags=re.M) == []


def test_docstrings_use_markdown_not_restructuredtext() -> None:
    """mkdocstrings renders Markdown: Sphinx roles, ``::`` literal markers and RST links show up raw."""
    rst = re.compile(
        r":(?:class|func|meth|attr|exc|mod|data|obj):`|\w::$|`[^`]+`_\b|^\s*\.\. \w+::", re.M
    )
    found = []
    for path in sorted((ROOT / "assetpay_async").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if rst.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_cross_references_in_docstrings_are_links() -> None:
    """A name in brackets must be a mkdocstrings link ([`X`][assetpay_async.X]), not a Sphinx-style `X`_."""
    bare = re.compile(r"\[`[A-Za-z_.]+`\](?![\[(])")
    found = []
    for path in sorted((ROOT / "assetpay_async").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if bare.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_every_test_any_page_cites_exists() -> None:
    """A renamed or deleted test leaves no stale citation in the docs."""
    defined = _defined_tests()
    for page in sorted((ROOT / "docs").glob("*.md")):
        # Code blocks are examples of the reader's own tests, not citations of ours.
        prose = re.sub(r"(?ms)^```.*?^```", "", page.read_text(encoding="utf-8"))
        cited = set(re.findall(r"\b(test_[a-z0-9_]+)\b(?!\.py)", prose))
        assert cited - defined == set(), page.name
