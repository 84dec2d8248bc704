"""The values of callbacks: verified events, approval decisions and framework-neutral answers.

Nothing here touches the network: `_callback_core` verifies and decodes a delivery into these (or raises one
of the errors in `_callback_errors`), `_callback_processor` answers AssetPay with them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Self

import attrs

from ._converter import converter
from ._errors import ConfigurationError
from ._models import Trade, TradeItem, TradeStatus, TradeType

__all__ = [
    "APPROVAL_STATUS_CRYPTO",
    "AnyCallbackEvent",
    "ApprovalDecision",
    "ApprovalRequest",
    "CallbackAnswer",
    "CallbackEvent",
    "CryptoDeposit",
    "CryptoDepositEvent",
    "CryptoEvent",
    "CryptoTransfer",
    "CryptoWithdrawal",
    "CryptoWithdrawalEvent",
    "UnknownCallbackEvent",
    "VerifiedDelivery",
    "is_gate_status",
]

APPROVAL_STATUS_CRYPTO: Final = "awaiting_approval"
"""The status of a crypto withdrawal waiting for the merchant's approval (an approval gate)."""

JSON: Final = "application/json"


def is_gate_status(value: object, expected: str) -> bool:
    """True when ``value`` (a string or an open enum) spells ``expected`` in any case."""
    text = getattr(value, "value", value)
    return isinstance(text, str) and text.casefold() == expected


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


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@attrs.frozen
class CallbackEvent:
    """A verified callback: a trade whose status changed.

    There is no event name: the event is the new ``trade.status``. One callback carries the whole trade, and
    its items change one by one: an item can be ``reverted`` while the trade is still ``active``. Look at
    [`item_statuses`][assetpay_async.callbacks.CallbackEvent.item_statuses] or
    [`items_with_status`][assetpay_async.callbacks.CallbackEvent.items_with_status], not only at ``status``.

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
        """The trade's new status (the trade's, not each item's: see `item_statuses`)."""
        return self.trade.status

    @property
    def item_statuses(self) -> Mapping[str, TradeStatus]:
        """Every item's own status, by AssetPay's item id.

        An item without a status of its own (a deposit's) shares the trade's.
        """
        return {item.id: item.status or self.trade.status for item in self.trade.items}

    def items_with_status(self, *statuses: TradeStatus | str) -> tuple[TradeItem, ...]:
        """The items whose own status is one of ``statuses``, e.g. every ``reverted`` item to refund.

        An item without a status of its own counts with the trade's status. Statuses compare in any case.
        """
        wanted = {str(getattr(s, "value", s)).casefold() for s in statuses}
        return tuple(
            item
            for item in self.trade.items
            if str((item.status or self.trade.status).value).casefold() in wanted
        )

    @property
    def is_approval_request(self) -> bool:
        """True for a withdrawal awaiting the merchant's approval (``withdraw`` + ``initiated``, any case).

        The answer decides the withdrawal: a 2xx approves it unless the body rejects it.
        """
        return is_gate_status(self.trade.type, TradeType.WITHDRAW.value) and is_gate_status(
            self.trade.status, TradeStatus.INITIATED.value
        )

    @property
    def dedupe_key(self) -> str:
        """The key under which to remember that this callback was handled.

        The delivery id, except for approval requests: every approval attempt carries a new delivery id, so
        those are keyed on the trade id.
        """
        if self.is_approval_request:
            return f"approval:{self.trade.id}"
        return f"delivery:{self.delivery_id}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the event's envelope, its trade as AssetPay sent it, and each item's status."""
        return {
            "kind": "trade",
            "delivery_id": self.delivery_id,
            "timestamp": _when(self.timestamp),
            "status": self.status.value,
            "is_approval_request": self.is_approval_request,
            "item_statuses": {key: value.value for key, value in self.item_statuses.items()},
            "trade": self._trade_json(),
        }

    def _trade_json(self) -> dict[str, Any]:
        sent = self.payload.get("trade")
        if isinstance(sent, Mapping):
            return dict(sent)
        unstructured: dict[str, Any] = converter().unstructure(self.trade)  # an event built by hand
        return unstructured


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@attrs.frozen
class CryptoTransfer:
    """A crypto withdrawal or deposit as a callback carries it. Its schema is not published: only ``id``,
    ``status`` and ``externalId`` are read (when they are strings); everything else is in ``data``.

    ``CryptoWithdrawal`` and ``CryptoDeposit`` are other names of this class.

    Attributes:
        id: AssetPay's id of the withdrawal or deposit.
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


CryptoWithdrawal = CryptoTransfer
CryptoDeposit = CryptoTransfer


@attrs.frozen
class CryptoEvent:
    """A verified crypto callback (``{"withdrawal": ...}`` or ``{"deposit": ...}``): the logic both share.

    Dispatch on the subclasses, [`CryptoWithdrawalEvent`][assetpay_async.callbacks.CryptoWithdrawalEvent] and
    [`CryptoDepositEvent`][assetpay_async.callbacks.CryptoDepositEvent].

    Attributes:
        delivery_id: AssetPay's id of this delivery; retries of one event keep it.
        timestamp: the signed time of the delivery, in UTC.
        transfer: the withdrawal or deposit as sent (also ``.withdrawal`` / ``.deposit``).
        payload: the whole decoded body.
    """

    KIND: ClassVar[str] = ""

    delivery_id: str
    timestamp: dt.datetime
    transfer: CryptoTransfer
    payload: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False, hash=False)

    @property
    def status(self) -> str | None:
        return self.transfer.status

    @property
    def is_approval_request(self) -> bool:
        """True for a withdrawal in ``awaiting_approval`` (any case): the answer approves or rejects it."""
        return self.KIND == "withdrawal" and is_gate_status(
            self.transfer.status, APPROVAL_STATUS_CRYPTO
        )

    @property
    def is_certainly_not_a_gate(self) -> bool:
        """A deposit, or a withdrawal whose status is a string other than ``awaiting_approval``."""
        return self.KIND == "deposit" or (
            self.transfer.status is not None and not self.is_approval_request
        )

    @property
    def dedupe_key(self) -> str:
        """``approval:withdrawal:<id>`` for an approval gate (attempts get new delivery ids), else the delivery."""
        if self.is_approval_request and self.transfer.id is not None:
            return f"approval:{self.KIND}:{self.transfer.id}"
        return f"delivery:{self.delivery_id}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the envelope and the object as AssetPay sent it."""
        return {
            "kind": self.KIND,
            "delivery_id": self.delivery_id,
            "timestamp": _when(self.timestamp),
            "status": self.status,
            "is_approval_request": self.is_approval_request,
            self.KIND: dict(self.transfer.data),
        }


