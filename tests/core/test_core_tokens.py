"""Client tokens: the merchant read from the JWT without its secret, and a token that never shows itself."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import pickle

import pytest

from assetpay_async import (
    AssetPaySession,
    InvalidRequestError,
    MerchantMismatchError,
    MerchantTier,
)
from assetpay_async._tokens import SecretToken, merchant_of, token_merchant
from tests.support.core import MERCHANT, make_token


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_merchant_from_the_payload() -> None:
    assert merchant_of(SecretToken(make_token("m-payload"))) == "m-payload"


def test_merchant_from_the_header_when_the_payload_has_none() -> None:
    assert merchant_of(SecretToken(make_token(None, header_user_id="m-header"))) == "m-header"


def test_disagreeing_claims_are_refused_without_showing_the_token() -> None:
    token = make_token("m-payload", header_user_id="m-header")
    with pytest.raises(MerchantMismatchError) as info:
        merchant_of(SecretToken(token))
    assert "m-payload" in str(info.value)
    assert "m-header" in str(info.value)
    assert token not in str(info.value)
    assert SecretToken(token).fingerprint in str(info.value)


@pytest.mark.parametrize(
    "token",
    [
        "opaque-token-1234567890",
        "a.b.c",
        "x.y",
        f"{_segment(b'[1]')}.{_segment(b'[2]')}.sig",  # JSON, but not objects
        f"{_segment(b'{}')}.{_segment(b'not json')}.sig",
        f"{_segment(b'{}')}.{_segment(b'[' * 5000)}.sig",  # nesting deep enough for a RecursionError
        f"{_segment(b'{}')}.{_segment(json.dumps({'merchantId': 7}).encode())}.sig",
        f"{_segment(b'{}')}.{_segment(json.dumps({'merchantId': ''}).encode())}.sig",
    ],
    ids=[
        "opaque",
        "abc",
        "two-parts",
        "arrays",
        "bad-json",
        "deep",
        "int-claim",
        "empty",
    ],
)
def test_opaque_tokens_name_no_merchant(token: str) -> None:
    assert merchant_of(SecretToken(token)) is None


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "BEARER   ", "  Bearer "])
def test_bearer_prefix_is_stripped(prefix: str) -> None:
    token = make_token()
    assert SecretToken(prefix + token).reveal() == token
    assert SecretToken(prefix + token) == SecretToken(token)


def test_a_secret_token_wraps_another_without_change() -> None:
    token = make_token()
    assert SecretToken(SecretToken(token)).reveal() == token


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "Bearer ",
        None,
        123,
        "has space",
        "abc\r\nX-Injected: 1",
        "tab\there",
        "x" * 20_000,
        "abc\x0bdef",
        "abc\x0cdef",
        "abc\x7fdef",
        "abc\x1bdef",
        "abc\x85def",
        "\u00e9t\u00e9.\u00e9t\u00e9.sig",
        "abc\u20acdef",
        "abc\x0b",
    ],
    ids=[
        "empty",
        "blank",
        "bearer-only",
        "none",
        "int",
        "space",
        "crlf",
        "tab",
        "huge",
        "vt",
        "ff",
        "del",
        "esc",
        "c1-nel",
        "latin-1",
        "euro",
        "trailing-vt",
    ],
)
def test_unusable_tokens_are_refused_without_echoing_them(value: object) -> None:
    with pytest.raises(InvalidRequestError) as info:
        SecretToken(value)  # type: ignore[arg-type]
    if isinstance(value, str) and value.strip():
        assert value.strip() not in str(info.value)


def test_fingerprint_is_a_short_sha256_prefix() -> None:
    token = make_token()
    expected = "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:8]
    assert SecretToken(token).fingerprint == expected
    assert SecretToken(make_token(steam_id="other")).fingerprint != expected


def test_repr_str_and_format_never_reveal_the_token() -> None:
    token = make_token()
    secret = SecretToken(token)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature part
        assert secret.fingerprint in text


def test_a_token_cannot_be_pickled_or_copied() -> None:
    secret = SecretToken(make_token())
    with pytest.raises(TypeError) as info:
        pickle.dumps(secret)
    assert secret.reveal() not in str(info.value)
    with pytest.raises(TypeError):
        copy.copy(secret)


# -- the session's merchant ---------------------------------------------------------------------------


def _session(**kwargs: object) -> AssetPaySession:
    # Never opened (no HTTP session exists until a coroutine needs one), so nothing to close.
    return AssetPaySession(tier=MerchantTier.VERIFIED, **kwargs)  # type: ignore[arg-type]


def test_the_first_token_names_the_session_merchant() -> None:
    session = _session()
    before = session.merchant_id
    client = session.client(make_token())
    assert (before, client.merchant_id, session.merchant_id) == (None, MERCHANT, MERCHANT)
    assert session.client(make_token(steam_id="another-user")).merchant_id == MERCHANT


def test_a_token_of_another_merchant_is_refused() -> None:
    session = _session()
    session.client(make_token())
    other = make_token("merchant-7")
    with pytest.raises(MerchantMismatchError, match="one AssetPaySession per merchant") as info:
        session.client(other)
    assert other not in str(info.value)


def test_a_token_of_another_merchant_than_the_configured_one_is_refused() -> None:
    with pytest.raises(MerchantMismatchError):
        _session(merchant_id="merchant-7").client(make_token())


def test_a_self_contradicting_token_is_refused() -> None:
    with pytest.raises(MerchantMismatchError):
        _session().client(make_token(MERCHANT, header_user_id="merchant-7"))


def test_an_opaque_token_needs_merchant_id() -> None:
    with pytest.raises(InvalidRequestError, match="merchant_id=") as info:
        _session().client("opaque-token-1234567890")
    assert "opaque-token-1234567890" not in str(info.value)
    client = _session(merchant_id="merchant-7").client("opaque-token-1234567890")
    assert client.merchant_id == "merchant-7"


def test_a_merchant_mismatch_is_also_a_value_error() -> None:
    assert issubclass(MerchantMismatchError, ValueError)


def test_token_merchant_is_the_one_rule_for_a_sessions_tokens() -> None:
    """``session.client`` and merchant mode's issued tokens share it: a JWT's merchant is taken when none is
    known and must match one that is; an opaque token needs a known merchant. Only fingerprints are shown."""
    jwt = SecretToken(make_token(MERCHANT))
    opaque = SecretToken("opaque-token-value")
    assert token_merchant(jwt, None, what="client token") == MERCHANT
    assert token_merchant(jwt, MERCHANT, what="client token") == MERCHANT
    assert token_merchant(opaque, MERCHANT, what="client token") == MERCHANT
    with pytest.raises(InvalidRequestError, match="merchant_id=") as opaque_info:
        token_merchant(opaque, None, what="client token")
    with pytest.raises(MerchantMismatchError, match="one AssetPaySession per merchant") as other:
        token_merchant(jwt, "another-merchant", what="AssetPay issued token")
    assert "opaque-token-value" not in str(opaque_info.value)
    assert opaque.fingerprint in str(opaque_info.value)
    assert jwt.reveal() not in str(other.value)
    assert str(other.value).startswith(f"AssetPay issued token {jwt.fingerprint}")
