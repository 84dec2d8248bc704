"""Merchant mode's pure core: the merchant's secrets, end-user input checks and local token minting.

Nothing here does I/O or reads a clock: times are passed in. A client token is the HS256 JWT that AssetPay's
official client mints when it holds the API secret (``docs/merchant.md``, "The token lifecycle"):
header ``{"alg": "HS256", "typ": "JWT", "userId": <merchantId>}``, payload ``{"merchantId", "client":
{"steamID", "tradeUrl", "clientId"?, "clientData"?}, "iat", "exp"}``, signed with the API secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._errors import ConfigurationError, InvalidRequestError
from ._tokens import SecretToken

__all__ = [
    "TOKEN_LIFETIME",
    "ApiKey",
    "ApiSecret",
    "EndUser",
    "end_user",
    "expiry_of",
    "int_claim",
    "mint",
]

TOKEN_LIFETIME: Final = 86_400
"""Seconds a locally minted client token lives (AssetPay's and the official client's default, 24 h)."""

_STEAM_ID: Final = re.compile(r"76561\d{12}")
_TRADE_URL: Final = re.compile(
    r"https://steamcommunity\.com/tradeoffer/new/\?partner=\d{1,10}&token=[A-Za-z0-9_-]{8}"
)
_MAX_CLIENT_ID: Final = 128
_MAX_SECRET_CHARS: Final = 4096
_CLIENT_DATA_NUMBERS: Final = ("totalWager", "kycLevel")
_CLIENT_DATA_FLAGS: Final = ("fiatDeposits", "cryptoDeposits")


def _secret_text(value: object, what: str) -> str:
    """``value`` checked as a merchant secret; the message never holds it."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a string")
    text = value.strip()
    if not text:
        raise ConfigurationError(f"{what} must not be empty")
    if len(text) > _MAX_SECRET_CHARS:
        raise ConfigurationError(f"{what} is too long")
    if not (text.isascii() and text.isprintable() and " " not in text):
        raise ConfigurationError(
            f"{what} contains whitespace, a control character or a non-ASCII character"
        )
    return text


class ApiKey(SecretToken):
    """The merchant's API key (``ap_...``), sent as the ``api-key`` header of the merchant scope.

    ``repr``/``str`` show a fingerprint only. A subclass of [`SecretToken`][assetpay_async.SecretToken] so the
    request path carries it like a client token; the HTTP layer sends it as ``api-key`` instead of
    ``Authorization: Bearer``.

    Raises:
        ConfigurationError: not a string, empty, too long, or with a character a header cannot carry.
    """

    __slots__ = ()

    def __init__(self, value: str | SecretToken) -> None:
        if isinstance(value, SecretToken):
            self._value = value.reveal()
            return
        self._value = _secret_text(value, "api_key")

    def __repr__(self) -> str:
        return f"ApiKey({self.fingerprint})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not picklable")


class ApiSecret:
    """The merchant's API secret: signs the client tokens minted locally. Never shown.

    Raises:
        ConfigurationError: not a string, empty, too long, or with whitespace or a control character.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value: bytes = _secret_text(value, "api_secret").encode()

    def reveal(self) -> str:
        """The secret itself (to hand to an ``AssetPaySession``); never log it."""
        return self._value.decode()

    def sign(self, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the secret."""
        return hmac.new(self._value, message, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "ApiSecret(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API secret is not picklable")


@attrs.frozen
class EndUser:
    """One end user's claims, checked: what a client token is minted for (the cache key of its token)."""

    steam_id: str
    trade_url: str
    client_id: str | None = None
    client_data: str | None = None
    """``clientData`` as canonical JSON (sorted keys), so equal data gives an equal key."""

    def claims(self) -> dict[str, Any]:
        """The ``client`` claim of the JWT (and the body of ``/auth/authenticate-client``'s fields)."""
        client: dict[str, Any] = {"steamID": self.steam_id, "tradeUrl": self.trade_url}
        if self.client_id is not None:
            client["clientId"] = self.client_id
        if self.client_data is not None:
            client["clientData"] = json.loads(self.client_data)
        return client

    def authenticate_body(self) -> dict[str, Any]:
        """The body of ``POST /auth/authenticate-client`` for this user."""
        body: dict[str, Any] = {"clientSteamId": self.steam_id, "clientTradeUrl": self.trade_url}
        if self.client_id is not None:
            body["clientId"] = self.client_id
        if self.client_data is not None:
            body["clientData"] = json.loads(self.client_data)
        return body