@attrs.frozen
class CryptoWithdrawalEvent(CryptoEvent):
    """A verified ``{"withdrawal": {...}}`` callback: a crypto withdrawal whose status changed.

    One in ``awaiting_approval`` is an approval gate, decided by the same ``on_approval`` hook as a trade's.
    """

    KIND: ClassVar[str] = "withdrawal"

    @property
    def withdrawal(self) -> CryptoTransfer:
        """The withdrawal as sent."""
        return self.transfer


@attrs.frozen
class CryptoDepositEvent(CryptoEvent):
    """A verified ``{"deposit": {...}}`` callback: a crypto deposit whose status changed (never a gate)."""

    KIND: ClassVar[str] = "deposit"

    @property
    def deposit(self) -> CryptoTransfer:
        """The deposit as sent."""
        return self.transfer


@attrs.frozen
class UnknownCallbackEvent:
    """A verified delivery whose body the SDK cannot read: not JSON, a shape it does not know, or a trade that
    does not decode. Kept with the raw payload rather than refused, since the signature proves AssetPay sent it.

    Attributes:
        delivery_id: AssetPay's id of this delivery.
        timestamp: the signed time of the delivery, in UTC.
        payload: the decoded JSON (None when the body is not JSON).
        reason: why it is not one of the known events.
        body: the raw body.
        approval_key: set unless the body is certainly not an approval gate (e.g. a trade that does not
            decode but whose status is ``completed``): the processor answers every such delivery with the
            rejection, since nothing unread may be approved. It is then the dedupe key.
    """

    delivery_id: str
    timestamp: dt.datetime
    payload: Any
    reason: str
    body: bytes = attrs.field(default=b"", repr=False, eq=False, hash=False)
    approval_key: str | None = None

    @property
    def is_approval_request(self) -> bool:
        """True unless the body is certainly not an approval gate: such a delivery gets the rejection."""
        return self.approval_key is not None

    @property
    def dedupe_key(self) -> str:
        return self.approval_key or f"delivery:{self.delivery_id}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the envelope, the reason and the decoded payload (None when not JSON)."""
        return {
            "kind": "unknown",
            "delivery_id": self.delivery_id,
            "timestamp": _when(self.timestamp),
            "reason": self.reason,
            "is_approval_request": self.is_approval_request,
            "payload": self.payload,
        }


AnyCallbackEvent = CallbackEvent | CryptoWithdrawalEvent | CryptoDepositEvent | UnknownCallbackEvent
"""Every kind of verified callback; dispatch on its type."""

ApprovalRequest = CallbackEvent | CryptoWithdrawalEvent
"""The events that are approval gates (``is_approval_request``), passed to ``on_approval``."""


# --- answers ----------------------------------------------------------------------------------------------


def _headers(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


@attrs.frozen
class CallbackAnswer:
    """A framework-neutral HTTP answer to a callback: write ``status``, ``headers`` and ``body`` as they are.

    Attributes:
        status: the HTTP status.
        headers: the response headers (``Content-Type`` included).
        body: the response body.
    """

    status: int
    headers: Mapping[str, str] = attrs.field(converter=_headers)
    body: bytes

    @classmethod
    def json(
        cls, status: int, payload: Mapping[str, object], *, headers: Mapping[str, str] | None = None
    ) -> Self:
        """An answer whose body is ``payload`` as compact JSON."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, {"Content-Type": JSON, **(headers or {})}, body)

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header."""
        return self.headers.get("Content-Type", JSON)


@attrs.frozen
class ApprovalDecision:
    """The merchant's verdict on an approval request. Build it with `approve` or `reject`."""

    approved: bool
    reason: str = ""

    # The one rejection answer: 200 with {"action": "reject", "reason": ...}, what the official clients send.
    # It rejects an approval gate and acknowledges any other delivery, so it is safe whatever the body was.
    REJECT_STATUS: ClassVar[int] = 200

    @classmethod
    def approve(cls) -> Self:
        """Let the withdrawal proceed."""
        return cls(approved=True)

    @classmethod
    def reject(cls, reason: str) -> Self:
        """Stop the withdrawal; ``reason`` is passed on to AssetPay."""
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigurationError("a rejection needs a non-empty reason")
        return cls(approved=False, reason=reason)

    def answer(self) -> CallbackAnswer:
        """The HTTP answer that carries this decision."""
        if self.approved:
            return CallbackAnswer.json(200, {"action": "approve"})
        return CallbackAnswer.json(self.REJECT_STATUS, {"action": "reject", "reason": self.reason})
