"""Shared fixtures. Feature-specific fixtures live in each test folder's own conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assetpay_async.limiting import default_registry


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    """Every test starts with no limiter state: the registry is process-wide by design."""
    default_registry().clear()
    yield
    default_registry().clear()
