"""Single entry point for tests, lint, type checks, docs and benchmarks."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, warnings as errors (pyproject sets filterwarnings)."""
    session.install("-e", ".[redis,cli]", *_group("test"))
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*_group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, tests, benchmarks and examples."""
    session.install("-e", ".[redis,cli]", *_group("test"), *_group("typecheck"))
    session.run("mypy", "assetpay_async", "tests", "bench", "noxfile.py")
    if any(Path("examples").glob("*.py")):
        session.run("mypy", "examples")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with --strict."""
    session.install("-e", ".[redis,cli]", *_group("docs"))
    session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark (`-- --smoke`: each on a tiny size), or one (`-- overhead`); see docs/benchmarks.md."""
    # hatchling: footprint builds the wheel with --no-build-isolation (no network needed).
    session.install("-e", ".[redis,cli]", *_group("test"), "hatchling")
    session.run("python", "-m", "bench", *session.posargs)
