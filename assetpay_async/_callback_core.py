"""The sans-I/O core of callbacks: verify a delivery, decode its event, build approval answers.

Nothing here touches the network or a framework: every function takes bytes and headers and returns values or
raises a `CallbackError`. [`assetpay_async.callbacks`][assetpay_async.callbacks] puts an aiohttp handler on top.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, Self

import attrs
import cattrs

from ._converter import ShapeError, decode
from ._errors import AssetPayError
from ._models import Trade, TradeStatus, TradeType
from ._signing import SIGNATURE_HEADER, parse_signature_header, signature

__all__ = [
    "AnyCallbackEvent",
    "ApprovalDecision",
    "ApprovalRequest",
    "CallbackAnswer",
    "CallbackAuthenticationError",
    "CallbackError",
    "CallbackEvent",
    "CryptoDeposit",
    "CryptoDepositEvent",
    "CryptoWithdrawal",
    "CryptoWithdrawalEvent",
    "InvalidCallbackBodyError",
    "MalformedSignatureError",
    "MissingSignatureError",
    "SignatureMismatchError",
    "TimestampToleranceError",
    "UnknownCallbackEvent",
    "UnsignedTestPing",
    "VerifiedDelivery",
    "find_signature_header",
    "is_test_ping",
    "verify_callback",
    "verify_signature",
]

DEFAULT_TOLERANCE: Final = 300.0
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SIGNATURE_HEADER_FOLDED: Final = SIGNATURE_HEADER.casefold()

Clock = Callable[[], dt.datetime]


# --- errors -----------------------------------------------------------------------------------------------


class CallbackError(AssetPayError):
    """A callback that must not be trusted or processed.

    Attributes:
        http_status: the status to answer AssetPay with (401 for authentication failures, 400 for a bad
            body, 200 for the unsigned test ping).
    """

    http_status: ClassVar[int] = 400


class CallbackAuthenticationError(CallbackError):
    """The delivery could not be authenticated: answer 401 and do nothing with it."""

    http_status: ClassVar[int] = 401


class MissingSignatureError(CallbackAuthenticationError):
    """No ``X-AssetPay-Signature`` header."""


class MalformedSignatureError(CallbackAuthenticationError):
    """The signature header is not ``t=<ISO-8601>,id=<deliveryId>,s=<hex>[,s1=<hex>]``."""


class SignatureMismatchError(CallbackAuthenticationError):
    """No signature in the header matches any configured secret (wrong secret, or a modified body)."""


class TimestampToleranceError(CallbackAuthenticationError):
    """The signed timestamp is further from now than the tolerance: a replay, or a skewed clock.

    Attributes:
        timestamp: the signed time of the delivery.
        now: the time it was checked against.
        skew: ``timestamp - now`` in seconds (negative: in the past).
        tolerance: the allowed skew either way, in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        timestamp: dt.datetime,
        now: dt.datetime,
        skew: float,
        tolerance: float,
    ) -> None:
        super().__init__(message)
        self.timestamp = timestamp
        self.now = now
        self.skew = skew
        self.tolerance = tolerance


class InvalidCallbackBodyError(CallbackError):
    """Kept for ``except`` clauses written for earlier versions; no longer raised.

    An authentic body of a shape the SDK does not know is an
    [`UnknownCallbackEvent`][assetpay_async.callbacks.UnknownCallbackEvent] now: a 4xx to a signed delivery
    would reject an approval gate, so none is answered merely for a new shape.
    """


class UnsignedTestPing(CallbackError):
    """The body is AssetPay's test ping (``{"test": true, ...}``), sent unsigned when a callback URL is saved.

    Nothing in it is authenticated, so nothing in it is exposed: answer 2xx (``http_status`` is 200) and act on
    nothing. It subclasses `CallbackError` so that code unaware of pings can never treat one as an event.
    """

    http_status: ClassVar[int] = 200


# --- values -----------------------------------------------------------------------------------------------


@attrs.frozen
class VerifiedDelivery:
    """The authenticated envelope of a delivery (its body is not interpreted).

    Attributes:
        delivery_id: AssetPay's id of this event; retries of one event keep it.
        timestamp: the signed time of the delivery, in UTC.
    """

    delivery_id: str
    timestamp: dt.datetime


