"""Pure functions for AssetPay's callback signature (``X-AssetPay-Signature``).

Header: ``t=<ISO-8601>,id=<deliveryId>,s=<hex>[,s1=<hex>]``. The signed message is the bytes
``"<id>.<t>."`` followed by the raw body, HMAC-SHA256 with the merchant's API secret, lowercase hex;
``s1`` is the same with the previous secret during a rotation.
"""

from __future__ import annotations

import hashlib
import hmac

import attrs

SIGNATURE_HEADER = "X-AssetPay-Signature"


def signature(secret: str | bytes, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of ``"<delivery_id>.<timestamp>."`` + ``body``."""
    key = secret.encode() if isinstance(secret, str) else secret
    message = f"{delivery_id}.{timestamp}.".encode() + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_header(
    secret: str | bytes,
    delivery_id: str,
    timestamp: str,
    body: bytes,
    *,
    previous_secret: str | bytes | None = None,
) -> str:
    """The full header value, with ``s1`` when a previous secret is still in rotation."""
    value = f"t={timestamp},id={delivery_id},s={signature(secret, delivery_id, timestamp, body)}"
    if previous_secret is not None:
        value += f",s1={signature(previous_secret, delivery_id, timestamp, body)}"
    return value


@attrs.frozen
class ParsedSignature:
    timestamp: str
    delivery_id: str
    signatures: tuple[str, ...]


def parse_signature_header(value: str) -> ParsedSignature | None:
    """Split a header value into its parts; None when ``t``, ``id`` or ``s`` is missing or repeated."""
    fields: dict[str, str] = {}
    signatures: list[str] = []
    for part in value.split(","):
        name, sep, text = part.strip().partition("=")
        if not sep or not text:
            return None
        if name in fields:
            return None
        fields[name] = text
        if name in ("s", "s1"):
            signatures.append(text)
    if "t" not in fields or "id" not in fields or "s" not in fields:
        return None
    return ParsedSignature(fields["t"], fields["id"], tuple(signatures))
