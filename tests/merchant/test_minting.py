"""Local minting and end-user checks: pure functions, no server."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from assetpay_async import AssetPaySession, ConfigurationError, InvalidRequestError
from assetpay_async._minting import ApiKey, ApiSecret, end_user, expiry_of, int_claim, mint
from assetpay_async._tokens import merchant_of
from assetpay_async.sandbox._tokens import TokenProblem, verify

from ._world import API_KEY, API_SECRET, STEAM_ID, TRADE_URL

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


def test_a_minted_token_is_the_official_clients_jwt_and_the_server_accepts_it() -> None:
    user = end_user(STEAM_ID, TRADE_URL, client_id="user-1", client_data={"kycLevel": 2})
    token = mint(ApiSecret(API_SECRET), "m-1", user, issued_at=NOW)
    claims = verify("Bearer " + token.reveal(), {"m-1": API_SECRET}.get, NOW + 10)
    assert not isinstance(claims, TokenProblem)
    assert (claims.merchant_id, claims.steam_id, claims.trade_url) == ("m-1", STEAM_ID, TRADE_URL)
    assert (claims.issued_at, claims.expires_at) == (NOW, NOW + 86_400)
    assert merchant_of(token) == "m-1"
    assert expiry_of(token) == NOW + 86_400
    assert int_claim(token, "iat") == NOW


def test_a_token_minted_with_another_secret_or_past_its_exp_is_refused() -> None:
    user = end_user(STEAM_ID, TRADE_URL)
    token = mint(ApiSecret("another-secret"), "m-1", user, issued_at=NOW)
    assert verify(token.reveal(), {"m-1": API_SECRET}.get, NOW) is TokenProblem.INVALID
    good = mint(ApiSecret(API_SECRET), "m-1", user, issued_at=NOW, lifetime=60)
    assert verify(good.reveal(), {"m-1": API_SECRET}.get, NOW + 60) is TokenProblem.EXPIRED


@pytest.mark.parametrize("lifetime", [0, 86_401, 1.5, True])
def test_a_lifetime_outside_one_second_to_a_day_is_refused(lifetime: Any) -> None:
    with pytest.raises(ConfigurationError):
        mint(
            ApiSecret(API_SECRET),
            "m",
            end_user(STEAM_ID, TRADE_URL),
            issued_at=NOW,
            lifetime=lifetime,
        )


@pytest.mark.parametrize(
    ("steam_id", "trade_url", "extra"),
    [
        ("7656119800000004", TRADE_URL, {}),  # 16 digits
        ("86561198000000042", TRADE_URL, {}),
        (76561198000000042, TRADE_URL, {}),
        (STEAM_ID, "https://steamcommunity.com/tradeoffer/new/?partner=1&token=short", {}),
        (STEAM_ID, "http://steamcommunity.com/tradeoffer/new/?partner=1&token=Ab3_xY-9", {}),
        (STEAM_ID, TRADE_URL + "&x=1", {}),
        (STEAM_ID, TRADE_URL, {"client_id": ""}),
        (STEAM_ID, TRADE_URL, {"client_id": "x" * 129}),
        (STEAM_ID, TRADE_URL, {"client_data": {"totalWager": -1}}),
        (STEAM_ID, TRADE_URL, {"client_data": {"kycLevel": True}}),
        (STEAM_ID, TRADE_URL, {"client_data": {"fiatDeposits": "yes"}}),
        (STEAM_ID, TRADE_URL, {"client_data": {"registrationDate": "yesterday"}}),
        (STEAM_ID, TRADE_URL, {"client_data": {"favouriteColour": "red"}}),
        (STEAM_ID, TRADE_URL, {"client_data": ["kycLevel"]}),
    ],
)
def test_bad_end_user_input_is_refused_before_anything_is_sent(
    steam_id: Any, trade_url: Any, extra: dict[str, Any]
) -> None:
    with pytest.raises(InvalidRequestError):
        end_user(steam_id, trade_url, **extra)


def test_good_client_data_is_kept_in_the_claims_and_equal_data_gives_an_equal_key() -> None:
    data = {
        "totalWager": 12.5,
        "registrationDate": "2024-01-01T00:00:00Z",
        "kycHash": "h",
        "kycLevel": 1,
        "fiatDeposits": True,
        "cryptoDeposits": False,
    }
    one = end_user(STEAM_ID, TRADE_URL, client_id="c", client_data=data)
    two = end_user(STEAM_ID, TRADE_URL, client_id="c", client_data=dict(reversed(data.items())))
    assert one == two
    assert one.claims()["clientData"] == data
    assert one.authenticate_body() == {
        "clientSteamId": STEAM_ID,
        "clientTradeUrl": TRADE_URL,
        "clientId": "c",
        "clientData": data,
    }


@pytest.mark.parametrize("value", ["", "   ", "ap_with space", "ap_\x00", 42, "ap_é"])
def test_a_bad_api_key_or_secret_is_a_configuration_error_that_never_shows_it(value: Any) -> None:
    with pytest.raises(ConfigurationError) as key_error:
        ApiKey(value)
    with pytest.raises(ConfigurationError) as secret_error:
        ApiSecret(value)
    for error in (key_error.value, secret_error.value):
        if isinstance(value, str) and value.strip():
            assert value not in str(error)


def test_the_merchants_secrets_never_show_in_a_repr_and_cannot_be_pickled() -> None:
    key, secret = ApiKey(API_KEY), ApiSecret(API_SECRET)
    for shown in (repr(key), str(key), repr(secret), str(secret)):
        assert API_KEY not in shown
        assert API_SECRET not in shown
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_a_session_in_merchant_mode_shows_neither_secret() -> None:
    session = AssetPaySession(tier="verified", api_key=API_KEY, api_secret=API_SECRET)
    assert API_KEY not in repr(session)
    assert API_SECRET not in repr(session)
    assert API_KEY not in repr(session.merchant)
    assert API_SECRET not in repr(vars(session))  # nothing holds them in the clear


def test_an_api_secret_without_an_api_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="api_key"):
        AssetPaySession(tier="verified", api_secret=API_SECRET)


def test_merchant_mode_methods_need_an_api_key() -> None:
    session = AssetPaySession(tier="verified")
    with pytest.raises(ConfigurationError):
        session.client_for(STEAM_ID, TRADE_URL)
    with pytest.raises(ConfigurationError):
        _ = session.merchant
