"""The sandbox over raw HTTP: tokens, ids, trade reads, quotas per algorithm, the request log."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from assetpay_async import AuthenticationError, Quota
from assetpay_async.sandbox import Sandbox, SandboxBehavior, ServerAlgorithm
from assetpay_async.sandbox import _tokens as tokens
from tests.support.sandbox_world import FAST_CANCEL, world

HOUR = dt.timedelta(hours=1)
UUID = "00000000-0000-4000-8000-000000000000"


async def call(
    sb: Sandbox,
    method: str,
    path: str,
    token: str | None,
    *,
    request_id: str | None = None,
    **kwargs: Any,
) -> tuple[int, Mapping[str, str], Any]:
    headers = {} if token is None else {"Authorization": token}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, sb.base_url + path, headers=headers, **kwargs) as response,
    ):
        body = await response.read()
        doc = await response.json() if response.content_type == "application/json" else body
        return response.status, CIMultiDict(response.headers), doc


def cancel_path(trade_id: str, item_id: str) -> str:
    return f"/client/trading/withdraw/{trade_id}/items/{item_id}/cancel"


# -- tokens ---------------------------------------------------------------------------------------------


async def test_token_has_assetpays_shape_and_both_header_forms_work() -> None:
    async with Sandbox(seed=1) as sb:
        merchant = sb.add_merchant()
        user = sb.add_user(merchant)
        token = sb.token(user)
        claims = tokens.verify(token, lambda m: merchant.secret, sb.clock.unix())
        assert isinstance(claims, tokens.TokenClaims)
        assert (claims.merchant_id, claims.steam_id) == (merchant.id, user.steam_id)
        assert claims.expires_at - claims.issued_at == 24 * 3600
        for header in (f"Bearer {token}", token):
            status, _, doc = await call(sb, "GET", "/client/trades", header)
            assert (status, doc["success"]) == (200, True)


@pytest.mark.parametrize(
    ("make_header", "key", "code"),
    [
        (lambda sb, m, u: None, "MISSING_BEARER", 1108),
        (lambda sb, m, u: "Bearer ", "MISSING_BEARER", 1108),
        (lambda sb, m, u: "Bearer not.a.jwt", "INVALID_TOKEN", 1102),
        (lambda sb, m, u: sb.token(u)[:-2] + "xx", "INVALID_TOKEN", 1102),
        (
            lambda sb, m, u: tokens.encode(
                {"alg": "HS256", "userId": "someone-else"},
                {"merchantId": m.id, "client": {"steamID": u.steam_id}, "iat": 0, "exp": 2**40},
                m.secret,
            ),
            "INVALID_TOKEN",
            1102,
        ),
        (
            lambda sb, m, u: tokens.encode(
                {"alg": "none", "userId": m.id},
                {"merchantId": m.id, "client": {"steamID": u.steam_id}, "iat": 0, "exp": 2**40},
                m.secret,
            ),
            "INVALID_TOKEN",
            1102,
        ),
        (
            lambda sb, m, u: sb.token(u, issued_at=sb.clock.wall() - dt.timedelta(hours=25)),
            "TOKEN_EXPIRED",
            1111,
        ),
    ],
    ids=[
        "absent",
        "empty-bearer",
        "malformed",
        "bad-signature",
        "merchant-mismatch",
        "alg-none",
        "expired",
    ],
)
async def test_token_refusals(make_header: Any, key: str, code: int) -> None:
    async with Sandbox(seed=1) as sb:
        merchant = sb.add_merchant()
        user = sb.add_user(merchant)
        status, _, doc = await call(sb, "GET", "/client/trades", make_header(sb, merchant, user))
        assert status == 401
        assert (doc["error"]["key"], doc["error"]["code"]) == (key, code)
        assert sb.requests[-1].merchant_id is None
        assert not sb.requests[-1].counted


async def test_token_expires_when_the_clock_moves_and_the_sdk_raises_authentication_error() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        w.sandbox.advance(dt.timedelta(hours=24))
        with pytest.raises(AuthenticationError) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert caught.value.key == "TOKEN_EXPIRED"


async def test_token_of_an_unseen_steam_user_is_a_new_user_with_no_trades() -> None:
    async with Sandbox(seed=1) as sb:
        merchant = sb.add_merchant()
        token = tokens.encode(
            {"alg": "HS256", "userId": merchant.id},
            {
                "merchantId": merchant.id,
                "client": {"steamID": "76561198000000001"},
                "iat": 0,
                "exp": 2**40,
            },
            merchant.secret,
        )
        status, _, doc = await call(sb, "GET", "/client/trades", f"Bearer {token}")
        assert (status, doc["data"]) == (200, {"items": [], "nextCursor": None})


async def test_the_request_log_and_reprs_never_hold_the_token_or_secret() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        await call(w.sandbox, "GET", "/client/trades", "Bearer " + w.token)
        text = repr(w.sandbox.requests) + repr(w.sandbox) + repr(w.merchant)
        assert w.token not in text
        assert w.token.split(".")[2] not in text
        assert w.merchant.secret not in text


# -- ids ------------------------------------------------------------------------------------------------


async def test_malformed_ids_are_validation_failed_with_fields() -> None:
    behavior = SandboxBehavior(validation_status=422)
    async with world(behavior=behavior) as w:
        status, _, doc = await call(w.sandbox, "POST", cancel_path("%20", "x" * 129), w.token)
        assert status == 422
        assert doc["error"]["key"] == "VALIDATION_FAILED"
        assert doc["error"]["code"] == 1001
        assert doc["error"]["fields"] == {
            "tradeId": "must not be empty",
            "itemId": "must be 1 to 128 characters",
        }


async def test_the_request_id_sent_is_echoed_and_logged() -> None:
    async with world() as w:
        status, headers, doc = await call(
            w.sandbox,
            "GET",
            "/client/trades",
            w.token,
            request_id="req-7",
        )
        assert (status, doc["requestId"], headers["X-Request-Id"]) == (200, "req-7", "req-7")
        assert w.sandbox.requests[-1].request_id == "req-7"


# -- trade reads ----------------------------------------------------------------------------------------


async def test_get_trade_has_the_documented_shape() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, items=2, age=HOUR, external_id="order-1")
        status, _, doc = await call(w.sandbox, "GET", f"/client/trades/{trade.id}", w.token)
        assert status == 200
        data = doc["data"]
        assert data["id"] == trade.id
        assert data["type"] == "withdraw"
        assert data["game"] == "730"
        assert data["merchantId"] == w.merchant.id
        assert data["clientSteamID"] == w.user.steam_id
        assert data["externalId"] == "order-1"
        assert data["status"] == "active"
        assert data["createdAt"] == "2025-12-31T23:00:00.000Z"  # DEFAULT_START - 1 h
        assert [it["appid"] for it in data["items"]] == [730, 730]
        assert all(it["status"] == "active" for it in data["items"])


async def test_get_trade_of_another_user_and_unknown_trade() -> None:
    async with world() as w:
        other = w.sandbox.add_trade(w.sandbox.add_user(w.merchant))
        status, _, doc = await call(w.sandbox, "GET", f"/client/trades/{other.id}", w.token)
        assert (status, doc["error"]["key"]) == (403, "FORBIDDEN")
        status, _, doc = await call(w.sandbox, "GET", f"/client/trades/{UUID}", w.token)
        assert (status, doc["error"]["key"]) == (404, "TRADE_NOT_FOUND")


async def test_get_trade_route_can_be_absent() -> None:
    async with world(behavior=SandboxBehavior(trade_by_id_route=False)) as w:
        trade = w.sandbox.add_trade(w.user)
        status, _, body = await call(w.sandbox, "GET", f"/client/trades/{trade.id}", w.token)
        assert status == 404
        assert not isinstance(body, dict)


async def test_list_trades_pages_newest_first_with_filters() -> None:
    async with world() as w:
        made = [w.sandbox.add_trade(w.user, age=dt.timedelta(minutes=m)) for m in range(5)]
        rust = w.sandbox.add_trade(w.user, game="rust", age=dt.timedelta(minutes=10))
        deposit = w.sandbox.add_trade(w.user, type="deposit", age=dt.timedelta(minutes=20))
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"limit": "2", "type": "withdraw", "game": "730"}
            if cursor:
                params["cursor"] = cursor
            status, _, doc = await call(w.sandbox, "GET", "/client/trades", w.token, params=params)
            assert status == 200
            seen += [t["id"] for t in doc["data"]["items"]]
            cursor = doc["data"]["nextCursor"]
            if cursor is None:
                break
        assert seen == [t.id for t in made]  # age 0 first: newest first
        # Without ``game`` AssetPay lists CS2 only (its default is 730): the Rust trade is left out.
        _, _, doc = await call(w.sandbox, "GET", "/client/trades", w.token)
        assert [t["id"] for t in doc["data"]["items"]] == [*(t.id for t in made), deposit.id]
        assert "status" not in doc["data"]["items"][-1]["items"][0]  # deposit items carry no status
        params = {"game": "252490"}
        _, _, doc = await call(w.sandbox, "GET", "/client/trades", w.token, params=params)
        assert [t["id"] for t in doc["data"]["items"]] == [rust.id]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"type": "swap"}, "type"),
     ({"game": "440"}, "game"), ({"cursor": "nope"}, "cursor")],
)  # fmt: skip
async def test_list_trades_validation(params: dict[str, str], field: str) -> None:
    async with world() as w:
        status, _, doc = await call(w.sandbox, "GET", "/client/trades", w.token, params=params)
        assert status == 400
        assert doc["error"]["key"] == "VALIDATION_FAILED"
        assert list(doc["error"]["fields"]) == [field]


async def test_trades_read_quota_of_an_unverified_merchant_is_30_a_minute() -> None:
    async with Sandbox(seed=1) as sb:
        user = sb.add_user(sb.add_merchant("unverified"))
        token = sb.token(user)
        statuses = [(await call(sb, "GET", "/client/trades", token))[0] for _ in range(31)]
        assert statuses == [200] * 30 + [429]
        totals = sb.totals(user.merchant_id, "trades-read")
        assert (totals.accepted, totals.rate_limited) == (30, 1)


# -- quotas, per algorithm, over loopback on virtual time ------------------------------------------------


@pytest.mark.parametrize("algorithm", list(ServerAlgorithm))
async def test_a_burst_is_cut_at_n_with_retry_after(algorithm: ServerAlgorithm) -> None:
    async with world(Quota(5, 3.0), algorithm=algorithm, revert_delay=1e6) as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        path = cancel_path(trade.id, trade.items[0].id)
        answers = await asyncio.gather(*(call(w.sandbox, "POST", path, w.token) for _ in range(7)))
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [200] * 5 + [429] * 2
        refused = [(h, d) for s, h, d in answers if s == 429]
        assert all(
            d["error"]["key"] == "RATE_LIMITED" and d["error"]["code"] == 1005 for _, d in refused
        )
        # Honest, in whole seconds; the sliding counter may ask for more than one window.
        assert all(1 <= int(h["Retry-After"]) <= 6 for h, _ in refused)
        assert w.sandbox.totals(w.merchant).rate_limited == 2


@pytest.mark.parametrize("algorithm", list(ServerAlgorithm))
async def test_the_sdk_paced_to_the_quota_draws_no_429(algorithm: ServerAlgorithm) -> None:
    async with world(FAST_CANCEL, algorithm=algorithm, burst=2) as w:
        trade = w.sandbox.add_trade(w.user, items=150, age=HOUR)
        client = w.session.client(w.token)
        await asyncio.gather(
            *(client.cancel_withdrawal_item(trade.id, it.id) for it in trade.items)
        )
        totals = w.sandbox.totals(w.merchant)
        assert (totals.accepted, totals.rate_limited) == (150, 0)
        assert w.sandbox.max_in_window(w.merchant) <= 60
        assert 0 < w.sandbox.quota_share(w.merchant) <= 1.0


async def test_retry_after_can_be_switched_off() -> None:
    async with world(Quota(1, 60.0), behavior=SandboxBehavior(retry_after=False)) as w:
        for _ in range(2):
            status, headers, _ = await call(w.sandbox, "POST", cancel_path(UUID, UUID), w.token)
        assert status == 429
        assert "Retry-After" not in headers


async def test_quota_is_shared_by_every_token_of_the_merchant() -> None:
    async with world(Quota(2, 60.0)) as w:
        other = w.sandbox.token(w.sandbox.add_user(w.merchant))
        statuses = [
            (await call(w.sandbox, "GET", f"/client/trades/{UUID}", tok))[0]
            for tok in (w.token, other)
        ]
        for tok in (w.token, other, other):
            status, _, _ = await call(w.sandbox, "POST", cancel_path(UUID, UUID), tok)
            statuses.append(status)
        assert statuses == [404, 404, 404, 404, 429]  # reads have their own quota
