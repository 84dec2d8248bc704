"""The sans-I/O core of callbacks: verify a delivery and decode its event.

Nothing here touches the network or a framework: every function takes bytes and headers and returns values or
raises a `CallbackError`. The values live in `_callback_events`;
[`CallbackProcessor`][assetpay_async.callbacks.CallbackProcessor] answers AssetPay on top.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import cattrs

from ._callback_errors import (
    InvalidCallbackBodyError,
    MalformedSignatureError,
    MissingSignatureError,
    SignatureMismatchError,
    TimestampToleranceError,
    UnsignedTestPing,
)
from ._callback_events import (
    AnyCallbackEvent,
    CallbackEvent,
    CryptoDepositEvent,
    CryptoTransfer,
    CryptoWithdrawalEvent,
    UnknownCallbackEvent,
    VerifiedDelivery,
    is_gate_status,
)
from ._converter import ShapeError, decode
from ._errors import ConfigurationError
from ._models import Trade, TradeStatus, TradeType
from ._signing import SIGNATURE_HEADER, parse_signature_header, signature

__all__ = [
    "DEFAULT_TOLERANCE",
    "Clock",
    "check_tolerance",
    "decode_event",
    "find_signature_header",
    "is_test_ping",
    "raw_body",
    "secret_keys",
    "verify_callback",
    "verify_signature",
]

DEFAULT_TOLERANCE: Final = 300.0
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SIGNATURE_HEADER_FOLDED: Final = SIGNATURE_HEADER.casefold()
_SUBJECTS: Final = ("trade", "withdrawal", "deposit")

Clock = Callable[[], dt.datetime]


# --- verification -----------------------------------------------------------------------------------------


def find_signature_header(headers: Mapping[str, str]) -> str | None:
    """The ``X-AssetPay-Signature`` value, looked up case-insensitively; None when absent.

    Raises:
        MalformedSignatureError: the header appears more than once, or is not a string.
    """
    found = [
        value for name, value in headers.items() if str(name).casefold() == _SIGNATURE_HEADER_FOLDED
    ]
    if not found:
        return None
    if len(found) > 1:
        raise MalformedSignatureError(f"{SIGNATURE_HEADER} appears {len(found)} times")
    value = found[0]
    if not isinstance(value, str):
        raise MalformedSignatureError(f"{SIGNATURE_HEADER} is not a string")
    return value


def raw_body(body: bytes | bytearray | memoryview | str) -> bytes:
    """The body as bytes: a ``str`` is encoded as UTF-8 (what AssetPay sends), anything else is refused.

    Raises:
        ConfigurationError: ``body`` is neither bytes nor text.
    """
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise ConfigurationError(
        f"body must be the raw request bytes (or text), not {type(body).__name__}"
    )


def verify_signature(
    body: bytes | str,
    headers: Mapping[str, str],
    secrets: str | Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Clock | dt.datetime | None = None,
) -> VerifiedDelivery:
    """Authenticate a delivery's raw body against its ``X-AssetPay-Signature`` header.

    The body is not interpreted: use `verify_callback` for trade callbacks.

    Args:
        body: the raw request body, exactly as received (re-serialised JSON does not verify); text is
            encoded as UTF-8.
        headers: the request headers; the signature header is looked up case-insensitively.
        secrets: the merchant's API secret, or several during a rotation (newest first). A delivery passes
            when any of its signatures (``s``, ``s1``) matches any of them.
        tolerance: seconds the signed timestamp may lie before or after now.
        now: the current time (a datetime or a callable returning one); defaults to the system clock.

    Returns:
        The delivery id and signed timestamp.

    Raises:
        ConfigurationError: no secret, a bad tolerance, or a body that is neither bytes nor text.
        MissingSignatureError: no signature header.
        MalformedSignatureError: a header that does not parse.
        SignatureMismatchError: no signature matches (checked before the timestamp).
        TimestampToleranceError: an authentic delivery signed too long ago, or too far ahead.
    """
    keys = secret_keys(secrets)
    tolerance = check_tolerance(tolerance)
    raw = raw_body(body)
    header = find_signature_header(headers)
    if header is None:
        raise MissingSignatureError(f"no {SIGNATURE_HEADER} header")
    parsed = parse_signature_header(header)
    if parsed is None:
        raise MalformedSignatureError(
            f"{SIGNATURE_HEADER} must be 't=<ISO-8601>,id=<deliveryId>,s=<hex>[,s1=<hex>]'"
        )
    given = [sig for sig in parsed.signatures if _HEX_SHA256.fullmatch(sig)]
    if len(given) != len(parsed.signatures):
        raise MalformedSignatureError("a signature in the header is not 64 hex digits")
    timestamp = _parse_timestamp(parsed.timestamp)
    if not _matches(keys, parsed.delivery_id, parsed.timestamp, raw, given):
        raise SignatureMismatchError("no signature matches the configured secrets")
    _check_time(timestamp, _now(now), tolerance)
    try:
        utc = timestamp.astimezone(dt.UTC)
    except OverflowError:
        raise MalformedSignatureError("the signed timestamp is out of range") from None
    return VerifiedDelivery(parsed.delivery_id, utc)


def _matches(
    keys: tuple[bytes, ...], delivery_id: str, timestamp: str, raw: bytes, given: list[str]
) -> bool:
    matched = False
    for key in keys:
        expected = signature(key, delivery_id, timestamp, raw).encode()
        for candidate in given:
            # Evaluate every pair (no short-circuit): the time taken says nothing about which one matched.
            matched |= hmac.compare_digest(expected, candidate.lower().encode())
    return matched


def _check_time(timestamp: dt.datetime, current: dt.datetime, tolerance: float) -> None:
    skew = (timestamp - current).total_seconds()
    if abs(skew) > tolerance:
        where = "in the past" if skew < 0 else "in the future"
        raise TimestampToleranceError(
            f"signed {abs(skew):.0f} s {where}, beyond the {tolerance:g} s tolerance",
            timestamp=timestamp,
            now=current,
            skew=skew,
            tolerance=tolerance,
        )


def verify_callback(
    body: bytes | str,
    headers: Mapping[str, str],
    secrets: str | Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Clock | dt.datetime | None = None,
) -> AnyCallbackEvent:
    """Verify a callback and decode it into its event.

    ``{"trade": ...}`` is a [`CallbackEvent`][assetpay_async.callbacks.CallbackEvent], ``{"withdrawal": ...}`` a
    [`CryptoWithdrawalEvent`][assetpay_async.callbacks.CryptoWithdrawalEvent], ``{"deposit": ...}`` a
    [`CryptoDepositEvent`][assetpay_async.callbacks.CryptoDepositEvent]; any other authentic body (not JSON, a
    trade that does not decode, several of those keys at once) is an
    [`UnknownCallbackEvent`][assetpay_async.callbacks.UnknownCallbackEvent] holding the raw payload, flagged
    ``is_approval_request`` unless it is certainly not an approval gate. An authentic delivery is never refused.

    Args:
        body: the raw request body, exactly as received (text is encoded as UTF-8).
        headers: the request headers (case-insensitive lookup).
        secrets: the API secret, or several during a rotation.
        tolerance: seconds the signed timestamp may lie before or after now.
        now: the current time (a datetime or a callable returning one); defaults to the system clock.

    Returns:
        The verified event.

    Raises:
        UnsignedTestPing: the body is AssetPay's test ping, sent without any signature header: answer 2xx,
            trust nothing in it. A body with a signature header is never a ping.
        CallbackAuthenticationError: see `verify_signature` (answer 401).
        ConfigurationError: see `verify_signature`.
    """
    raw = raw_body(body)
    data, json_error = _load_json(raw)
    if find_signature_header(headers) is None and is_test_ping(data):
        raise UnsignedTestPing("AssetPay's unsigned test ping: answer 2xx, act on nothing")
    delivery = verify_signature(raw, headers, secrets, tolerance=tolerance, now=now)
    return decode_event(delivery, data, raw, json_error=json_error)


def decode_event(
    delivery: VerifiedDelivery, data: Any, body: bytes = b"", *, json_error: str | None = None
) -> AnyCallbackEvent:
    """The event an authenticated body stands for. Never raises.

    See [`verify_callback`][assetpay_async.callbacks.verify_callback].
    """
    maybe_gate = f"approval:delivery:{delivery.delivery_id}"

    def unknown(reason: str, approval_key: str | None = maybe_gate) -> UnknownCallbackEvent:
        return UnknownCallbackEvent(
            delivery.delivery_id, delivery.timestamp, data, reason, body, approval_key
        )

    if json_error is not None:
        return unknown(f"the body is not JSON ({json_error})")
    if not isinstance(data, dict):
        return unknown("the body is not a JSON object")
    present = [key for key in _SUBJECTS if key in data]
    if len(present) > 1:
        return unknown(f"the body carries {' and '.join(present)} at once")
    if not present:
        return unknown("a body of a shape this SDK does not know")
    subject = data[present[0]]
    if not isinstance(subject, dict):
        return unknown(f"the body's {present[0]} is not an object")
    if present[0] == "withdrawal":
        transfer = CryptoTransfer.from_json(subject)
        return CryptoWithdrawalEvent(delivery.delivery_id, delivery.timestamp, transfer, data)
    if present[0] == "deposit":
        transfer = CryptoTransfer.from_json(subject)
        return CryptoDepositEvent(delivery.delivery_id, delivery.timestamp, transfer, data)
    try:
        decoded = _decode_trade(subject)
    except InvalidCallbackBodyError as exc:
        key = None if _trade_is_not_a_gate(subject) else _trade_gate_key(subject, maybe_gate)
        return unknown(str(exc), key)
    return CallbackEvent(delivery.delivery_id, delivery.timestamp, decoded, data)


def _trade_is_not_a_gate(trade: Mapping[str, Any]) -> bool:
    """Certain from the raw trade that it is no approval gate: another type or another status, spelled out."""
    kind, status = trade.get("type"), trade.get("status")
    other_type = isinstance(kind, str) and not is_gate_status(kind, TradeType.WITHDRAW.value)
    other_status = isinstance(status, str) and not is_gate_status(
        status, TradeStatus.INITIATED.value
    )
    return other_type or other_status


def _trade_gate_key(trade: Mapping[str, Any], fallback: str) -> str:
    trade_id = trade.get("id")
    return f"approval:{trade_id}" if isinstance(trade_id, str) and trade_id else fallback


def is_test_ping(data: object) -> bool:
    """True when decoded JSON has the test ping's shape: an object with ``"test": true`` and no trade.

    Only a body that arrives without any signature header is treated as the ping.
    """
    return (
        isinstance(data, dict)
        and data.get("test") is True
        and not any(key in data for key in _SUBJECTS)
    )


# --- helpers ----------------------------------------------------------------------------------------------


def secret_keys(secrets: str | Sequence[str]) -> tuple[bytes, ...]:
    items = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    if not items:
        raise ConfigurationError("configure at least one callback secret")
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigurationError("callback secrets must be non-empty strings")
    return tuple(item.encode() for item in items)


def check_tolerance(tolerance: float) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise ConfigurationError("tolerance must be a number of seconds")
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ConfigurationError("tolerance must be a finite number of seconds, at least 0")
    return float(tolerance)


def _parse_timestamp(text: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise MalformedSignatureError("the signed timestamp 't' is not ISO 8601") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _now(now: Clock | dt.datetime | None) -> dt.datetime:
    current = (
        dt.datetime.now(dt.UTC) if now is None else now if isinstance(now, dt.datetime) else now()
    )
    return current if current.tzinfo else current.replace(tzinfo=dt.UTC)


def _load_json(body: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(body), None
    except (
        ValueError,
        RecursionError,
    ) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, type(exc).__name__


def _decode_trade(data: dict[str, Any]) -> Trade:
    try:
        return decode(data, Trade)
    except ShapeError as exc:
        raise InvalidCallbackBodyError(
            f"the trade has an unexpected shape ({_describe(exc.__cause__ or exc)})"
        ) from exc


def _describe(exc: BaseException) -> str:
    """Where decoding failed, without the offending values (they may hold anything the sender chose)."""
    if isinstance(exc, cattrs.BaseValidationError):
        problems = cattrs.transform_error(exc, format_exception=_format_problem)
        return "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
    return type(exc).__name__


def _format_problem(exc: BaseException, _type: object) -> str:
    return "missing" if isinstance(exc, KeyError) else f"invalid ({type(exc).__name__})"
