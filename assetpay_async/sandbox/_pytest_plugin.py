"""Pytest plugin (entry point ``assetpay_sandbox``): the ``assetpay_sandbox`` fixture.

Installed with the package, so it loads in every pytest run of its users: it imports nothing heavy until
the fixture is used. The fixture needs pytest-asyncio (auto or strict mode). Configure the sandbox of one
test with a marker:

    @pytest.mark.assetpay_sandbox(algorithm="gcra", burst=2, seed=7)
    async def test_my_code(assetpay_sandbox): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from assetpay_async.sandbox import Sandbox

__all__ = ["assetpay_sandbox"]

_MARKER = "assetpay_sandbox"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): keyword arguments for the Sandbox of the assetpay_sandbox fixture",
    )


async def _sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    from assetpay_async.sandbox import Sandbox  # noqa: PLC0415 - keep the plugin import-light

    marker = request.node.get_closest_marker(_MARKER)
    options: dict[str, Any] = {"seed": 0, **(marker.kwargs if marker else {})}
    async with Sandbox(**options) as sandbox:
        yield sandbox


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - without pytest-asyncio there is no async fixture to offer

    @pytest.fixture
    def assetpay_sandbox() -> None:
        """Needs pytest-asyncio."""
        pytest.skip(
            "the assetpay_sandbox fixture needs pytest-asyncio (pip install pytest-asyncio)"
        )

else:

    @pytest_asyncio.fixture
    async def assetpay_sandbox(  # type: ignore[misc]  # the fallback above has another type
        request: pytest.FixtureRequest,
    ) -> AsyncIterator[Sandbox]:
        """A started `Sandbox` on loopback, closed after the test.

        Seeded with 0 unless the test's ``@pytest.mark.assetpay_sandbox(...)`` marker says otherwise.
        """
        async for sandbox in _sandbox(request):
            yield sandbox
