"""The hot path's shortcuts decide exactly as the full paths they stand in front of.

`decode_envelope` answers a well-formed 2xx success without its full checks, and `decode_cancel_result` builds
the common cancel answer without the converter: for any input, each must return what the full path returns,
or refuse what it refuses, with the same error.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetpay_async import AssetPayError, CancelResult, CancelStatus
from assetpay_async._converter import ShapeError, decode, decode_cancel_result
from assetpay_async._envelope import _decode_envelope, decode_envelope

_TEXT = st.text(max_size=8)
_SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | _TEXT
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "tradeId": _VALUES | _TEXT,
        "itemId": _VALUES | _TEXT,
        "status": st.sampled_from(["cancelled", "failed", "cancel_requested", ""]) | _VALUES,
        "externalId": _VALUES | _TEXT,
        "requestId": _VALUES,
        "extra": _VALUES,
    },
)


def _outcome(run: Any) -> tuple[str, Any]:
    try:
        return "ok", run()
    except (AssetPayError, ShapeError) as exc:
        return "error", (type(exc), str(exc), getattr(exc, "ambiguous", None))


@settings(max_examples=300)
@given(data=_FIELDS | _VALUES, request_id=st.none() | _TEXT)
def test_the_cancel_result_shortcut_decodes_as_the_converter(
    data: Any, request_id: str | None
) -> None:
    full = {**data, "requestId": request_id} if isinstance(data, dict) else data
    fast = _outcome(lambda: decode_cancel_result(data, request_id))
    assert fast == _outcome(lambda: decode(full, CancelResult))


def test_the_cancel_result_shortcut_keeps_an_unknown_status_and_the_external_id() -> None:
    data = {"tradeId": "t", "itemId": "i", "status": "cancel_requested", "externalId": "e"}
    result = decode_cancel_result(data, "r")
    assert result == CancelResult("t", "i", CancelStatus("cancel_requested"), "e", "r")
    assert not result.status.known
    assert (
        decode_cancel_result({**data, "status": "cancelled"}, None).status is CancelStatus.CANCELLED
    )


_DOCS = st.fixed_dictionaries(
    {},
    optional={
        "success": st.booleans() | _VALUES,
        "data": _VALUES,
        "requestId": _VALUES,
        "error": st.fixed_dictionaries({}, optional={"key": _TEXT, "code": st.integers(0, 2000)})
        | _VALUES,
    },
)
_BODIES = (
    _DOCS.map(lambda doc: json.dumps(doc).encode())
    | _VALUES.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=12)
    | st.sampled_from([b"", b"  ", b"{", b'{"success": true, "data": 1}  ', b"[1]"])
)


@settings(max_examples=400)
@given(
    status=st.sampled_from([200, 201, 204, 299, 300, 400, 404, 429, 500, 503]),
    header_id=st.none() | _TEXT,
    body=_BODIES,
    ambiguous=st.booleans(),
    truncated=st.booleans(),
)
def test_the_envelope_shortcut_decodes_as_the_full_path(
    status: int, header_id: str | None, body: bytes, ambiguous: bool, truncated: bool
) -> None:
    headers = {} if header_id is None else {"x-request-id": header_id}

    def fast() -> Any:
        return decode_envelope(
            status, headers, body, "sent", ambiguous=ambiguous, truncated=truncated
        )

    def full() -> Any:
        return _decode_envelope(
            status, headers, body, "sent", ambiguous=ambiguous, truncated=truncated
        )

    assert _outcome(fast) == _outcome(full)


@pytest.mark.parametrize(
    ("body", "request_id"),
    [
        (b'{"success": true, "data": {"a": 1}, "requestId": "env"}', "env"),
        (b'{"success": true, "data": null, "requestId": ""}', "hdr"),
        (b'{"success": true, "data": [], "requestId": 5}', "hdr"),
    ],
)
def test_a_success_takes_the_envelope_request_id_else_the_header(
    body: bytes, request_id: str
) -> None:
    envelope = decode_envelope(200, {"x-request-id": "hdr"}, body, "sent")
    assert envelope.request_id == request_id
    assert envelope.data == json.loads(body)["data"]
