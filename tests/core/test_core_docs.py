"""The docs stay true to the code.

``docs/architecture.md``: every module it names exists, it names every top-level module, the modules it calls
private are private (a leading ``_``, listed by no public ``__all__``), and every import edge it draws
("`_session` → `_client`") is an import in the code, read with ``ast`` as ``test_core_imports`` reads them.
``docs/evidence.md``: every test its hardening section cites exists. ``docs/reference.md``: every public name
has its entry.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tests.core.test_core_imports import _imports, _module_name

ROOT = Path(__file__).parents[2]


PACKAGE = ROOT / "assetpay_async"
# A module as the architecture page names it: `_session`, `sandbox._app`, or a public module.
_NAMED = re.compile(
    r"`((?:[a-z]+\.)?_[a-z_]+|assetpay_async|callbacks|redis_limiter|sandbox|testing|cli)`"
)
_EDGE = re.compile(r"^- `([\w.]+)` → `([\w.]+)`$", flags=re.M)


def _architecture() -> str:
    return (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _dotted(name: str) -> str:
    return "assetpay_async" if name == "assetpay_async" else f"assetpay_async.{name}"


def _package_modules() -> dict[str, Path]:
    """Every module of the package, subpackages included, by dotted name."""
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _public_modules(page: str) -> set[str]:
    line = next(line for line in page.splitlines() if line.startswith("Public modules:"))
    return set(_NAMED.findall(line))


def test_the_architecture_page_names_real_modules_and_is_in_the_nav() -> None:
    page = _architecture()
    named = set(_NAMED.findall(page))
    assert {"_session", "_client", "_transport", "_retry", "_wire", "_http", "_protocol"} <= named
    modules = _package_modules()
    assert {name for name in named if _dotted(name) not in modules} == set()
    assert "architecture.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def test_the_architecture_page_names_every_module_of_the_package() -> None:
    """A new top-level module needs its place on the page."""
    named = {_dotted(name) for name in _NAMED.findall(_architecture())}
    top_level = {_module_name(path) for path in PACKAGE.glob("*.py") if path.name != "__init__.py"}
    assert top_level - named == set()


def test_the_modules_the_page_calls_private_are_private() -> None:
    page = _architecture()
    public = _public_modules(page)
    assert public == {"assetpay_async", "callbacks", "redis_limiter", "sandbox", "testing", "cli"}
    assert [name for name in public if name.split(".")[-1].startswith("_")] == []
    private = set(_NAMED.findall(page)) - public
    assert len(private) > 40
    assert [name for name in private if not name.split(".")[-1].startswith("_")] == []
    # Nothing public lists a private module among its names.
    exported: set[str] = set()
    for name in public:
        exported.update(getattr(importlib.import_module(_dotted(name)), "__all__", ()))
    assert {name.split(".")[-1] for name in private} & exported == set()


def test_every_import_edge_the_page_draws_exists_in_the_code() -> None:
    edges = _EDGE.findall(_architecture())
    assert len(edges) >= 40
    modules = _package_modules()
    names = set(modules)
    missing = [
        f"{source} → {target}"
        for source, target in edges
        if _dotted(target) not in _imports(modules[_dotted(source)], names)
    ]
    assert missing == []


def test_a_missing_edge_is_caught() -> None:
    """The edge check reads the imports themselves: ``_http`` imports ``_tokens``; ``_http`` and
    ``_session`` do not import each other, so a page drawing either edge fails."""
    modules = _package_modules()
    imported = _imports(modules["assetpay_async._http"], set(modules))
    assert "assetpay_async._tokens" in imported
    assert "assetpay_async._session" not in imported
    assert "assetpay_async._http" not in _imports(modules["assetpay_async._session"], set(modules))


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
