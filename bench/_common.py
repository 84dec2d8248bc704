"""What every benchmark prints above its tables: when, where and with which command it was measured."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from collections.abc import Sequence

import aiohttp


def stamp(name: str, argv: Sequence[str], *, clock: str = "wall time", extra: str = "") -> str:
    """One Markdown line: the date, the command that reproduces the output, the machine and versions.

    Args:
        name: the benchmark.
        argv: its options as given.
        clock: what the numbers are measured on.
        extra: more versions to name.
    """
    command = " ".join(["python -m bench", name, *argv])
    cores = os.cpu_count() or 0
    return (
        f"_Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{command}`: "
        f"{platform.system()} {platform.machine()}, {cores} cores, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}{', ' + extra if extra else ''}; {clock}._"
    )


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """``min / median / max`` of ``values``, each formatted with ``fmt``."""
    low, mid, high = min(values), statistics.median(values), max(values)
    return " / ".join(fmt.format(v) for v in (low, mid, high))


VIRTUAL = "virtual time: the numbers repeat exactly"