@attrs.frozen
class CallbackEvent:
    """A verified callback: a trade whose status changed.

    There is no event name: the event is the new ``trade.status``.

    Attributes:
        delivery_id: AssetPay's id of this delivery; retries of one event keep it.
        timestamp: the signed time of the delivery, in UTC.
        trade: the trade as AssetPay sent it.
        payload: the whole decoded body, for fields the SDK does not model.
    """

    delivery_id: str
    timestamp: dt.datetime
    trade: Trade
    payload: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False, hash=False)

    @property
    def status(self) -> TradeStatus:
        """The trade's new status: what this callback announces."""
        return self.trade.status

    @property
    def is_approval_request(self) -> bool:
        """True for a withdrawal awaiting the merchant's approval (``withdraw`` + ``initiated``).

        The answer decides the withdrawal: a 2xx approves it unless the body rejects it.
        """
        return self.trade.type == TradeType.WITHDRAW and self.trade.status == TradeStatus.INITIATED

    @property
    def dedupe_key(self) -> str:
        """The key under which to remember that this callback was handled.

        The delivery id, except for approval requests: every approval attempt carries a new delivery id, so
        those are keyed on the trade id.
        """
        if self.is_approval_request:
            return f"approval:{self.trade.id}"
        return f"delivery:{self.delivery_id}"


APPROVAL_STATUS_CRYPTO: Final = "awaiting_approval"
"""The status of a crypto withdrawal waiting for the merchant's approval (an approval gate)."""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@attrs.frozen
class CryptoWithdrawal:
    """A crypto withdrawal as a callback carries it. Its schema is not published: only ``id``, ``status`` and
    ``externalId`` are read (when they are strings); everything else is in ``data``.

    Attributes:
        id: AssetPay's id of the withdrawal.
        status: its new status, e.g. ``awaiting_approval``.
        external_id: the merchant's own id, if any.
        data: the whole object as sent.
    """

    id: str | None
    status: str | None
    external_id: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False, hash=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            _text(data.get("id")), _text(data.get("status")), _text(data.get("externalId")), data
        )


@attrs.frozen
class CryptoDeposit:
    """A crypto deposit as a callback carries it, read like
    [`CryptoWithdrawal`][assetpay_async.callbacks.CryptoWithdrawal]."""

    id: str | None
    status: str | None
    external_id: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False, hash=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            _text(data.get("id")), _text(data.get("status")), _text(data.get("externalId")), data
        )


@attrs.frozen
class CryptoWithdrawalEvent:
    """A verified ``{"withdrawal": {...}}`` callback: a crypto withdrawal whose status changed.

    One in ``awaiting_approval`` is an approval gate, decided by the same ``on_approval`` hook as a trade's.

    Attributes:
        delivery_id: AssetPay's id of this delivery; retries of one event keep it.
        timestamp: the signed time of the delivery, in UTC.
        withdrawal: the withdrawal as sent.
        payload: the whole decoded body.
    """

    delivery_id: str
    timestamp: dt.datetime
    withdrawal: CryptoWithdrawal
    payload: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False, hash=False)

    @property
    def status(self) -> str | None:
        return self.withdrawal.status

    @property
    def is_approval_request(self) -> bool:
        """True for a withdrawal in ``awaiting_approval``: the answer approves or rejects it."""
        return self.withdrawal.status == APPROVAL_STATUS_CRYPTO

    @property
    def dedupe_key(self) -> str:
        """``approval:withdrawal:<id>`` for an approval gate (attempts get new delivery ids), else the delivery."""
        if self.is_approval_request and self.withdrawal.id is not None:
            return f"approval:withdrawal:{self.withdrawal.id}"
        return f"delivery:{self.delivery_id}"


@attrs.frozen
class CryptoDepositEvent:
    """A verified ``{"deposit": {...}}`` callback: a crypto deposit whose status changed.

    Attributes:
        delivery_id: AssetPay's id of this delivery; retries of one event keep it.
        timestamp: the signed time of the delivery, in UTC.
        deposit: the deposit as sent.
        payload: the whole decoded body.
    """

    delivery_id: str
    timestamp: dt.datetime
    deposit: CryptoDeposit
    payload: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False, hash=False)

    @property
    def status(self) -> str | None:
        return self.deposit.status

    @property
    def is_approval_request(self) -> bool:
        return False

    @property
    def dedupe_key(self) -> str:
        return f"delivery:{self.delivery_id}"


