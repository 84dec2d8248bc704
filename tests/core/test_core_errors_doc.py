"""docs/errors.md stays in step with the code: every key the decoder maps and every error class is there."""

from __future__ import annotations

from pathlib import Path

import pytest

import assetpay_async
from assetpay_async._protocol import _BY_CODE, _BY_KEY

DOC = Path(__file__).parents[2] / "docs" / "errors.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_mapped_key_and_code_is_documented_with_its_class(doc: str) -> None:
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    for key, cls in _BY_KEY.items():
        row = next((r for r in rows if r.startswith(f"| `{key}` |")), None)
        assert row is not None, key
        assert f"`{cls.__name__}`" in row, key
    for code, cls in _BY_CODE.items():
        assert any(f"| {code} " in r and f"`{cls.__name__}`" in r for r in rows), code


def test_every_public_error_class_is_documented(doc: str) -> None:
    for name in assetpay_async.__all__:
        if name.endswith("Error"):
            assert f"`{name}`" in doc, name
