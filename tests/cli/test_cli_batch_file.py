"""The batch file reader: CSV and JSON Lines in, validated pairs out, or an error naming the line."""

from __future__ import annotations

import uuid

import pytest

from assetpay_async.cli._batch_file import BatchFileError, parse_batch

A = "6f1c0b9e-6a4e-4b59-9a1e-2f3f8c1d2e3f"
B = "0d9b3c4a-8e21-4f6b-a1b2-c3d4e5f60718"


def test_csv_with_header_comments_and_blank_lines() -> None:
    text = f"# exported 2026-01-01\ntrade_id,item_id\n\n{A},{B}\n  {B} , {A}  \n"
    lines = parse_batch(text, source="items.csv")
    assert [(x.line, x.trade_id, x.item_id) for x in lines] == [
        (4, uuid.UUID(A), uuid.UUID(B)),
        (5, uuid.UUID(B), uuid.UUID(A)),
    ]


def test_csv_header_in_any_order_with_extra_columns() -> None:
    lines = parse_batch(f"note,itemId,tradeId\nx,{B},{A}\n")
    assert (lines[0].trade_id, lines[0].item_id) == (uuid.UUID(A), uuid.UUID(B))


def test_csv_without_header() -> None:
    assert len(parse_batch(f"{A},{B}\n{B},{A}")) == 2


def test_json_lines_with_either_spelling() -> None:
    text = (
        f'{{"trade_id": "{A}", "item_id": "{B}"}}\n{{"tradeId": "{B}", "itemId": "{A}", "x": 1}}\n'
    )
    lines = parse_batch(text)
    assert [(x.line, str(x.trade_id)) for x in lines] == [(1, A), (2, B)]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (f"{A},{B}\n{A},not-a-uuid\n", 2, "item_id is not a UUID: 'not-a-uuid'"),
        (f"{A},{B}\n\n{A}\n", 3, "expected two columns"),
        (f"trade_id,item_id\n{A},{{{B}}}\n", 2, "item_id is not a UUID"),
        (f'{{"trade_id": "{A}", "item_id": "{B}"}}\n{{"trade_id": "{A}"\n', 2, "not valid JSON"),
        (f'{{"trade_id": "{A}", "item_id": "{B}"}}\n[1, 2]\n', 2, "expected an object"),
        (f'{{"trade_id": "{A}"}}\n', 1, 'expected the keys "trade_id" and "item_id"'),
        (f'{{"trade_id": 5, "item_id": "{B}"}}\n', 1, "trade_id must be a UUID"),
        ("# nothing\n\n", 1, "no trade_id,item_id pairs"),
    ],
)
def test_a_bad_line_is_named(text: str, line: int, fragment: str) -> None:
    with pytest.raises(BatchFileError) as caught:
        parse_batch(text, source="items.txt")
    assert caught.value.line == line
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"items.txt, line {line}: ")


@pytest.mark.parametrize(
    "header", ["trade_id,item_id", "itemId,tradeId,note", "# x\ntrade_id,item_id\n\n"]
)
def test_a_header_only_file_is_an_empty_file(header: str) -> None:
    with pytest.raises(BatchFileError) as caught:
        parse_batch(header + "\n", source="items.csv")
    assert "no trade_id,item_id pairs in the file" in str(caught.value)


@pytest.mark.parametrize("header", ["a,b", "trade,item", "trade_id,itemid", "trade_id;item_id"])
def test_a_wrong_header_is_named_as_a_header(header: str) -> None:
    with pytest.raises(BatchFileError) as caught:
        parse_batch(f"{header}\n{A},{B}\n", source="items.csv")
    assert caught.value.line == 1
    assert f"the header {header!r} does not name the columns trade_id and item_id" in str(
        caught.value
    )
    assert "not a UUID" not in str(caught.value)


def test_a_first_line_of_ids_is_data_not_a_header() -> None:
    with pytest.raises(BatchFileError) as caught:
        parse_batch(f"{A},not-a-uuid\n")
    assert "item_id is not a UUID" in str(caught.value)