def _check_client_data(data: object) -> str:
    if not isinstance(data, Mapping):
        raise InvalidRequestError("client_data must be a mapping")
    known = {*_CLIENT_DATA_NUMBERS, *_CLIENT_DATA_FLAGS, "registrationDate", "kycHash"}
    for key, value in data.items():
        if key not in known:
            raise InvalidRequestError(
                f"client_data has an unknown field {str(key)[:40]!r}; known: {sorted(known)}"
            )
        if key in _CLIENT_DATA_NUMBERS:
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value >= 0
            )
            if not ok:
                raise InvalidRequestError(f"client_data.{key} must be a number >= 0")
        elif key in _CLIENT_DATA_FLAGS:
            if not isinstance(value, bool):
                raise InvalidRequestError(f"client_data.{key} must be a boolean")
        elif key == "kycHash":
            if not isinstance(value, str):
                raise InvalidRequestError("client_data.kycHash must be a string")
        elif value is not None and not _is_datetime(value):
            raise InvalidRequestError(
                "client_data.registrationDate must be an ISO 8601 date-time or None"
            )
    return json.dumps(dict(data), sort_keys=True, separators=(",", ":"))


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def end_user(
    steam_id: object,
    trade_url: object,
    *,
    client_id: object = None,
    client_data: object = None,
) -> EndUser:
    """Check one end user's details as AssetPay's schema does, before anything is sent.

    Raises:
        InvalidRequestError: a Steam id not matching ``^76561\\d{12}$``, a trade URL not of the form
            ``https://steamcommunity.com/tradeoffer/new/?partner=<1-10 digits>&token=<8 characters>``, a
            ``client_id`` that is not a string of 1 to 128 characters, or ``client_data`` with an unknown
            field or a value of the wrong type.
    """
    if not isinstance(steam_id, str) or not _STEAM_ID.fullmatch(steam_id):
        raise InvalidRequestError("steam_id must be a SteamID64: 76561 followed by 12 digits")
    if not isinstance(trade_url, str) or not _TRADE_URL.fullmatch(trade_url):
        raise InvalidRequestError(
            "trade_url must be https://steamcommunity.com/tradeoffer/new/?partner=<digits>&token=<8 chars>"
        )
    if client_id is not None and (
        not isinstance(client_id, str) or not client_id or len(client_id) > _MAX_CLIENT_ID
    ):
        raise InvalidRequestError(f"client_id must be a string of 1 to {_MAX_CLIENT_ID} characters")
    data = None if client_data is None else _check_client_data(client_data)
    return EndUser(steam_id, trade_url, client_id, data)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(
    secret: ApiSecret,
    merchant_id: str,
    user: EndUser,
    *,
    issued_at: int,
    lifetime: int = TOKEN_LIFETIME,
) -> SecretToken:
    """A client token for ``user``: the HS256 JWT of the official client, ``exp = iat + lifetime``.

    Raises:
        ConfigurationError: ``lifetime`` outside 1 to 86,400 seconds.
    """
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 1 <= lifetime <= 86_400:
        raise ConfigurationError("lifetime must be an int from 1 to 86400 seconds")
    header = {"alg": "HS256", "typ": "JWT", "userId": merchant_id}
    payload = {
        "merchantId": merchant_id,
        "client": user.claims(),
        "iat": issued_at,
        "exp": issued_at + lifetime,
    }
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(payload, separators=(",", ":")).encode())
    )
    return SecretToken(signing_input + "." + _b64(secret.sign(signing_input.encode("ascii"))))


def int_claim(token: SecretToken, name: str) -> int | None:
    """The integer claim ``name`` of the token's payload, or None (absent, not an int, not a JWT)."""
    parts = token.reveal().split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, RecursionError):
        return None
    value = payload.get(name) if isinstance(payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def expiry_of(token: SecretToken) -> int | None:
    """The token's ``exp`` (Unix seconds), or None when it has none or is not a readable JWT."""
    return int_claim(token, "exp")
