"""Run benchmarks: ``python -m bench`` runs every one, ``python -m bench NAME [options]`` one, ``--list`` names them.

Each benchmark is a module of this package with a ``main(argv: list[str]) -> int`` function.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def _available() -> list[str]:
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_"))


def _run(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"bench.{name}")
    result: int = module.main(argv)
    return result


def main(argv: list[str]) -> int:
    names = _available()
    if argv and argv[0] in {"-h", "--help", "--list"}:
        print("usage: python -m bench [NAME [options]]\n\nbenchmarks: " + ", ".join(names))
        return 0
    if not argv:
        failed = []
        for name in names:
            print(f"\n=== {name} ===", flush=True)
            if _run(name, []) != 0:
                failed.append(name)
        if failed:
            print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1 if failed else 0
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    return _run(name, rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
