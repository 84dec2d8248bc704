"""The sandbox's merchant scope over raw HTTP: api-key auth, token issuance, /secure/trades, /secure/buy,
early-expired tokens, and both readings of whether the batch read returns clients' trades."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import aiohttp
import jsonschema
import pytest
from yarl import URL

from assetpay_async import Quota
from assetpay_async.sandbox import Sandbox, SandboxBehavior
from assetpay_async.sandbox import _tokens as tokens
from tests.support import openapi_schemas as schemas

HOUR = dt.timedelta(hours=1)
KEY = "ap_test_key_123"
STEAM = "76561198000000042"
TRADE_URL = "https://steamcommunity.com/tradeoffer/new/?partner=39734314&token=Ab3_xY-9"


async def call(
    sb: Sandbox, method: str, path: str, headers: dict[str, str], **kwargs: Any
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, URL(sb.base_url + path, encoded=True), headers=headers, **kwargs
        ) as response,
    ):
        return response.status, await response.json()


def key_header(key: str = KEY) -> dict[str, str]:
    return {"api-key": key}


async def test_authenticate_client_issues_a_token_the_client_scope_accepts() -> None:
    async with Sandbox(seed=1) as sb:
        merchant = sb.add_merchant(api_key=KEY)
        body = {"clientSteamId": STEAM, "clientTradeUrl": TRADE_URL, "clientId": "u-1"}
        status, doc = await call(sb, "POST", "/auth/authenticate-client", key_header(), json=body)
        assert status == 200
        assert set(doc["data"]) == {"token"}
        claims = tokens.verify(doc["data"]["token"], sb._secret_of, sb.clock.unix())
        assert isinstance(claims, tokens.TokenClaims)
        assert (claims.merchant_id, claims.steam_id) == (merchant.id, STEAM)
        status, _ = await call(
            sb, "GET", "/client/trades", {"Authorization": "Bearer " + doc["data"]["token"]}
        )
        assert status == 200
        assert sb.tokens_issued == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"clientTradeUrl": TRADE_URL}, "clientSteamId"),
        ({"clientSteamId": "123", "clientTradeUrl": TRADE_URL}, "clientSteamId"),
        ({"clientSteamId": STEAM, "clientTradeUrl": "https://example.com"}, "clientTradeUrl"),
        ({"clientSteamId": STEAM, "clientTradeUrl": TRADE_URL, "extra": 1}, "extra"),
        ({"clientSteamId": STEAM, "clientTradeUrl": TRADE_URL, "clientId": "x" * 129}, "clientId"),
        (
            {"clientSteamId": STEAM, "clientTradeUrl": TRADE_URL, "clientData": {"kycLevel": -1}},
            "clientData.kycLevel",
        ),
    ],
)
async def test_authenticate_client_validates_its_body(body: dict[str, Any], field: str) -> None:
    async with Sandbox(seed=1) as sb:
        sb.add_merchant(api_key=KEY)
        status, doc = await call(sb, "POST", "/auth/authenticate-client", key_header(), json=body)
        assert status == 400
        assert doc["error"]["key"] == "VALIDATION_FAILED"
        assert field in doc["error"]["fields"]
        assert sb.tokens_issued == 0


@pytest.mark.parametrize(
    ("headers", "key", "code"),
    [({}, "MISSING_API_KEY", 1900), ({"api-key": "ap_wrong"}, "INVALID_API_KEY", 1901)],
)
async def test_the_merchant_scope_refuses_a_missing_or_unknown_api_key(
    headers: dict[str, str], key: str, code: int
) -> None:
    async with Sandbox(seed=1) as sb:
        sb.add_merchant(api_key=KEY)
        for path in ("/secure/trades", "/secure/trades/abc"):
            status, doc = await call(sb, "GET", path, headers)
            assert status == 401
            assert (doc["error"]["key"], doc["error"]["code"]) == (key, code)
        assert not any(r.counted for r in sb.requests)


def _world(sb: Sandbox) -> tuple[Any, Any, Any]:
    merchant = sb.add_merchant(api_key=KEY)
    user = sb.add_user(merchant)
    own = sb.add_trade(user, source="self", age=HOUR, external_id="buy/1,x")
    theirs = sb.add_trade(user, age=HOUR)
    return merchant, own, theirs


@pytest.mark.parametrize("include_clients", [True, False])
async def test_secure_trades_by_refs_under_both_readings(include_clients: bool) -> None:
    behavior = SandboxBehavior(secure_trades_include_clients=include_clients)
    async with Sandbox(seed=1, behavior=behavior) as sb:
        _, own, theirs = _world(sb)
        encoded = urllib.parse.quote(own.external_id or "", safe="")
        path = f"/secure/trades/{encoded},{theirs.id},missing-ref"
        status, doc = await call(sb, "GET", path, key_header())
        assert status == 200
        ids = [t["id"] for t in doc["data"]]
        assert ids == ([own.id, theirs.id] if include_clients else [own.id])
        status, doc = await call(sb, "GET", f"/secure/trades/{theirs.id}", key_header())
        if include_clients:
            assert (status, doc["data"]["id"]) == (200, theirs.id)
        else:
            assert (status, doc["error"]["key"]) == (404, "TRADE_NOT_FOUND")


async def test_secure_trades_by_refs_one_ref_is_one_trade_or_404_and_over_100_is_refused() -> None:
    async with Sandbox(seed=1) as sb:
        _, own, _ = _world(sb)
        status, doc = await call(sb, "GET", f"/secure/trades/{own.id}", key_header())
        assert (status, doc["data"]["id"]) == (200, own.id)
        status, doc = await call(sb, "GET", "/secure/trades/nothing", key_header())
        assert (status, doc["error"]["key"]) == (404, "TRADE_NOT_FOUND")
        refs = ",".join(f"r{i}" for i in range(101))
        status, doc = await call(sb, "GET", f"/secure/trades/{refs}", key_header())
        assert (status, doc["error"]["key"]) == (400, "VALIDATION_FAILED")
        refs = ",".join(f"r{i}" for i in range(100))
        status, doc = await call(sb, "GET", f"/secure/trades/{refs}", key_header())
        assert (status, doc["data"]) == (200, [])


async def test_secure_trades_lists_only_the_merchants_own_trades() -> None:
    async with Sandbox(seed=1) as sb:
        merchant, own, _ = _world(sb)
        status, doc = await call(sb, "GET", "/secure/trades", key_header())
        assert status == 200
        assert [t["id"] for t in doc["data"]["items"]] == [own.id]
        assert doc["data"]["items"][0]["source"] == "self"
        assert sb.totals(merchant, "merchant-read").accepted == 1


async def test_secure_buy_cancels_only_the_merchants_own_buys() -> None:
    async with Sandbox(seed=1) as sb:
        _, own, theirs = _world(sb)
        item = own.items[0].id
        status, doc = await call(
            sb, "POST", f"/secure/buy/{own.id}/items/{item}/cancel", key_header()
        )
        assert (status, doc["data"]["status"]) == (200, "cancelled")
        status, doc = await call(sb, "POST", f"/secure/buy/{own.id}/cancel", key_header())
        assert status == 200
        assert doc["data"]["tradeId"] == own.id
        path = f"/secure/buy/{theirs.id}/items/{theirs.items[0].id}/cancel"
        status, doc = await call(sb, "POST", path, key_header())
        assert (status, doc["error"]["key"]) == (404, "TRADE_NOT_FOUND")
        status, doc = await call(sb, "POST", f"/secure/buy/{theirs.id}/cancel", key_header())
        assert (status, doc["error"]["key"]) == (404, "TRADE_NOT_FOUND")


async def test_merchant_reads_are_counted_in_their_own_quota() -> None:
    async with Sandbox(seed=1) as sb:
        merchant = sb.add_merchant(api_key=KEY, quotas={"merchant-read": Quota(2, 60.0)})
        answers = [(await call(sb, "GET", "/secure/trades", key_header()))[0] for _ in range(3)]
        assert answers == [200, 200, 429]
        assert sb.totals(merchant, "merchant-read").rate_limited == 1


async def test_a_token_told_to_expire_early_is_invalid_and_a_later_one_is_accepted() -> None:
    async with Sandbox(seed=1) as sb:
        merchant = sb.add_merchant(api_key=KEY)
        user = sb.add_user(merchant)
        used, earlier = sb.token(user), sb.token(user, issued_at=sb.clock.wall() - HOUR)
        assert (await call(sb, "GET", "/client/trades", {"Authorization": used}))[0] == 200
        sb.expire_tokens(user)
        for token in (used, earlier):  # the one it saw, and one issued before this second
            status, doc = await call(sb, "GET", "/client/trades", {"Authorization": token})
            assert (status, doc["error"]["key"], doc["error"]["code"]) == (
                401,
                "INVALID_TOKEN",
                1102,
            )
        sb.advance(1.0)
        status, _ = await call(sb, "GET", "/client/trades", {"Authorization": sb.token(user)})
        assert status == 200


@pytest.mark.parametrize(("answer", "code"), [("TOKEN_EXPIRED", 1111), ("INVALID_TOKEN", 1102)])
async def test_an_expired_token_answers_the_key_the_behaviour_picks(answer: str, code: int) -> None:
    async with Sandbox(seed=1, behavior=SandboxBehavior(expired_token_key=answer)) as sb:
        merchant = sb.add_merchant()
        user = sb.add_user(merchant)
        token = sb.token(user)
        sb.advance(dt.timedelta(hours=24))
        status, doc = await call(sb, "GET", "/client/trades", {"Authorization": token})
        assert (status, doc["error"]["key"], doc["error"]["code"]) == (401, answer, code)


def _matches(schema: dict[str, Any], body: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(body)]


async def test_every_merchant_scope_answer_has_the_published_shape() -> None:
    token_schema = {
        "type": "object",
        "required": ["token"],
        "additionalProperties": False,
        "properties": {"token": {"type": "string", "minLength": 1}},
    }
    async with Sandbox(seed=1) as sb:
        _, own, theirs = _world(sb)
        item = own.items[0].id
        body = {"clientSteamId": STEAM, "clientTradeUrl": TRADE_URL}
        calls: list[tuple[dict[str, Any], str, str, dict[str, Any]]] = [
            (token_schema, "POST", "/auth/authenticate-client", {"json": body}),
            (schemas.TRADE, "GET", f"/secure/trades/{own.id}", {}),
            (
                {"type": "array", "items": schemas.TRADE},
                "GET",
                f"/secure/trades/{own.id},{theirs.id}",
                {},
            ),
            (schemas.TRADE_PAGE, "GET", "/secure/trades", {"params": {"limit": "1"}}),
            (schemas.CANCEL_ITEM, "POST", f"/secure/buy/{own.id}/items/{item}/cancel", {}),
            (schemas.CANCEL_TRADE, "POST", f"/secure/buy/{own.id}/cancel", {}),
            (schemas.ERROR, "GET", "/secure/trades/nothing", {}),
            (schemas.ERROR, "POST", "/auth/authenticate-client", {"json": {}}),
        ]
        problems = []
        for schema, method, path, options in calls:
            status, doc = await call(sb, method, path, key_header(), **options)
            assert doc["success"] is (schema is not schemas.ERROR), (method, path, status)
            shape = schemas.success(schema) if doc["success"] else schema
            problems += [f"{method} {path} {status}: {p}" for p in _matches(shape, doc)]
        assert problems == []
