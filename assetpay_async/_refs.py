"""Trade and item refs: AssetPay's own ids or the externalIds a merchant supplied. Pure functions.

AssetPay's path parameters take either: ``tradeId`` is any non-empty string, ``itemId`` 1-128 characters, and a
CS2 item's own id is the marketplace listing id, which need not be a UUID (``0010f8d48278ccb8``). A ref is
therefore a string sent as given (externalIds are case-sensitive), or a `uuid.UUID` rendered in
lowercase, and it always travels as exactly one percent-encoded path segment.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
import uuid
from typing import Final

from ._errors import InvalidRequestError

__all__ = [
    "MAX_REF_CHARS",
    "check_ref",
    "check_segment",
    "names",
    "path_segment",
    "ref_uuid",
    "segment_of",
]

MAX_REF_CHARS: Final = 128
"""The longest ref accepted (AssetPay's ``itemId`` maxLength; applied to trade refs too)."""

# Hyphenated 8-4-4-4-12 or 32 hex digits, any case, nothing around it: what counts as "UUID-shaped".
_UUID_TEXT: Final = re.compile(
    r"[0-9a-fA-F]{8}(-?)[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{4}\1[0-9a-fA-F]{12}", re.ASCII
)
# Refs made of RFC 3986 unreserved characters only need no encoding: the common case, checked in one step.
_PLAIN: Final = re.compile(r"[A-Za-z0-9._~-]{1,128}", re.ASCII)
_SHOWN_CHARS: Final = 60


def _shown(value: str) -> str:
    # Control characters and odd Unicode become visible escapes, never raw; the whole stays short.
    text = ascii(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def check_ref(value: object, name: str) -> str:
    """The ref as it is sent: a string unchanged, a `uuid.UUID` as lowercase hyphenated text.

    Raises:
        InvalidRequestError: another type, an empty or whitespace-only string, ``.`` or ``..``, more than
            128 characters, a control character, or text that cannot be UTF-8 encoded (a lone surrogate).
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"{name} must be a string (an id or an externalId) or a uuid.UUID, "
            f"got {type(value).__name__}"
        )
    if _PLAIN.fullmatch(value):
        if value in (".", ".."):
            raise InvalidRequestError(f"{name} cannot be {value!r}: it would change the URL path")
        return value
    if not value.strip():
        raise InvalidRequestError(f"{name} must not be empty or whitespace only")
    if len(value) > MAX_REF_CHARS:
        raise InvalidRequestError(
            f"{name} has {len(value)} characters, more than {MAX_REF_CHARS}: {_shown(value)}"
        )
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc":
            raise InvalidRequestError(f"{name} contains a control character: {_shown(value)}")
        if category == "Cs":
            raise InvalidRequestError(f"{name} is not valid Unicode text: {_shown(value)}")
    return value


def path_segment(ref: str) -> str:
    """``ref`` (already checked) as one path segment: everything outside RFC 3986 unreserved is encoded.

    ``/`` becomes ``%2F`` and ``%`` becomes ``%25``, so no ref can add a segment or smuggle an escape.
    """
    if _PLAIN.fullmatch(ref):
        return ref
    return urllib.parse.quote(ref, safe="", encoding="utf-8", errors="strict")


def segment_of(value: object, name: str) -> str:
    """`check_ref` then `path_segment`, with one regular expression in the common case."""
    if isinstance(value, str) and _PLAIN.fullmatch(value) and value not in (".", ".."):
        return value
    return path_segment(check_ref(value, name))


def check_segment(value: object, name: str) -> tuple[str, str]:
    """The ref as sent (`check_ref`) and its path segment (`path_segment`), with one regular expression in
    the common case (a plain string ref is its own segment)."""
    if isinstance(value, str) and _PLAIN.fullmatch(value) and value not in (".", ".."):
        return value, value
    ref = check_ref(value, name)
    return ref, path_segment(ref)


def ref_uuid(ref: str) -> uuid.UUID | None:
    """The UUID a UUID-shaped ref spells (hyphenated or 32 hex digits, any case), else None."""
    return uuid.UUID(ref) if _UUID_TEXT.fullmatch(ref) else None


def _same(ref: str, wanted: uuid.UUID | None, value: str | None) -> bool:
    if value is None:
        return False
    if value == ref:
        return True
    return wanted is not None and ref_uuid(value) == wanted


def names(ref: str, id: str | None, external_id: str | None) -> bool | None:
    """Whether an answer's ``id``/``externalId`` name the object ``ref`` asked for.

    Returns:
        True when ``ref`` is the id (UUIDs compare in any case and form) or the externalId; False when it
        cannot be: a UUID-shaped ref (taken for AssetPay's id) that is neither, or a ref that is neither
        while the answer carries an externalId; None when it cannot be told (a non-UUID ref, a different id
        and no externalId in the answer: the ref may be an externalId the answer does not echo).
    """
    if ref in (id, external_id):  # the common case, without parsing anything
        return True
    wanted = ref_uuid(ref)
    if _same(ref, wanted, id) or _same(ref, wanted, external_id):
        return True
    if wanted is not None or external_id is not None:
        return False
    return None
