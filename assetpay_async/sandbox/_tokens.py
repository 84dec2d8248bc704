"""Client tokens as AssetPay issues them: HS256 JWTs signed with the merchant's API secret.

Header ``{"alg": "HS256", "typ": "JWT", "userId": <merchantId>}``; payload ``{"merchantId", "client":
{"steamID", "tradeUrl"}, "iat", "exp"}``. `encode` and `verify` are pure functions.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["Revocations", "TokenClaims", "TokenProblem", "client_token", "encode", "verify"]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_segment(value: Mapping[str, Any]) -> str:
    return _b64encode(json.dumps(value, separators=(",", ":")).encode())


def encode(header: Mapping[str, Any], payload: Mapping[str, Any], secret: str) -> str:
    """Sign ``header`` and ``payload`` with HMAC-SHA256 (whatever ``header["alg"]`` says).

    Pass any header or payload, including wrong ones, to build tokens that must be refused.
    """
    signing_input = f"{_json_segment(header)}.{_json_segment(payload)}"
    mac = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64encode(mac)}"


def client_token(
    merchant_id: str,
    secret: str,
    client: Mapping[str, Any],
    *,
    issued_at: int,
    lifetime: float,
) -> str:
    """A client token in AssetPay's shape: ``client`` claims of one user, ``exp = iat + lifetime``."""
    return encode(
        {"alg": "HS256", "typ": "JWT", "userId": merchant_id},
        {
            "merchantId": merchant_id,
            "client": dict(client),
            "iat": issued_at,
            "exp": issued_at + int(lifetime),
        },
        secret,
    )


class TokenProblem(enum.Enum):
    """Why a token is refused, with the error AssetPay answers: (code, key)."""

    MISSING = (1108, "MISSING_BEARER")
    INVALID = (1102, "INVALID_TOKEN")
    EXPIRED = (1111, "TOKEN_EXPIRED")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def key(self) -> str:
        return self.value[1]


@attrs.frozen
class TokenClaims:
    """What a verified token says."""

    merchant_id: str
    steam_id: str
    trade_url: str
    issued_at: int
    expires_at: int


def _strip_scheme(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    return value or None


def verify(
    authorization: str | None,
    secret_of: Callable[[str], str | None],
    now: float,
) -> TokenClaims | TokenProblem:
    """Check an ``Authorization`` header value (``Bearer <jwt>`` or the raw token) at Unix time ``now``.

    Args:
        authorization: the header value, or None when absent.
        secret_of: the API secret of a merchant id, None for an unknown merchant.
        now: the current Unix time in seconds.

    Returns:
        The claims, or the problem the server answers with. Order: missing, malformed or badly signed
        (including a ``merchantId`` that disagrees with the header ``userId``), then expired.
    """
    token = _strip_scheme(authorization)
    if token is None:
        return TokenProblem.MISSING
    parts = token.split(".")
    if len(parts) != 3:
        return TokenProblem.INVALID
    try:
        header = json.loads(_b64decode(parts[0]))
        payload = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return TokenProblem.INVALID
    if (
        not isinstance(header, dict)
        or not isinstance(payload, dict)
        or header.get("alg") != "HS256"
    ):
        return TokenProblem.INVALID
    merchant_id = payload.get("merchantId")
    if not isinstance(merchant_id, str) or header.get("userId", merchant_id) != merchant_id:
        return TokenProblem.INVALID
    secret = secret_of(merchant_id)
    if secret is None:
        return TokenProblem.INVALID
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256)
    if not hmac.compare_digest(expected.digest(), signature):
        return TokenProblem.INVALID
    client, iat, exp = payload.get("client"), payload.get("iat"), payload.get("exp")
    if not isinstance(client, dict) or not isinstance(client.get("steamID"), str):
        return TokenProblem.INVALID
    if not isinstance(iat, int) or not isinstance(exp, int) or isinstance(iat | exp, bool):
        return TokenProblem.INVALID
    if now >= exp:
        return TokenProblem.EXPIRED
    trade_url = client.get("tradeUrl")
    return TokenClaims(
        merchant_id=merchant_id,
        steam_id=client["steamID"],
        trade_url=trade_url if isinstance(trade_url, str) else "",
        issued_at=iat,
        expires_at=exp,
    )


encode_token = encode
"""`encode` under the name the sandbox package exports: build any client token, wrong ones included."""


class Revocations:
    """The client tokens refused before their ``exp``: what ``Sandbox.expire_tokens`` asked for.

    Keyed by (merchant id, Steam id): every token seen for the user before the call is revoked, and every
    token issued before the second of the call is refused; a token issued later is accepted.
    """

    def __init__(self) -> None:
        self._expired_before: dict[tuple[str, str], int] = {}
        self._seen: dict[tuple[str, str], set[str]] = {}
        self.revoked: set[str] = set()
        """The signatures of revoked tokens (a new token must not collide with one)."""

    def expire(self, merchant_id: str, steam_id: str, unix_now: int) -> None:
        """Refuse every token of the user seen so far or issued before ``unix_now``."""
        key = (merchant_id, steam_id)
        self._expired_before[key] = unix_now
        self.revoked.update(self._seen.pop(key, set()))

    def refused(self, claims: TokenClaims, signature: str) -> bool:
        """Whether a token otherwise valid is refused (and remember it was presented)."""
        key = (claims.merchant_id, claims.steam_id)
        if signature in self.revoked:
            return True
        self._seen.setdefault(key, set()).add(signature)
        cutoff = self._expired_before.get(key)
        return cutoff is not None and claims.issued_at < cutoff
