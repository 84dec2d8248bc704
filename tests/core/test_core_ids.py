"""Trade and item ids: a UUID or a canonical UUID string, refused before any request or quota."""

from __future__ import annotations

import uuid

import pytest

from assetpay_async import InvalidRequestError
from assetpay_async._protocol import cancel_request, parse_id
from tests.support.core import ITEM_ID, TRADE_ID, ScriptedServer, make_token, new_session

CANONICAL = "7c9e6679-7425-40de-944b-e07fc1f90ae7"

BAD_IDS: list[object] = [
    "",
    "   ",
    "../secure",
    "..%2Fsecure",
    f"{CANONICAL}%2F..",
    f"{CANONICAL}/../../secure",
    "7c9e6679%2D7425-40de-944b-e07fc1f90ae7",
    "x" * 10_000,
    CANONICAL * 300,
    None,
    42,
    1.5,
    True,
    CANONICAL.encode(),
    ["7c9e6679-7425-40de-944b-e07fc1f90ae7"],
    "\uff17c9e6679-7425-40de-944b-e07fc1f90ae7",  # fullwidth digit seven
    "7c9e6679-7425-40d\u0435-944b-e07fc1f90ae7",  # Cyrillic small ie
    "7c9e6679\u20137425-40de-944b-e07fc1f90ae7",  # en dash
    f"{CANONICAL}\r\n",
    f"{CANONICAL}\r\nX-Injected: 1",
    f" {CANONICAL}",
    f"{CANONICAL}\t",
    f"{{{CANONICAL}}}",
    f"urn:uuid:{CANONICAL}",
    "+c9e6679742540de944be07fc1f90ae7",  # int(..., 16) would take the sign
    "7c9e6679742540de944be07fc1f90_e7",  # ... and the underscore, giving another id
    "7c9e-6679-7425-40de-944b-e07fc1f90ae7",
    "7c9e6679-7425-40de-944b-e07fc1f90ae",
    "7c9e6679-7425-40de-944b-e07fc1f90ae7a",
    "g" * 32,
]


@pytest.mark.parametrize("value", BAD_IDS, ids=lambda v: ascii(v)[:48])
def test_bad_ids_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_id(value, "trade_id")
    assert "trade_id" in str(info.value)
    assert len(str(info.value)) < 200  # a 10 kB id is not echoed back
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        uuid.UUID(CANONICAL),
        CANONICAL,
        CANONICAL.upper(),
        CANONICAL.replace("-", ""),
        CANONICAL.replace("-", "").upper(),
    ],
    ids=["uuid", "canonical", "upper", "compact", "compact-upper"],
)
def test_uuid_forms_are_accepted_and_canonical(value: object) -> None:
    assert parse_id(value, "trade_id") == uuid.UUID(CANONICAL)
    assert str(parse_id(value, "trade_id")) == CANONICAL


def test_invalid_request_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="item_id"):
        parse_id("nope", "item_id")


def test_cancel_path_uses_canonical_lowercase_ids() -> None:
    spec = cancel_request(CANONICAL.upper(), ITEM_ID)
    assert spec.method == "POST"
    assert spec.path == f"/client/trading/withdraw/{CANONICAL}/items/{ITEM_ID}/cancel"
    assert spec.params == ()


@pytest.mark.parametrize(
    ("trade_id", "item_id"),
    [("../secure", ITEM_ID), (TRADE_ID, f"{ITEM_ID}\r\n"), (None, None), (TRADE_ID, 7)],
)
async def test_bad_ids_send_nothing_and_spend_no_quota(
    server: ScriptedServer, trade_id: object, item_id: object
) -> None:
    async with new_session(server.url) as session:
        client = session.client(make_token())
        with pytest.raises(InvalidRequestError):
            await client.cancel_withdrawal_item(trade_id, item_id)  # type: ignore[arg-type]
        assert server.requests == []
        assert session.limiter_stats().granted == 0
