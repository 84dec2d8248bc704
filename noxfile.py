"""Single entry point for tests, lint, type checks, docs and benchmarks.

`nox -s tests` runs the suite on Python 3.11, 3.12 and 3.13. Nox finds each interpreter on PATH; pyenv's builds
(`pyenv versions`, under `$(pyenv root)/versions/`) are put on PATH first, since pyenv's shims answer only for
the versions pyenv has selected.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

PYTHONS = ["3.11", "3.12", "3.13"]

nox.options.sessions = ["tests", "lowest", "lint", "typecheck", "docs"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
# Find the interpreters, never download one (this kind of machine reaches no site that serves Python builds).
nox.options.download_python = "never"

PYPROJECT = nox.project.load_toml("pyproject.toml")


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


def _pyenv_root() -> Path | None:
    if root := os.environ.get("PYENV_ROOT"):
        return Path(root)
    if pyenv := shutil.which("pyenv"):
        done = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def _pyenv_bins(minors: list[str]) -> list[str]:
    """The `bin` folder of pyenv's newest release build of each minor version that pyenv has (none without pyenv)."""
    root = _pyenv_root()
    if root is None:
        return []
    found = []
    for minor in minors:
        builds = [
            build
            for build in (root / "versions").glob(f"{minor}.*")
            if re.fullmatch(rf"{re.escape(minor)}\.\d+", build.name)
            and (build / "bin" / f"python{minor}").is_file()
        ]
        if builds:
            newest = max(builds, key=lambda build: int(build.name.rsplit(".", 1)[1]))
            found.append(str(newest / "bin"))
    return found


os.environ["PATH"] = os.pathsep.join([*_pyenv_bins(PYTHONS), os.environ.get("PATH", "")])


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite under branch coverage (subprocesses included), warnings as errors (pyproject sets both).

    `nox -s tests-3.12 -- tests/cli` runs part of it on one Python; a filter that selects no test is not an error,
    the whole suite collecting none is. The suite runs on every core (pytest-xdist, ``-n auto``).
    """
    session.install("-e", ".[redis,cli,plot]", *_group("test"), *_group("coverage"))
    session.env["COVERAGE_FILE"] = f".coverage.{session.python}"
    no_tests = [5] if session.posargs else []
    session.run("coverage", "erase")
    # On every core: xdist's workers are subprocesses, measured through coverage's subprocess patch
    # ([tool.coverage.run] patch), and combined below with the rest. `-- -n 0` runs in one process. The tests
    # that drive real processes on the wall clock share one worker (tests/support/xdist_groups.py).
    workers = (
        []
        if any(a.startswith(("-n", "--numprocesses")) for a in session.posargs)
        else ["-n", "auto", "--dist", "loadgroup", "-p", "tests.support.xdist_groups"]
    )
    session.run(
        "coverage", "run", "-m", "pytest", *workers, *session.posargs, success_codes=[0, *no_tests]
    )
    session.run("coverage", "combine", "--quiet")  # this process's data and its subprocesses'
    session.run("coverage", "report")


@nox.session(python=PYTHONS[0], reuse_venv=False)
def lowest(session: nox.Session) -> None:
    """The suite on the lowest version of every direct dependency that pyproject.toml allows (a fresh venv).

    uv's `--resolution lowest-direct` takes each declared floor (runtime, extras and the test group) and the
    newest of everything they pull in; the versions it chose are printed before the run.
    """
    session.install("uv")
    python = str(Path(session.bin) / "python")
    requirements = ["-e", ".[redis,cli]", *_group("test")]
    session.run(
        "uv", "pip", "install", "--python", python, "--resolution", "lowest-direct", *requirements
    )
    session.run("uv", "pip", "freeze", "--python", python, "--exclude-editable")
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
    session.install("-e", ".[redis,cli,plot]", *_group("test"), *_group("typecheck"))
    session.run("mypy", "assetpay_async", "tests", "bench", "noxfile.py")
    if any(Path("examples").glob("*.py")):
        session.run("mypy", "examples")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with --strict."""
    session.install("-e", ".[redis,cli]", *_group("docs"))
    # Silences Material's banner about its successor, which is not about our docs.
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark (`-- --smoke`: each on a tiny size), or one (`-- overhead`); see docs/benchmarks.md."""
    # hatchling: footprint builds the wheel with --no-build-isolation (no network needed).
    session.install("-e", ".[redis,cli]", *_group("test"), "hatchling")
    session.run("python", "-m", "bench", *session.posargs)
