"""The one cattrs converter: camelCase keys, extra keys ignored, open enums, ISO 8601 datetimes."""

from __future__ import annotations

import datetime as dt
import functools
import types
import uuid
from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._models import (
    CancelResult,
    CancelStatus,
    Game,
    OpenEnum,
    Trade,
    TradeCancelItem,
    TradeCancelResult,
    TradeItem,
    TradePage,
    camel,
)

T = TypeVar("T")

_KEEPS_RAW = (Trade, TradeItem)
"""Read results that keep the JSON they were decoded from (``.raw``)."""


def _structure_datetime(value: Any, _: type) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _structure_uuid(value: Any, _: type) -> uuid.UUID:
    if not isinstance(value, str):
        raise TypeError(f"expected a UUID string, got {type(value).__name__}")
    return uuid.UUID(value)


def _structure_open_enum(value: Any, cls: type[OpenEnum]) -> OpenEnum:
    # Open enums keep unknown *strings*; a value of another type is a broken answer, not a new member.
    # The one exception is the game, a Steam app id that a server might send as a number.
    if isinstance(value, int) and not isinstance(value, bool) and issubclass(cls, Game):
        return cls(str(value))
    if not isinstance(value, str):
        raise TypeError(f"expected a string for {cls.__name__}, got {type(value).__name__}")
    return cls(value)


def _strict(value: Any, cls: type[T]) -> T:
    # cattrs would happily turn 5 into "5" or "yes" into True; a wrong type is a broken response.
    if cls is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # type: ignore[return-value,unused-ignore]
    if type(value) is not cls:
        raise TypeError(f"expected {cls.__name__}, got {type(value).__name__}")
    return value  # type: ignore[no-any-return,unused-ignore]


def make_converter() -> cattrs.Converter:
    """Build the SDK's converter: simple types first, then the classes that use them."""
    conv = cattrs.Converter(forbid_extra_keys=False)
    # cattrs dispatches on the class (singledispatch) before it tries predicates, and its own hooks for
    # the simple types coerce ("false" -> True, 5 -> "5"): replace them by class. The open enums get their
    # own class hook below, which singledispatch prefers to str's for these str subclasses.
    for simple in (str, int, float, bool):
        conv.register_structure_hook(simple, _strict)
    conv.register_structure_hook(dt.datetime, _structure_datetime)
    conv.register_unstructure_hook(dt.datetime, lambda d: d.isoformat().replace("+00:00", "Z"))
    conv.register_structure_hook(uuid.UUID, _structure_uuid)
    conv.register_unstructure_hook(uuid.UUID, str)
    conv.register_structure_hook(OpenEnum, _structure_open_enum)
    for cls in (CancelResult, TradeCancelItem, TradeCancelResult, TradeItem, Trade, TradePage):
        renames = {
            a.name: override(omit=True) if a.name == "raw" else override(rename=camel(a.name))
            for a in attrs.fields(cls)
        }
        structure: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, conv, **renames)  # type: ignore[arg-type]
        if cls in _KEEPS_RAW:
            structure = _keeping_raw(structure)
        conv.register_structure_hook(cls, structure)
        conv.register_unstructure_hook(
            cls,
            make_dict_unstructure_fn(cls, conv, **renames),  # type: ignore[arg-type]
        )
    return conv


def _keeping_raw(structure: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``structure`` that also keeps the mapping it decoded as the result's ``raw`` (a read-only copy)."""

    def with_raw(data: Any, cls: Any) -> Any:
        value = structure(data, cls)
        object.__setattr__(value, "raw", types.MappingProxyType(dict(data)))
        return value

    return with_raw


@functools.cache
def converter() -> cattrs.Converter:
    """The process-wide converter (built on first use)."""
    return make_converter()


class ShapeError(Exception):
    """Data that does not fit the class it is decoded into (the message says why, never the data)."""


_CONVERSION_FAILURES = (
    cattrs.BaseValidationError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    ArithmeticError,
    RecursionError,
)


def decode(data: Any, cls: type[T]) -> T:
    """The one decode-or-raise path: ``data`` as ``cls``, or [`ShapeError`][assetpay_async._converter.ShapeError].

    Every way the converter can fail on hostile data (a cattrs validation error, a wrong type, a missing key,
    an absurd number, absurd nesting) becomes ``ShapeError``; the response decoder and the callback verifier
    turn it into their own typed error.
    """
    try:
        return converter().structure(data, cls)
    except _CONVERSION_FAILURES as exc:
        reason = f"{type(exc).__name__}: {exc}"[:200]
        raise ShapeError(reason) from exc


_CANCEL_STATUSES: Final = {member.value: member for member in CancelStatus}


def decode_cancel_result(data: Any, request_id: str | None) -> CancelResult:
    """``data`` (a cancel's ``data``) as a [`CancelResult`][assetpay_async.CancelResult] with ``request_id``,
    or [`ShapeError`][assetpay_async._converter.ShapeError]: `decode` with the ``requestId`` added.

    The common answer (string ids, a known status, an optional string externalId) is built directly, as the
    converter would build it; anything else goes through the converter, which accepts or refuses it.
    """
    if type(data) is dict:
        trade_id, item_id = data.get("tradeId"), data.get("itemId")
        status, external_id = data.get("status"), data.get("externalId")
        if (
            type(trade_id) is str
            and type(item_id) is str
            and type(status) is str
            and (external_id is None or type(external_id) is str)
            and (known := _CANCEL_STATUSES.get(status)) is not None
        ):
            return CancelResult(trade_id, item_id, known, external_id, request_id)
    if isinstance(data, dict):
        # The request id is the envelope's, not a field of data: add it rather than build the result twice.
        data = {**data, "requestId": request_id}
    return decode(data, CancelResult)
