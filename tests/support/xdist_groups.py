"""A pytest plugin for running the suite on every core (``nox -s tests``: ``-n auto --dist loadgroup``).

The tests that drive real processes on the wall clock (``*_processes`` modules, ``redis_server`` and ``slow``
tests) go to one xdist group, so they run one after another on a single worker while the other workers take the
rest: two of them side by side on a 2-core machine starve each other's child processes of the CPU their
timing assertions assume.
"""

from __future__ import annotations

import pytest

WALL_CLOCK_GROUP = "wall-clock-processes"


def _drives_processes(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    name = getattr(module, "__name__", "")
    return (
        name.endswith("_processes")
        or item.get_closest_marker("redis_server") is not None
        or item.get_closest_marker("slow") is not None
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _drives_processes(item):
            item.add_marker(pytest.mark.xdist_group(WALL_CLOCK_GROUP))
