"""Trade and item refs: AssetPay's ids or the merchant's externalIds, sent as given in one encoded segment,
and refused before any request or quota when they cannot be a ref."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Callable

import pytest

from assetpay_async import InvalidRequestError
from assetpay_async import _merchant_proto as mp
from assetpay_async._protocol import (
    cancel_item_call,
    cancel_request,
    cancel_trade_call,
    cancel_trade_request,
    canonical_id,
    get_trade_call,
    get_trade_request,
    parse_id,
)
from assetpay_async._refs import check_segment
from tests.support.core import (
    ITEM_ID,
    TRADE_ID,
    Reply,
    ScriptedServer,
    make_token,
    new_session,
    success_body,
)

CANONICAL = "7c9e6679-7425-40de-944b-e07fc1f90ae7"

BAD_REFS: list[object] = [
    "",
    "   ",
    "\t\n",
    "\u3000",  # ideographic space: whitespace only
    ".",
    "..",
    "x" * 129,
    CANONICAL * 300,
    None,
    42,
    1.5,
    True,
    CANONICAL.encode(),
    [CANONICAL],
    f"{CANONICAL}\r\n",
    f"{CANONICAL}\r\nX-Injected: 1",
    f"{CANONICAL}\t",
    "a\x00b",
    "a\x7fb",
    "a\x85b",  # C1 control (NEL)
    "a\ud800b",  # a lone surrogate cannot be UTF-8 encoded
]


@pytest.mark.parametrize("value", BAD_REFS, ids=lambda v: ascii(v)[:48])
def test_bad_refs_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_id(value, "trade_id")
    assert "trade_id" in str(info.value)
    assert len(str(info.value)) < 200  # a 10 kB ref is not echoed back
    assert "\n" not in str(info.value)
    assert "\r" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (uuid.UUID(CANONICAL), CANONICAL),
        (uuid.UUID(CANONICAL.upper()), CANONICAL),  # a UUID object renders lowercase
        (CANONICAL, CANONICAL),
        (CANONICAL.upper(), CANONICAL.upper()),  # a string is sent as given
        (CANONICAL.replace("-", ""), CANONICAL.replace("-", "")),
        ("0010f8d48278ccb8", "0010f8d48278ccb8"),  # a CS2 listing id
        ("order-1042", "order-1042"),
        ("Order-1042", "Order-1042"),  # externalIds are case-sensitive
        ("x" * 128, "x" * 128),
        (" padded ", " padded "),
        ("...", "..."),
    ],
)
def test_refs_are_kept_as_given(value: object, sent: str) -> None:
    assert parse_id(value, "item_id") == sent


@pytest.mark.parametrize(
    ("ref", "segment"),
    [
        ("order-1042", "order-1042"),
        ("a/b", "a%2Fb"),
        ("../secure", "..%2Fsecure"),
        ("100%", "100%25"),
        ("%2F", "%252F"),
        ("a b", "a%20b"),
        ("a+b", "a%2Bb"),
        ("!$&'()*,;=:@", "%21%24%26%27%28%29%2A%2C%3B%3D%3A%40"),
        ("q?x#y", "q%3Fx%23y"),
        ("\u20ac", "%E2%82%AC"),
        ("A-Z_a.z~0", "A-Z_a.z~0"),
    ],
)
def test_a_ref_is_one_segment_with_everything_but_unreserved_encoded(
    ref: str, segment: str
) -> None:
    assert canonical_id(ref, "trade_id") == segment
    assert urllib.parse.unquote(segment) == ref


def test_every_route_sends_refs_as_single_segments() -> None:
    assert (
        cancel_request("ext/1", "Item 2").path
        == "/client/trading/withdraw/ext%2F1/items/Item%202/cancel"
    )
    assert cancel_trade_request("ext/1").path == "/client/trading/withdraw/ext%2F1/cancel"
    assert get_trade_request("ext/1").path == "/client/trades/ext%2F1"
    spec = cancel_request(CANONICAL.upper(), ITEM_ID)
    assert spec.path == f"/client/trading/withdraw/{CANONICAL.upper()}/items/{ITEM_ID}/cancel"


def test_invalid_request_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="item_id"):
        parse_id("", "item_id")


@pytest.mark.parametrize(
    ("trade_ref", "item_ref", "target"),
    [
        (
            "order/1042",
            "ext item%1",
            "/client/trading/withdraw/order%2F1042/items/ext%20item%251/cancel",
        ),
        (
            "!$&'()*+,;=:@",
            "0010f8d48278ccb8",
            "/client/trading/withdraw/%21%24%26%27%28%29%2A%2B%2C%3B%3D%3A%40"
            "/items/0010f8d48278ccb8/cancel",
        ),
        ("%2E%2E", "\u20ac", "/client/trading/withdraw/%252E%252E/items/%E2%82%AC/cancel"),
        ("A~b", "Ext-1", "/client/trading/withdraw/A~b/items/Ext-1/cancel"),
    ],
)
async def test_the_server_receives_exactly_the_encoded_path(
    server: ScriptedServer, trade_ref: str, item_ref: str, target: str
) -> None:
    """Over a real socket: aiohttp/yarl neither decodes an escape back nor encodes one twice."""
    server.script(
        Reply(
            200,
            success_body({"tradeId": str(TRADE_ID), "itemId": item_ref, "status": "cancelled"}),
        )
    )
    async with new_session(server.url) as session:
        result = await session.client(make_token()).cancel_withdrawal_item(trade_ref, item_ref)
    assert [r.target for r in server.requests] == [target]
    assert result.item_id == item_ref


@pytest.mark.parametrize(
    ("trade_id", "item_id"),
    [("..", ITEM_ID), (TRADE_ID, f"{ITEM_ID}\r\n"), (None, None), (TRADE_ID, 7), ("", ITEM_ID)],
)
async def test_bad_refs_send_nothing_and_spend_no_quota(
    server: ScriptedServer, trade_id: object, item_id: object
) -> None:
    async with new_session(server.url) as session:
        client = session.client(make_token())
        with pytest.raises(InvalidRequestError):
            await client.cancel_withdrawal_item(trade_id, item_id)  # type: ignore[arg-type]
        bad = trade_id if item_id == ITEM_ID else item_id  # the ref at fault, for the one-ref calls
        with pytest.raises(InvalidRequestError):
            await client.cancel_withdrawal_trade(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError):
            await client.get_trade(bad)  # type: ignore[arg-type]
        assert server.requests == []
        assert session.limiter_stats().granted == 0
        assert session.limiter_stats("trades-read").granted == 0


_CALLS_OF_ONE_REF: list[Callable[[object], object]] = [
    lambda ref: cancel_item_call(ref, ITEM_ID),
    lambda ref: cancel_item_call(TRADE_ID, ref),
    cancel_trade_call,
    get_trade_call,
    lambda ref: mp.buy_cancel_item_call(ref, ITEM_ID),
    lambda ref: mp.buy_cancel_item_call(TRADE_ID, ref),
    mp.buy_cancel_call,
]


@pytest.mark.parametrize("value", BAD_REFS, ids=lambda v: ascii(v)[:48])
def test_every_call_object_refuses_a_bad_ref_before_anything_is_built(value: object) -> None:
    """The one-regex fast path of the call builders (issue 23) checks what ``parse_id`` checks."""
    for build in _CALLS_OF_ONE_REF:
        with pytest.raises(InvalidRequestError):
            build(value)


@pytest.mark.parametrize(
    "value",
    [uuid.UUID(CANONICAL), CANONICAL.upper(), "0010f8d48278ccb8", "a/b", "...", "\u20ac", " x "],
    ids=ascii,
)
def test_a_call_carries_the_ref_as_sent_and_its_segment_in_the_path(value: object) -> None:
    ref, segment = parse_id(value, "trade_id"), canonical_id(value, "trade_id")
    assert check_segment(value, "trade_id") == (ref, segment)
    call = cancel_item_call(value, value)
    assert (call.trade_ref, call.item_ref) == (ref, ref)
    assert call.spec.path == f"/client/trading/withdraw/{segment}/items/{segment}/cancel"
    buy = mp.buy_cancel_item_call(value, value)
    assert (buy.trade_ref, buy.item_ref) == (ref, ref)
    assert buy.spec.path == f"/secure/buy/{segment}/items/{segment}/cancel"
    assert get_trade_call(value).spec.path == f"/client/trades/{segment}"
    assert get_trade_call(value).trade_ref == ref
