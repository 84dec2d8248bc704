"""Footprint: import time of ``assetpay_async`` against ``import aiohttp`` alone, and the installed size.

Import time: a fresh interpreter per run (``python -X importtime``), the median of ``--runs``; each figure
is the cumulative time of the top-level import. Installed size: the wheel built from this checkout
(``pip wheel . --no-deps``, no network), its unpacked size, and the installed files of every distribution
the core and each extra pull in, as recorded by this environment (``importlib.metadata``).

Run: ``nox -s bench -- footprint`` or ``python -m bench footprint [--runs 9]``.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

from ._common import stamp

ROOT = Path(__file__).resolve().parents[1]


def import_us(statement: str, runs: int) -> float:
    """Median cumulative microseconds of ``import a.b``: its top-level line, which includes its parents."""
    target = statement.split()[1]
    samples = []
    for _ in range(runs):
        done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, "-X", "importtime", "-c", statement],
            capture_output=True,
            text=True,
            check=True,
        )
        total = 0
        for line in done.stderr.splitlines():
            fields = line.split("|")
            # Top-level imports have one space before the name; nested ones are indented further.
            if len(fields) == 3 and fields[2].startswith(" ") and fields[2][1:] == target:
                total += int(fields[1])
        samples.append(total)
    return statistics.median(samples)


def closure(name: str, extras: tuple[str, ...] = ()) -> set[str]:
    """Every distribution ``name`` (with ``extras``) needs, itself included, as installed here."""
    seen: set[str] = set()
    todo = [(name, extras)]
    while todo:
        dist_name, wanted = todo.pop()
        key = dist_name.lower().replace("_", "-")
        if key in seen and not wanted:
            continue
        seen.add(key)
        for text in md.distribution(dist_name).requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in ("", *wanted)]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, tuple(req.extras)))
    return seen


def installed_bytes(dist_name: str) -> int:
    files = md.distribution(dist_name).files or []
    total = 0
    for file in files:
        path = Path(str(file.locate()))
        if path.is_file() and "__pycache__" not in path.parts:
            total += path.stat().st_size
    return total


def wheel_size() -> tuple[str, int, int]:
    """Build the wheel of this checkout without network: (file name, bytes, unpacked bytes).

    ``--no-build-isolation`` builds with the backend installed here, so hatchling must be (``nox -s bench``
    installs it).
    """
    if importlib.util.find_spec("hatchling") is None:
        raise SystemExit(
            "footprint: hatchling is not installed in this environment; `pip install hatchling` "
            "(nox -s bench installs it) to build the wheel without network"
        )
    with tempfile.TemporaryDirectory() as where:
        done = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                str(ROOT),
                "--no-deps",
                "--no-build-isolation",
                "-q",
                "-w",
                where,
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"footprint: pip wheel failed:\n{done.stderr}")
        wheel = next(Path(where).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        return wheel.name, wheel.stat().st_size, unpacked


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench footprint", description=__doc__)
    parser.add_argument(
        "--runs", type=int, default=9, help="interpreter starts per import measured"
    )
    parser.add_argument("--smoke", action="store_true", help="one interpreter start per import")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs = 1

    print(stamp("footprint", argv) + f" Import times: median of {args.runs} runs.")
    print()
    print("| import | cumulative import time (ms) |")
    print("|---|---:|")
    rows = {
        "import aiohttp": import_us("import aiohttp", args.runs),
        "import assetpay_async": import_us("import assetpay_async", args.runs),
        "import assetpay_async.sandbox": import_us("import assetpay_async.sandbox", args.runs),
        "import assetpay_async.redis_limiter": import_us(
            "import assetpay_async.redis_limiter", args.runs
        ),
    }
    for name, us in rows.items():
        print(f"| `{name}` | {us / 1000:.1f} |")
    ratio = rows["import assetpay_async"] / rows["import aiohttp"]
    print(f"\n`import assetpay_async` / `import aiohttp` alone: {ratio:.2f}x")

    name, size, unpacked = wheel_size()
    print(f"\nWheel `{name}`: {size / 1024:.0f} KiB, {unpacked / 1024:.0f} KiB unpacked.")

    print("\n| install | distributions | installed size (MiB, without `__pycache__`) |")
    print("|---|---:|---:|")
    for label, extras in [
        ("core", ()),
        ("[redis]", ("redis",)),
        ("[cli]", ("cli",)),
        ("[redis,cli]", ("redis", "cli")),
    ]:
        names = closure("assetpay-async", extras)
        total = sum(installed_bytes(n) for n in names)
        print(
            f"| `assetpay-async{'' if label == 'core' else label}` | {len(names)} | {total / 2**20:.1f} |"
        )
    aiohttp_only = closure("aiohttp")
    total = sum(installed_bytes(n) for n in aiohttp_only)
    print(f"| `aiohttp` alone | {len(aiohttp_only)} | {total / 2**20:.1f} |")
    return 0
