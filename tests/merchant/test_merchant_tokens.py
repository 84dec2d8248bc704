"""Merchant mode's tokens end to end against the sandbox: issuance, cache, renewal, re-issue and replay."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging

import pytest

from assetpay_async import (
    AuthenticationError,
    InvalidRequestError,
    InvalidResponseError,
    MerchantMismatchError,
    RouteGroup,
)
from assetpay_async._merchant import MerchantClient
from assetpay_async.sandbox import SandboxBehavior
from tests.support.core import Reply, ScriptedServer, api_error, new_session, success_body

from ._world import API_KEY, API_SECRET, HOUR, STEAM_ID, TRADE_URL, auth_requests, merchant_world


async def test_with_the_secret_and_merchant_id_tokens_are_minted_locally_without_a_request() -> (
    None
):
    async with merchant_world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        client = w.session.client_for(STEAM_ID, TRADE_URL)
        result = await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert result.item_id == trade.items[0].id
        assert auth_requests(w.sandbox) == 0
        assert [r.path.split("/")[1] for r in w.sandbox.requests] == ["client"]


async def test_without_a_merchant_id_the_first_token_is_issued_and_names_the_merchant() -> None:
    async with merchant_world(merchant_id=False) as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        before = w.session.merchant_id
        client = w.session.client_for(STEAM_ID, TRADE_URL)
        await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert (before, w.session.merchant_id) == (None, w.merchant.id)
        assert client.merchant_id == w.merchant.id
        other = w.sandbox.add_user(w.merchant)
        await w.session.client_for(other.steam_id, other.trade_url).list_trades()
        # The first token came from AssetPay; with the secret, the next one is minted here.
        assert auth_requests(w.sandbox) == 1


async def test_without_the_secret_every_users_token_comes_from_authenticate_client() -> None:
    async with merchant_world(secret=False, merchant_id=False) as w:
        users = [w.user, w.sandbox.add_user(w.merchant), w.sandbox.add_user(w.merchant)]
        for user in users:
            client = w.session.client_for(user.steam_id, user.trade_url)
            await client.list_trades()
            await client.list_trades()  # cached: no second issuance
        assert auth_requests(w.sandbox) == 3
        assert w.sandbox.tokens_issued == 3


async def test_a_token_is_cached_per_user_and_renewed_five_minutes_before_it_expires() -> None:
    async with merchant_world(secret=False) as w:
        client = w.session.client_for(STEAM_ID, TRADE_URL)
        await client.list_trades()
        w.sandbox.advance(dt.timedelta(hours=23, minutes=54))
        await client.list_trades()
        assert auth_requests(w.sandbox) == 1  # 6 minutes left: still good
        w.sandbox.advance(dt.timedelta(minutes=2))
        await client.list_trades()
        assert auth_requests(w.sandbox) == 2  # 4 minutes left: renewed before use
        assert all(r.status == 200 for r in w.sandbox.requests)


async def test_concurrent_callers_share_one_issuance() -> None:
    async with merchant_world(secret=False) as w:
        clients = [w.session.client_for(STEAM_ID, TRADE_URL) for _ in range(20)]
        await asyncio.gather(*(c.list_trades() for c in clients))
        assert auth_requests(w.sandbox) == 1
        w.sandbox.advance(dt.timedelta(hours=24))
        await asyncio.gather(*(c.list_trades() for c in clients))
        assert auth_requests(w.sandbox) == 2
        assert all(r.status == 200 for r in w.sandbox.requests)


@pytest.mark.parametrize("secret", [True, False])
async def test_invalid_token_once_is_reissued_and_the_call_replayed(secret: bool) -> None:
    async with merchant_world(secret=secret) as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR, items=2)
        client = w.session.client_for(STEAM_ID, TRADE_URL)
        await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        w.sandbox.expire_tokens(w.user)
        result = await client.cancel_withdrawal_item(trade.id, trade.items[1].id)
        assert result.item_id == trade.items[1].id
        cancels = [(r.status, r.key) for r in w.sandbox.requests if r.path.endswith("/cancel")]
        assert cancels == [(200, None), (401, "INVALID_TOKEN"), (200, None)]


async def test_an_expired_token_answered_as_token_expired_is_renewed_too() -> None:
    behavior = SandboxBehavior(expired_token_key="TOKEN_EXPIRED")
    async with merchant_world(secret=False, behavior=behavior) as w:
        client = w.session.client_for(STEAM_ID, TRADE_URL)
        await client.list_trades()
        w.sandbox.expire_tokens(w.user)  # answered INVALID_TOKEN: re-issued
        await client.list_trades()
        assert auth_requests(w.sandbox) == 2


async def test_invalid_token_twice_is_a_typed_error_after_one_replay() -> None:
    async with ScriptedServer() as server:
        server.respond = lambda request: api_error(401, "INVALID_TOKEN", 1102)
        async with new_session(
            server.url, api_key=API_KEY, api_secret=API_SECRET, merchant_id="m-1"
        ) as session:
            client = session.client_for(STEAM_ID, TRADE_URL)
            with pytest.raises(AuthenticationError) as caught:
                await client.list_trades()
        assert caught.value.key == "INVALID_TOKEN"
        assert len(server.requests) == 2
        first, second = (r.headers["authorization"] for r in server.requests)
        assert first != second  # the replay carried a new token


async def test_a_refusal_that_a_new_token_cannot_fix_is_not_replayed() -> None:
    async with ScriptedServer() as server:
        server.respond = lambda request: api_error(401, "UNAUTHORIZED", 1100)
        async with new_session(
            server.url, api_key=API_KEY, api_secret=API_SECRET, merchant_id="m-1"
        ) as session:
            with pytest.raises(AuthenticationError):
                await session.client_for(STEAM_ID, TRADE_URL).list_trades()
        assert len(server.requests) == 1


async def test_authenticate_client_refusing_the_api_key_is_a_typed_error_and_nothing_else_is_sent() -> (
    None
):
    async with ScriptedServer() as server:
        server.respond = lambda request: api_error(401, "INVALID_API_KEY", 1901)
        async with new_session(server.url, api_key=API_KEY) as session:
            with pytest.raises(AuthenticationError) as caught:
                await session.client_for(STEAM_ID, TRADE_URL).list_trades()
        assert caught.value.key == "INVALID_API_KEY"
        assert [r.target for r in server.requests] == ["/auth/authenticate-client"]
        assert server.requests[0].headers["api-key"] == API_KEY
        assert "authorization" not in server.requests[0].headers
        assert API_KEY not in str(caught.value)


@pytest.mark.parametrize(
    "data", [{}, {"token": 5}, {"token": "has space"}, ["token"], {"token": ""}]
)
async def test_authenticate_client_without_a_usable_token_is_an_invalid_response(
    data: object,
) -> None:
    async with ScriptedServer() as server:
        server.respond = lambda request: Reply(200, success_body(data))
        async with new_session(server.url, api_key=API_KEY) as session:
            with pytest.raises(InvalidResponseError):
                await session.client_for(STEAM_ID, TRADE_URL).list_trades()
        assert len(server.requests) == 1


async def test_a_token_of_another_merchant_is_refused() -> None:
    async with merchant_world(secret=False, merchant_id=False) as w:
        w.session._merchant_id = "someone-else"  # the session served another merchant first
        assert w.session._auth is not None
        w.session._auth.merchant_id = "someone-else"
        with pytest.raises(MerchantMismatchError):
            await w.session.client_for(STEAM_ID, TRADE_URL).list_trades()


async def test_the_authenticate_body_is_the_users_details() -> None:
    async with ScriptedServer() as server:
        server.respond = lambda request: api_error(401, "INVALID_API_KEY", 1901)
        async with new_session(server.url, api_key=API_KEY) as session:
            client = session.client_for(
                STEAM_ID, TRADE_URL, client_id="user-9", client_data={"kycLevel": 1}
            )
            with pytest.raises(AuthenticationError):
                await client.list_trades()
        request = server.requests[0]
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.body) == {
            "clientSteamId": STEAM_ID,
            "clientTradeUrl": TRADE_URL,
            "clientId": "user-9",
            "clientData": {"kycLevel": 1},
        }


async def test_bad_user_input_fails_before_anything_is_sent() -> None:
    async with merchant_world() as w:
        with pytest.raises(InvalidRequestError):
            w.session.client_for("123", TRADE_URL)
        with pytest.raises(InvalidRequestError):
            w.session.client_for(STEAM_ID, "https://example.com/trade")
        assert w.sandbox.requests == ()


async def test_every_client_of_the_session_shares_the_merchants_limiter() -> None:
    async with merchant_world() as w:
        others = [w.sandbox.add_user(w.merchant) for _ in range(3)]
        trades = [w.sandbox.add_trade(u, age=HOUR) for u in [w.user, *others]]
        clients = [w.session.client_for(u.steam_id, u.trade_url) for u in [w.user, *others]]
        await asyncio.gather(
            *(
                c.cancel_withdrawal_item(t.id, t.items[0].id)
                for c, t in zip(clients, trades, strict=True)
            )
        )
        stats = w.session.limiter_stats(RouteGroup.CANCEL_ITEM)
        assert stats.granted == 4


async def test_secrets_and_tokens_stay_out_of_logs_and_reprs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="assetpay_async")
    async with merchant_world(secret=False, merchant_id=False) as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        client = w.session.client_for(STEAM_ID, TRADE_URL)
        await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        w.sandbox.expire_tokens(w.user)
        await client.list_trades()
        assert isinstance(client, MerchantClient)
        used = await client._source.current()  # the token the calls carried (re-issued once)
        shown = caplog.text + repr(client) + repr(w.session) + repr(w.session.merchant)
        assert "authenticate-client" in caplog.text  # the log did see the issuance
        for secret in (API_KEY, API_SECRET, used.reveal(), used.reveal().split(".")[2]):
            assert secret not in shown


async def test_a_replay_after_invalid_token_takes_no_second_quota_grant() -> None:
    async with merchant_world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        client = w.session.client_for(STEAM_ID, TRADE_URL)
        await client.list_trades()  # the token is minted and used
        w.sandbox.advance(2.0)
        w.sandbox.expire_tokens(w.user)  # refused from now on: the cancel is answered INVALID_TOKEN
        await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert w.session.limiter_stats(RouteGroup.CANCEL_ITEM).granted == 1


async def test_a_first_cancel_before_the_merchant_is_known_spends_that_merchants_quota() -> None:
    """Without ``merchant_id`` the merchant is learnt from the first token: a client's very first call, a
    cancel, must still be paced by that merchant's limiter (not one keyed by an unknown merchant)."""
    async with merchant_world(merchant_id=False) as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        client = w.session.client_for(STEAM_ID, TRADE_URL)
        await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert client.merchant_id == w.merchant.id
        assert w.session.limiter_stats(RouteGroup.CANCEL_ITEM).granted == 1