@attrs.frozen
class UnknownCallbackEvent:
    """A verified delivery whose body the SDK cannot read: a shape it does not know, or a trade that does not
    decode. Kept with the raw payload rather than refused, since the signature proves AssetPay sent it.

    Attributes:
        delivery_id: AssetPay's id of this delivery.
        timestamp: the signed time of the delivery, in UTC.
        payload: the decoded JSON (None when the body is not JSON).
        reason: why it is not one of the known events.
        body: the raw body.
        approval_key: set when the body looks like an approval gate (a ``withdraw`` trade in ``initiated``, a
            withdrawal in ``awaiting_approval``) that could not be read: the callback handler rejects those,
            since nothing unread may be approved. It is then the dedupe key.
    """

    delivery_id: str
    timestamp: dt.datetime
    payload: Any
    reason: str
    body: bytes = attrs.field(default=b"", repr=False, eq=False, hash=False)
    approval_key: str | None = None

    @property
    def is_approval_request(self) -> bool:
        return self.approval_key is not None

    @property
    def dedupe_key(self) -> str:
        return self.approval_key or f"delivery:{self.delivery_id}"


AnyCallbackEvent = CallbackEvent | CryptoWithdrawalEvent | CryptoDepositEvent | UnknownCallbackEvent
"""Every kind of verified callback; dispatch on its type."""

ApprovalRequest = CallbackEvent | CryptoWithdrawalEvent
"""The events that are approval gates (``is_approval_request``), passed to ``on_approval``."""


@attrs.frozen
class CallbackAnswer:
    """A framework-neutral HTTP answer to a callback."""

    status: int
    body: bytes
    content_type: str = "application/json"


