"""Fixtures of the core tests; the helpers they use live in ``tests/support/core.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.core import ScriptedServer, make_token


@pytest.fixture
def token() -> str:
    return make_token()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    """A started :class:`ScriptedServer` on 127.0.0.1 (for tests on pytest-asyncio's ordinary loop)."""
    async with ScriptedServer() as running:
        yield running
