"""Fixtures of the core tests; the helpers they use live in ``core_support.py``."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from core_support import ScriptedServer, make_token


@pytest.fixture
def token() -> str:
    return make_token()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound then released, so connecting is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    """A started :class:`ScriptedServer` on 127.0.0.1 (for tests on pytest-asyncio's ordinary loop)."""
    async with ScriptedServer() as running:
        yield running
