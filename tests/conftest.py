"""Shared fixtures and settings. Feature-specific fixtures live in each test folder's own conftest.py."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import settings

from assetpay_async._limiting import default_registry

# No per-example deadline: a loaded 2-core CI machine must not turn a slow example into a failure. Under CI
# the examples are derived from each test, so a red run can be reproduced exactly.
settings.register_profile("assetpay", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("assetpay")


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    """Every test starts with no limiter state: the registry is process-wide by design."""
    default_registry().clear()
    yield
    default_registry().clear()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound then released, so connecting is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
