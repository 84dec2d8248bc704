"""The modules of the package import each other in one direction: no cycle, not even through ``TYPE_CHECKING``.

The graph is read from the source with :mod:`ast` (every ``import`` and ``from ... import`` anywhere in a
module: at the top, under ``if TYPE_CHECKING:``, inside a function), so a cycle cannot hide behind a deferred
or type-only import. ``docs/architecture.md`` describes the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "assetpay_async"
REQUEST_PATH = [
    "_session",
    "_client",
    "_batch",
    "_transport",
    "_http",
    "_protocol",
    "_tokens",
    "_errors",
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every module of ``modules`` that ``path`` imports, as a dotted name."""
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("assetpay_async"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("assetpay_async"):
                module = node.module
            else:
                continue
            # ``from . import _http`` imports a module; ``from ._x import Name`` a name of one.
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in modules else module)
    return found & modules


def _graph() -> dict[str, set[str]]:
    """The core's import graph: the package and its top-level modules (not the sandbox, CLI subpackages)."""
    modules = {_module_name(p): p for p in PACKAGE.glob("*.py")}
    names = set(modules)
    return {name: _imports(path, names) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_type_checking_and_function_level_imports() -> None:
    graph = _graph()
    # Under ``if TYPE_CHECKING:`` in _client.py, and inside a function in _session.py: both must count.
    assert "assetpay_async._transport" in graph["assetpay_async._client"]
    assert "assetpay_async.redis_limiter" in graph["assetpay_async._session"]


def test_a_planted_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", REQUEST_PATH)
def test_the_request_path_modules_exist(module: str) -> None:
    assert f"assetpay_async.{module}" in _graph()


def test_no_import_cycles_in_the_core() -> None:
    assert _cycles(_graph()) == []
