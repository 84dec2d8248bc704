"""Read a batch file of ``trade_id,item_id`` pairs (CSV or JSON Lines) into validated pairs, or fail naming the line.

Pure functions: the command reads the whole file and validates every line before a single request is sent.

CSV: one pair per line, ``trade_id,item_id``; an optional header line naming those two columns (in any order,
extra columns ignored); blank lines and lines starting with ``#`` are skipped. A header with no pair under it is
an empty file; a first line of names that is not such a header is refused as a header, naming it.
JSON Lines: one object per line, ``{"trade_id": "...", "item_id": "..."}`` (``tradeId``/``itemId`` also accepted).
The format is taken from the first meaningful line: ``{`` means JSON Lines.

Merchant mode: a CSV header may also name ``steam_id`` and ``trade_url`` columns (a JSON line the same keys):
each pair is then cancelled for that end user, whose token the API key and secret issue. Both or neither;
every value is checked as AssetPay's schema says before anything is sent.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from typing import Final

import attrs

from assetpay_async._errors import InvalidRequestError
from assetpay_async._minting import end_user
from assetpay_async._protocol import parse_id

__all__ = ["BatchFileError", "BatchLine", "parse_batch"]

_TRADE_KEYS: Final = ("trade_id", "tradeId")
_ITEM_KEYS: Final = ("item_id", "itemId")
_USER_KEYS: Final = ("steam_id", "trade_url")
# Column names carry no digits; refs (externalIds, listing ids) almost always do.
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z_ .;|\t-]*")
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
    trade_id: str
    item_id: str
    steam_id: str | None = None
    """The end user (merchant mode), or None: the command's client token."""
    trade_url: str | None = None


def _meaningful(text: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped


def _uuid(value: object, what: str, source: str, line: int) -> str:
    # The SDK's own rule for refs (an id or an externalId), so a file that passes here never fails later.
    try:
        return parse_id(value.strip() if isinstance(value, str) else value, what)
    except InvalidRequestError as exc:
        raise BatchFileError(source, line, str(exc)) from None


def _user(
    steam_id: object, trade_url: object, source: str, line: int
) -> tuple[str | None, str | None]:
    """The line's end user, checked; (None, None) when the line names none."""
    if steam_id is None and trade_url is None:
        return None, None
    if isinstance(steam_id, str):
        steam_id = steam_id.strip()
    if isinstance(trade_url, str):
        trade_url = trade_url.strip()
    try:
        user = end_user(steam_id, trade_url)
    except InvalidRequestError as exc:
        raise BatchFileError(source, line, str(exc)) from None
    return user.steam_id, user.trade_url


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
                *_user(row.get("steam_id"), row.get("trade_url"), source, number),
            )
        )
    return pairs


def _is_header(cells: list[str]) -> bool:
    names = {c.strip() for c in cells}
    return bool(names & set(_TRADE_KEYS)) and bool(names & set(_ITEM_KEYS))


def _looks_like_names(cells: list[str]) -> bool:
    """A line of column names (no cell is a UUID; every cell is a word without digits), e.g. a header with
    a typo."""
    stripped = [c.strip() for c in cells]
    if any(_UUID_LIKE.fullmatch(c) for c in stripped):
        return False
    return all(_NAME.fullmatch(c) for c in stripped if c) and any(stripped)


def _csv(lines: list[tuple[int, str]], source: str) -> list[BatchLine]:
    trade_col, item_col = 0, 1
    user_cols: tuple[int, int] | None = None
    pairs = []
    for position, (number, text) in enumerate(lines):
        cells = next(csv.reader([text]))
        if position == 0 and _is_header(cells):
            names = [c.strip() for c in cells]
            trade_col = next(names.index(k) for k in _TRADE_KEYS if k in names)
            item_col = next(names.index(k) for k in _ITEM_KEYS if k in names)
            named = [k for k in _USER_KEYS if k in names]
            if len(named) == 1:
                raise BatchFileError(
                    source, number, "a header names steam_id and trade_url together, or neither"
                )
            if named:
                user_cols = (names.index("steam_id"), names.index("trade_url"))
            if len(lines) == 1:
                raise BatchFileError(source, number, f"{_NO_PAIRS} (a header only)")
            continue
        if position == 0 and _looks_like_names(cells):
            raise BatchFileError(
                source,
                number,
                f"the header {text!r} does not name the columns trade_id and item_id "
                "(tradeId/itemId also accepted); if it is a pair of refs, start the file with the "
                "header line trade_id,item_id",
            )
        if len(cells) <= max(trade_col, item_col, *(user_cols or ())):
            wanted = (
                "two columns: trade_id,item_id" if user_cols is None else "the header's columns"
            )
            raise BatchFileError(source, number, f"expected {wanted}")
        user: tuple[str | None, str | None] = (None, None)
        if user_cols is not None:
            user = _user(cells[user_cols[0]], cells[user_cols[1]], source, number)
        pairs.append(
            BatchLine(
                number,
                _uuid(cells[trade_col], "trade_id", source, number),
                _uuid(cells[item_col], "item_id", source, number),
                *user,
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
