"""Client tokens: kept out of every repr, and read (without the secret) for the merchant they belong to."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, Final

from ._errors import InvalidRequestError, MerchantMismatchError

_MAX_TOKEN_CHARS: Final = 16_384


def _header_safe(value: str) -> bool:
    """Whether ``value`` can go into an HTTP header as it is: visible ASCII only (no space, no control
    character such as ``\\x0b``, ``\\x0c`` or ``\\x7f``, nothing outside ASCII)."""
    return value.isascii() and value.isprintable() and " " not in value


class SecretToken:
    """A client token. ``repr``/``str`` show a fingerprint, never the token.

    Raises:
        InvalidRequestError: not a string, empty, longer than 16,384 characters, or with a character an HTTP
            header cannot carry (whitespace inside it, a control character, anything outside visible ASCII).
            The message never contains the token.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | SecretToken) -> None:
        if isinstance(value, SecretToken):
            self._value: str = value._value
            return
        if not isinstance(value, str):
            raise InvalidRequestError("the client token must be a non-empty string")
        text = value.strip(" \t\r\n")
        scheme, _, rest = text.partition(" ")
        if scheme.lower() == "bearer":
            text = rest.strip(" \t\r\n")
        problem = None
        if not text:
            problem = "the client token must be a non-empty string"
        elif len(text) > _MAX_TOKEN_CHARS:
            problem = "the client token is too long"
        elif not _header_safe(text):
            problem = (
                "the client token contains whitespace, a control character or a non-ASCII character, "
                "which an HTTP header cannot carry"
            )
        if problem is not None:
            # Drop the token from this frame's locals before raising: tracebacks may show them.
            value = text = rest = scheme = ""
            raise InvalidRequestError(problem)
        self._value = text

    def reveal(self) -> str:
        """The token itself; only the HTTP layer calls this, to build the Authorization header."""
        return self._value

    @property
    def fingerprint(self) -> str:
        """``sha256:`` and the first 8 hex digits of the token's SHA-256, safe to log.

        ``unset`` for an object whose constructor refused its value (a traceback formatter that captures
        locals shows the half-built ``self`` of ``__init__``: its repr must not raise).
        """
        value = getattr(self, "_value", None)
        if value is None:
            return "unset"
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"SecretToken({self.fingerprint})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        mine = getattr(self, "_value", None)
        return isinstance(other, SecretToken) and getattr(other, "_value", None) == mine

    def __hash__(self) -> int:
        return hash(getattr(self, "_value", None))

    def __reduce__(self) -> Any:
        raise TypeError("a client token is not picklable")


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def _claims(token: SecretToken) -> tuple[Any, Any]:
    """The decoded header and payload of a JWT, or (None, None); no part of the token stays in a local."""
    parts = token.reveal().split(".")
    if len(parts) != 3:
        return None, None
    try:
        return _b64json(parts[0]), _b64json(parts[1])
    except (ValueError, binascii.Error, RecursionError):  # RecursionError: absurdly nested JSON
        return None, None


def merchant_of(token: SecretToken) -> str | None:
    """The merchant a JWT client token belongs to, or None for an opaque token.

    Reads payload ``merchantId``, else header ``userId`` (no signature check: the server does that).

    Raises:
        MerchantMismatchError: the two claims are present and disagree (AssetPay refuses such a token).
    """
    header, payload = _claims(token)
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    from_payload, from_header = payload.get("merchantId"), header.get("userId")
    from_payload = from_payload if isinstance(from_payload, str) and from_payload else None
    from_header = from_header if isinstance(from_header, str) and from_header else None
    if from_payload and from_header and from_payload != from_header:
        raise MerchantMismatchError(
            f"client token {token.fingerprint} names merchant {from_payload!r} in its payload "
            f"but {from_header!r} in its header; AssetPay refuses such a token"
        )
    return from_payload or from_header


def token_merchant(token: SecretToken, known: str | None, *, what: str) -> str:
    """The merchant ``token`` belongs to, checked against the merchant the session already ``known``s.

    The one rule for a session's tokens, whether the caller gave one (``session.client``) or AssetPay issued
    it (merchant mode): an opaque token belongs to the known merchant; a JWT names its own, which becomes
    the session's when none is known yet.

    Args:
        token: the token.
        known: the session's merchant, None while it is not known.
        what: how the messages name the token (its text is never shown, only its fingerprint).

    Raises:
        InvalidRequestError: an opaque token while no merchant is known.
        MerchantMismatchError: the token names another merchant than ``known`` (or its claims disagree).
    """
    merchant = merchant_of(token)
    if merchant is None:
        if known is None:
            raise InvalidRequestError(
                f"{what} {token.fingerprint} is not a JWT naming its merchant; "
                "pass merchant_id= to AssetPaySession"
            )
        return known
    if known is not None and merchant != known:
        raise MerchantMismatchError(
            f"{what} {token.fingerprint} belongs to merchant {merchant!r}, but this session serves "
            f"{known!r}: use one AssetPaySession per merchant"
        )
    return merchant