@attrs.frozen
class ApprovalDecision:
    """The merchant's verdict on an approval request. Build it with `approve` or `reject`."""

    approved: bool
    reason: str = ""

    # A rejection answers 403 *and* carries the reject body: AssetPay rejects on "any 4xx but 408/429" and on
    # a 2xx whose body is {"action": "reject"}, so the answer rejects under either rule, and a body AssetPay
    # failed to parse can never turn it into an approval.
    REJECT_STATUS: ClassVar[int] = 403

    @classmethod
    def approve(cls) -> Self:
        """Let the withdrawal proceed."""
        return cls(approved=True)

    @classmethod
    def reject(cls, reason: str) -> Self:
        """Stop the withdrawal; ``reason`` is passed on to AssetPay."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("a rejection needs a non-empty reason")
        return cls(approved=False, reason=reason)

    def answer(self) -> CallbackAnswer:
        """The HTTP answer that carries this decision."""
        if self.approved:
            return CallbackAnswer(200, b'{"action":"approve"}')
        body = json.dumps({"action": "reject", "reason": self.reason}, separators=(",", ":"))
        return CallbackAnswer(self.REJECT_STATUS, body.encode())


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


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secrets: str | Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Clock | dt.datetime | None = None,
) -> VerifiedDelivery:
    """Authenticate a delivery's raw body against its ``X-AssetPay-Signature`` header.

    The body is not interpreted: use `verify_callback` for trade callbacks.

    Args:
        body: the raw request body, exactly as received (re-serialised JSON does not verify).
        headers: the request headers; the signature header is looked up case-insensitively.
        secrets: the merchant's API secret, or several during a rotation (newest first). A delivery passes
            when any of its signatures (``s``, ``s1``) matches any of them.
        tolerance: seconds the signed timestamp may lie before or after now.
        now: the current time (a datetime or a callable returning one); defaults to the system clock.

    Returns:
        The delivery id and signed timestamp.

    Raises:
        MissingSignatureError: no signature header.
        MalformedSignatureError: a header that does not parse.
        SignatureMismatchError: no signature matches (checked before the timestamp).
        TimestampToleranceError: an authentic delivery signed too long ago, or too far ahead.
    """
    keys = secret_keys(secrets)
    tolerance = check_tolerance(tolerance)
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be the raw request bytes, not {type(body).__name__}")
    raw = bytes(body)
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

    matched = False
    for key in keys:
        expected = signature(key, parsed.delivery_id, parsed.timestamp, raw).encode()
        for candidate in given:
            # Evaluate every pair (no short-circuit): the time taken says nothing about which one matched.
            matched |= hmac.compare_digest(expected, candidate.lower().encode())
    if not matched:
        raise SignatureMismatchError("no signature matches the configured secrets")

    current = _now(now)
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
    try:
        utc = timestamp.astimezone(dt.UTC)
    except OverflowError:
        raise MalformedSignatureError("the signed timestamp is out of range") from None
    return VerifiedDelivery(parsed.delivery_id, utc)


def verify_callback(
    body: bytes,
    headers: Mapping[str, str],
    secrets: str | Sequence[str],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Clock | dt.datetime | None = None,
) -> AnyCallbackEvent:
    """Verify a callback and decode it into its event.

    ``{"trade": ...}`` is a [`CallbackEvent`][assetpay_async.callbacks.CallbackEvent], ``{"withdrawal": ...}`` a
    [`CryptoWithdrawalEvent`][assetpay_async.callbacks.CryptoWithdrawalEvent], ``{"deposit": ...}`` a
    [`CryptoDepositEvent`][assetpay_async.callbacks.CryptoDepositEvent]; any other authentic body (or a trade
    that does not decode) is an [`UnknownCallbackEvent`][assetpay_async.callbacks.UnknownCallbackEvent] holding
    the raw payload. An authentic delivery is never refused for its shape.

    Args:
        body: the raw request body, exactly as received.
        headers: the request headers (case-insensitive lookup).
        secrets: the API secret, or several during a rotation.
        tolerance: seconds the signed timestamp may lie before or after now.
        now: the current time (a datetime or a callable returning one); defaults to the system clock.

    Returns:
        The verified event.

    Raises:
        UnsignedTestPing: the body is AssetPay's unsigned test ping: answer 2xx, trust nothing in it.
        CallbackAuthenticationError: see `verify_signature` (answer 401).
    """
    data, json_error = _load_json(body)
    if is_test_ping(data):
        raise UnsignedTestPing("AssetPay's test ping: answer 2xx, act on nothing")
    delivery = verify_signature(body, headers, secrets, tolerance=tolerance, now=now)
    return decode_event(delivery, data, bytes(body), json_error=json_error)


def decode_event(
    delivery: VerifiedDelivery, data: Any, body: bytes = b"", *, json_error: str | None = None
) -> AnyCallbackEvent:
    """The event an authenticated body stands for. Never raises.

    See [`verify_callback`][assetpay_async.callbacks.verify_callback].
    """

    def unknown(reason: str, approval_key: str | None = None) -> UnknownCallbackEvent:
        return UnknownCallbackEvent(
            delivery.delivery_id, delivery.timestamp, data, reason, body, approval_key
        )

    if json_error is not None:
        return unknown(f"the body is not JSON ({json_error})")
    if not isinstance(data, dict):
        return unknown("the body is not a JSON object")
    trade = data.get("trade")
    if isinstance(trade, dict):
        try:
            decoded = _decode_trade(trade)
        except InvalidCallbackBodyError as exc:
            gate = trade.get("type") == "withdraw" and trade.get("status") == "initiated"
            key = f"approval:{_text(trade.get('id')) or delivery.delivery_id}" if gate else None
            return unknown(str(exc), key)
        return CallbackEvent(delivery.delivery_id, delivery.timestamp, decoded, data)
    withdrawal = data.get("withdrawal")
    if isinstance(withdrawal, dict):
        return CryptoWithdrawalEvent(
            delivery.delivery_id,
            delivery.timestamp,
            CryptoWithdrawal.from_json(withdrawal),
            data,
        )
    deposit = data.get("deposit")
    if isinstance(deposit, dict):
        return CryptoDepositEvent(
            delivery.delivery_id, delivery.timestamp, CryptoDeposit.from_json(deposit), data
        )
    if "trade" in data:
        return unknown("the body's trade is not an object")
    return unknown("a body of a shape this SDK does not know")


def is_test_ping(data: object) -> bool:
    """True when decoded JSON is AssetPay's test ping: an object with ``"test": true`` and no trade."""
    return isinstance(data, dict) and data.get("test") is True and "trade" not in data


# --- helpers ----------------------------------------------------------------------------------------------


def secret_keys(secrets: str | Sequence[str]) -> tuple[bytes, ...]:
    items = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    if not items:
        raise ValueError("configure at least one callback secret")
    if not all(isinstance(item, str) and item for item in items):
        raise ValueError("callback secrets must be non-empty strings")
    return tuple(item.encode() for item in items)


def check_tolerance(tolerance: float) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise TypeError("tolerance must be a number of seconds")
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError("tolerance must be a finite number of seconds, at least 0")
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


def _load_json(body: object) -> tuple[Any, str | None]:
    if not isinstance(body, bytes | bytearray | memoryview):
        return None, "not bytes"
    try:
        return json.loads(bytes(body)), None
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
