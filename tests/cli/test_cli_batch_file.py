"""The batch file reader: CSV and JSON Lines in, validated pairs out, or an error naming the line."""

from __future__ import annotations

import pytest

from assetpay_async.cli._batch_file import BatchFileError, parse_batch

A = "6f1c0b9e-6a4e-4b59-9a1e-2f3f8c1d2e3f"
B = "0d9b3c4a-8e21-4f6b-a1b2-c3d4e5f60718"


def test_csv_with_header_comments_and_blank_lines() -> None:
    text = f"# exported 2026-01-01\ntrade_id,item_id\n\n{A},{B}\n  {B} , {A}  \n"
    lines = parse_batch(text, source="items.csv")
    assert [(x.line, x.trade_id, x.item_id) for x in lines] == [(4, A, B), (5, B, A)]


def test_csv_header_in_any_order_with_extra_columns() -> None:
    lines = parse_batch(f"note,itemId,tradeId\nx,{B},{A}\n")
    assert (lines[0].trade_id, lines[0].item_id) == (A, B)


def test_refs_may_be_external_ids_and_listing_ids_kept_as_given() -> None:
    csv_lines = parse_batch("order-1042,0010f8d48278ccb8\nOrder-1042,Ext 1\n")
    json_lines = parse_batch('{"trade_id": "Order/7", "item_id": "Ext 1"}\n')
    assert [(x.trade_id, x.item_id) for x in csv_lines + json_lines] == [
        ("order-1042", "0010f8d48278ccb8"),
        ("Order-1042", "Ext 1"),
        ("Order/7", "Ext 1"),
    ]


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
        (f"{A},{B}\n{A},..\n", 2, "item_id cannot be '..'"),
        (f"{A},{B}\n\n{A}\n", 3, "expected two columns"),
        (f"trade_id,item_id\n{A},{'x' * 129}\n", 2, "item_id has 129 characters"),
        (f'{{"trade_id": "{A}", "item_id": "a\\u0000b"}}\n', 1, "item_id contains a control"),
        (f'{{"trade_id": "{A}", "item_id": "{B}"}}\n{{"trade_id": "{A}"\n', 2, "not valid JSON"),
        (f'{{"trade_id": "{A}", "item_id": "{B}"}}\n[1, 2]\n', 2, "expected an object"),
        (f'{{"trade_id": "{A}"}}\n', 1, 'expected the keys "trade_id" and "item_id"'),
        (f'{{"trade_id": 5, "item_id": "{B}"}}\n', 1, "trade_id must be a string"),
        ("# nothing\n\n", 1, "no trade_id,item_id pairs"),
    ],
)
def test_a_bad_line_is_named(text: str, line: int, fragment: str) -> None:
    with pytest.raises(BatchFileError) as caught:
        parse_batch(text, source="items.txt")
    assert caught.value.line == line
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"items.txt, line {line}: ")
