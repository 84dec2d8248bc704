"""Read a batch file of ``trade_id,item_id`` pairs (CSV or JSON Lines) into validated pairs, or fail naming the line.

Pure functions: the command reads the whole file and validates every line before a single request is sent.

CSV: one pair per line, ``trade_id,item_id``; an optional header line naming those two columns (in any order,
extra columns ignored); blank lines and lines starting with ``#`` are skipped. A header with no pair under it is
an empty file; a first line of names that is not such a header is refused as a header, naming it.
JSON Lines: one object per line, ``{"trade_id": "...", "item_id": "..."}`` (``tradeId``/``itemId`` also accepted).
The format is taken from the first meaningful line: ``{`` means JSON Lines.
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Final

import attrs

from assetpay_async._errors import InvalidRequestError
from assetpay_async._protocol import parse_id

__all__ = ["BatchFileError", "BatchLine", "parse_batch"]

_TRADE_KEYS: Final = ("trade_id", "tradeId")
_ITEM_KEYS: Final = ("item_id", "itemId")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_ .;|\t-]*")
_UUID_LIKE: Final = re.compile(r"[0-9a-fA-F-]{32,36}")
_NO_PAIRS: Final = "no trade_id,item_id pairs in the file"


class BatchFileError(ValueError):
    """The batch file is malformed; ``line`` is 1-based.

    Attributes:
        source: the file's name (``-`` for stdin).
        line: the line at fault.
        reason: what is wrong with it.
    """

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}, line {line}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


@attrs.frozen
class BatchLine:
    """One pair of the batch and the line it came from."""

    line: int
    trade_id: uuid.UUID
    item_id: uuid.UUID


def _meaningful(text: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped


def _uuid(value: object, what: str, source: str, line: int) -> uuid.UUID:
    # The SDK's own rule (strict 8-4-4-4-12 or 32 hex digits), so a file that passes here never fails later.
    try:
        return parse_id(value.strip() if isinstance(value, str) else value, what)
    except InvalidRequestError as exc:
        raise BatchFileError(source, line, str(exc)) from None


def _first_key(row: dict[str, object], keys: Sequence[str]) -> object:
    return next((row[k] for k in keys if k in row), None)


def _json_lines(lines: list[tuple[int, str]], source: str) -> list[BatchLine]:
    pairs = []
    for number, text in lines:
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BatchFileError(source, number, f"not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise BatchFileError(
                source, number, 'expected an object {"trade_id": ..., "item_id": ...}'
            )
        trade, item = _first_key(row, _TRADE_KEYS), _first_key(row, _ITEM_KEYS)
        if trade is None or item is None:
            raise BatchFileError(source, number, 'expected the keys "trade_id" and "item_id"')
        pairs.append(
            BatchLine(
                number,
                _uuid(trade, "trade_id", source, number),
                _uuid(item, "item_id", source, number),
            )
        )
    return pairs


def _is_header(cells: list[str]) -> bool:
    names = {c.strip() for c in cells}
    return bool(names & set(_TRADE_KEYS)) and bool(names & set(_ITEM_KEYS))


def _looks_like_names(cells: list[str]) -> bool:
    """A line of column names (no cell is a UUID; every cell is a word), e.g. a header with a typo."""
    stripped = [c.strip() for c in cells]
    if any(_UUID_LIKE.fullmatch(c) for c in stripped):
        return False
    return all(_NAME.fullmatch(c) for c in stripped if c) and any(stripped)


def _csv(lines: list[tuple[int, str]], source: str) -> list[BatchLine]:
    trade_col, item_col = 0, 1
    pairs = []
    for position, (number, text) in enumerate(lines):
        cells = next(csv.reader([text]))
        if position == 0 and _is_header(cells):
            names = [c.strip() for c in cells]
            trade_col = next(names.index(k) for k in _TRADE_KEYS if k in names)
            item_col = next(names.index(k) for k in _ITEM_KEYS if k in names)
            if len(lines) == 1:
                raise BatchFileError(source, number, f"{_NO_PAIRS} (a header only)")
            continue
        if position == 0 and _looks_like_names(cells):
            raise BatchFileError(
                source,
                number,
                f"the header {text!r} does not name the columns trade_id and item_id "
                "(tradeId/itemId also accepted)",
            )
        if len(cells) <= max(trade_col, item_col):
            raise BatchFileError(source, number, "expected two columns: trade_id,item_id")
        pairs.append(
            BatchLine(
                number,
                _uuid(cells[trade_col], "trade_id", source, number),
                _uuid(cells[item_col], "item_id", source, number),
            )
        )
    return pairs


def parse_batch(text: str, *, source: str = "-") -> list[BatchLine]:
    """Every pair of a batch file, validated; raises on the first bad line.

    Args:
        text: the file's whole content.
        source: its name, for error messages.

    Raises:
        BatchFileError: a line that is not a pair of UUIDs (the message names the line), or an empty file.
    """
    lines = list(_meaningful(text))
    if not lines:
        raise BatchFileError(source, 1, _NO_PAIRS)
    if lines[0][1].startswith("{"):
        return _json_lines(lines, source)
    return _csv(lines, source)
