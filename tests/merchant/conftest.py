"""Every async test of the sandbox runs on virtual time: quota pacing, revert delays and retries take no
wall time, and the same schedule comes out every run."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from assetpay_async.testing import VirtualTimeLoop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], VirtualTimeLoop]]:
    return {"virtual-time": VirtualTimeLoop}
