"""Run benchmarks: ``python -m bench`` runs every one, ``python -m bench NAME [options]`` one.

- ``python -m bench [--smoke] [--timeout S] [--write-docs]``: every benchmark, each in its own interpreter
  (``python -m bench NAME``), one after the other. A benchmark that fails (non-zero exit, an exception, a
  timeout) is reported by name and the others still run; the exit status is non-zero only at the end, if any
  failed. ``--smoke`` runs each on a tiny size (about a minute for all of them): it checks that every
  benchmark still runs, its numbers mean nothing.
- ``python -m bench NAME [options]``: one benchmark in this interpreter; ``python -m bench NAME --help`` lists
  its options (every one takes ``--smoke``).
- ``--write-docs``: each benchmark that succeeds replaces its block in ``docs/benchmarks.md`` (between
  ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``) with what it printed: a table in the docs is always a
  benchmark's whole output, with the date and the command that produced it. Smoke runs never write.
- ``--list`` names the benchmarks.

Each benchmark is a module of this package with a ``main(argv: list[str]) -> int`` function that prints
Markdown on stdout (progress, if any, goes to stderr).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def available() -> list[str]:
    """Every benchmark module (the ones not starting with an underscore)."""
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_"))


def _run_here(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"bench.{name}")
    result: int = module.main(argv)
    return result


def replace_block(document: str, name: str, output: str) -> str:
    """``document`` with the block of benchmark ``name`` replaced by ``output``.

    Raises:
        KeyError: the document has no block for ``name``.
    """
    pattern = re.compile(
        rf"(<!-- bench:{re.escape(name)} -->\n).*?(<!-- /bench:{re.escape(name)} -->)", re.S
    )
    if not pattern.search(document):
        raise KeyError(name)
    return pattern.sub(lambda m: m.group(1) + output.rstrip("\n") + "\n" + m.group(2), document)


def _run_child(name: str, argv: list[str], timeout: float | None) -> tuple[str, str]:
    """Run one benchmark in a fresh interpreter, echoing its output; return (failure or "", stdout)."""
    command = [sys.executable, "-m", "bench", name, *argv]
    started = time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603 (our own interpreter and module)
            command, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else ""
        print(out, end="", flush=True)
        return f"timed out after {timeout:g} s", out
    print(done.stdout, end="", flush=True)
    elapsed = time.perf_counter() - started
    print(f"({name}: {elapsed:.1f} s wall)", file=sys.stderr, flush=True)
    return ("" if done.returncode == 0 else f"exit status {done.returncode}"), done.stdout


Runner = Callable[[str, list[str], float | None], tuple[str, str]]


def run_all(
    names: list[str],
    *,
    smoke: bool,
    timeout: float | None,
    write_docs: bool,
    runner: Runner = _run_child,
) -> int:
    """Run ``names`` one by one (``runner``: each in its own interpreter); 1 if any failed, once all ran."""
    failed: list[str] = []
    started = time.perf_counter()
    for name in names:
        print(f"\n<!-- === {name} === -->", flush=True)
        failure, output = runner(name, ["--smoke"] if smoke else [], timeout)
        if failure:
            print(f"benchmark {name} FAILED: {failure}", file=sys.stderr, flush=True)
            failed.append(f"{name} ({failure})")
        elif write_docs:
            try:
                DOCS.write_text(replace_block(DOCS.read_text(), name, output))
            except KeyError:
                print(f"docs/benchmarks.md has no block for {name}", file=sys.stderr)
                failed.append(f"{name} (no block in docs/benchmarks.md)")
    total = time.perf_counter() - started
    print(f"\n{len(names)} benchmarks in {total:.1f} s wall", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    names = available()
    if argv and argv[0] in names:
        name, rest = argv[0], argv[1:]
        if "--write-docs" not in rest:
            return _run_here(name, rest)
        rest = [a for a in rest if a != "--write-docs"]
        if "--smoke" in rest:
            print("--write-docs never writes a smoke run", file=sys.stderr)
            return 2
        failure, output = _run_child(name, rest, None)
        if failure:
            print(f"benchmark {name} FAILED: {failure}", file=sys.stderr)
            return 1
        DOCS.write_text(replace_block(DOCS.read_text(), name, output))
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run every benchmark (or `python -m bench NAME [options]` for one).",
        epilog="benchmarks: " + ", ".join(names),
    )
    parser.add_argument("--list", action="store_true", help="name the benchmarks and stop")
    parser.add_argument("--smoke", action="store_true", help="each benchmark on a tiny size")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one benchmark may take before it counts as failed (default: none; 120 with --smoke)",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="replace each benchmark's block in docs/benchmarks.md with its output",
    )
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(names))
        return 0
    if args.smoke and args.write_docs:
        parser.error("--write-docs never writes a smoke run")
    timeout = args.timeout if args.timeout is not None else (120.0 if args.smoke else None)
    return run_all(names, smoke=args.smoke, timeout=timeout, write_docs=args.write_docs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
