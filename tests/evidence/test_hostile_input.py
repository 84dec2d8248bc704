"""Hostile input: whatever the server sends, and whatever ids the caller passes.

- Any status, headers and body into the response decoder raise only the SDK's own exceptions (never a
  KeyError, TypeError, RecursionError or cattrs error), for every decode function.
- Refs built to escape the cancel route either travel as one percent-encoded segment that decodes to the very
  ref given, or are refused with InvalidRequestError, and a refused ref never leaves the process.

The callback verifier's fuzzing lives in ``tests/callbacks/test_callback_properties.py``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assetpay_async import (
    APIError,
    AssetPaySession,
    InvalidRequestError,
    InvalidResponseError,
    OutcomeKind,
)
from assetpay_async import _protocol as proto
from assetpay_async.testing import run_virtual
from tests.support.evidence import FAST_CANCEL, world

T = TypeVar("T")

CANONICAL = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
ITEM = uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479")

# -- the response decoder --------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
uuid_texts = st.uuids().map(str) | st.sampled_from([CANONICAL, CANONICAL.upper(), "", "x"])


def _object_like(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts holding any subset of ``fields`` (each with its plausible or a random value) and random extras."""
    return st.fixed_dictionaries(
        {}, optional={k: v | json_values for k, v in fields.items()}
    ).flatmap(
        lambda d: st.dictionaries(st.text(max_size=8), json_values, max_size=2).map(
            lambda extra: {**extra, **d}
        )
    )


items = _object_like(
    {
        "id": uuid_texts,
        "appid": st.sampled_from([730, 252490]),
        "status": st.sampled_from(["active", "reverted", "weird"]),
        "tradable": st.booleans(),
        "offer": st.dictionaries(st.text(max_size=5), json_scalars, max_size=2),
    }
)
trades = _object_like(
    {
        "id": uuid_texts,
        "type": st.sampled_from(["withdraw", "deposit", "other"]),
        "status": st.sampled_from(["active", "canceled", "new-status"]),
        "items": st.lists(items, max_size=3),
        "game": st.sampled_from(["730", "252490", 730]),
        "totalPrice": st.floats() | st.integers(),
        "createdAt": st.sampled_from(["2026-01-01T00:00:00.000Z", "2026-13-45", "yesterday"]),
    }
)
datas = (
    json_values
    | trades
    | _object_like(
        {"tradeId": uuid_texts, "itemId": uuid_texts, "status": st.sampled_from(["cancelled", "x"])}
    )
    | _object_like({"items": st.lists(trades, max_size=2), "nextCursor": st.text(max_size=8)})
)
errors = _object_like(
    {
        "code": st.integers(),
        "key": st.sampled_from(
            ["RATE_LIMITED", "VALIDATION_FAILED", "TRADE_NOT_CANCELLABLE", "NEW"]
        ),
        "message": st.text(max_size=30) | st.lists(st.text(max_size=10), max_size=3),
        "fields": st.dictionaries(st.text(max_size=8), json_scalars, max_size=3),
        "details": json_values,
    }
)
envelopes = _object_like(
    {
        "requestId": st.text(max_size=12),
        "success": st.booleans(),
        "data": datas,
        "error": errors,
    }
)
bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | envelopes.map(lambda v: json.dumps(v).encode())
    | st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth)
)
header_maps = st.dictionaries(
    st.sampled_from(
        ["Content-Type", "content-type", "X-Request-Id", "Retry-After", "retry-after", "X"]
    )
    | st.text(max_size=10),
    st.text(max_size=40),
    max_size=4,
)
statuses = st.integers(100, 599) | st.sampled_from([200, 201, 204, 400, 404, 429, 500, 502, 503])

DECODERS: list[Callable[[proto.Envelope, int], object]] = [
    lambda env, status: proto.decode_cancel(env, status=status),
    proto.decode_trade,
    proto.decode_trade_page,
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=statuses, headers=header_maps, body=bodies, ambiguous=st.booleans())
@example(
    status=200,
    headers={},
    body=b'{"success": true, "data": {"totalPrice": 1e999}}',
    ambiguous=False,
)
@example(
    status=200,
    headers={},
    body=b'{"success": true, "data": {"id": "x", "type": "withdraw", '
    b'"status": "active", "totalPrice": ' + b"9" * 400 + b"}}",
    ambiguous=False,
)
def test_the_decoder_raises_only_sdk_errors(
    status: int, headers: dict[str, str], body: bytes, ambiguous: bool
) -> None:
    envelope = _outcome(
        lambda: proto.decode_envelope(status, headers, body, "sent-id", ambiguous=ambiguous)
    )
    if isinstance(envelope, BaseException):
        assert isinstance(envelope, APIError | InvalidResponseError), repr(envelope)
        assert str(envelope)  # renders without raising
        return
    assert 200 <= status < 300
    for decode in DECODERS:
        decoded = _outcome(functools.partial(decode, envelope, status))
        if isinstance(decoded, BaseException):
            assert isinstance(decoded, InvalidResponseError), repr(decoded)
            assert (
                decoded.ambiguous
            )  # a 2xx: AssetPay acted on the call, only its answer is unreadable
            assert str(decoded)


def _outcome(call: Callable[[], T]) -> T | Exception:
    """What ``call`` returns, or the exception it raises (of any type)."""
    try:
        return call()
    except Exception as exc:  # the test is about which exceptions come out
        return exc


@pytest.mark.parametrize(
    "body",
    [b'{"success": tr', b"<html>ok</html>", b"", b'{"success": true}'],
    ids=["truncated", "html", "empty", "no-data"],
)
def test_an_unreadable_2xx_or_5xx_answer_is_ambiguous_and_a_4xx_is_not(body: bytes) -> None:
    with pytest.raises(InvalidResponseError) as on_2xx:
        proto.decode_envelope(200, {}, body, "sent-id")
    assert on_2xx.value.ambiguous
    with pytest.raises(InvalidResponseError) as on_4xx:
        proto.decode_envelope(404, {}, body, "sent-id")
    assert not on_4xx.value.ambiguous
    # Any 5xx (a server's page, a gateway's) may follow work the server did before it failed.
    for failed in (500, 502, 503, 504):
        with pytest.raises(InvalidResponseError) as on_5xx:
            proto.decode_envelope(failed, {}, body, "sent-id")
        assert on_5xx.value.ambiguous


def test_a_success_envelope_of_the_wrong_shape_is_ambiguous() -> None:
    envelope = proto.Envelope({"tradeId": CANONICAL}, "req-1")
    with pytest.raises(InvalidResponseError) as caught:
        proto.decode_cancel(envelope, status=200)
    assert caught.value.ambiguous


# -- ids built to escape the route ------------------------------------------------------------------------

HOSTILE_PIECES = [
    "..",
    "/",
    "%2F",
    "%2f",
    "%2E%2E",
    "\\",
    "?",
    "#",
    "\r\n",
    "\x00",
    "\u2215",  # division slash
    "\uff0f",  # fullwidth solidus
    "\uff10",  # fullwidth zero
    "\uff41",  # fullwidth a
    "\u0430",  # Cyrillic a
    "\u0435",  # Cyrillic ie
    "\u2013",  # en dash
    "\u2010",  # hyphen
    "\u0661",  # Arabic-Indic one (str.isdigit() is True)
    "\u00a0",  # no-break space
    " ",
    "{",
    "urn:uuid:",
    "+",
    "_",
]


@st.composite
def mangled_uuids(draw: st.DrawFn) -> str:
    """A canonical UUID with hostile pieces inserted, substituted or appended, or repeated to overlong."""
    text = draw(st.sampled_from([CANONICAL, CANONICAL.upper(), CANONICAL.replace("-", "")]))
    for _ in range(draw(st.integers(1, 3))):
        piece = draw(st.sampled_from(HOSTILE_PIECES))
        at = draw(st.integers(0, len(text)))
        replace = draw(st.booleans())
        text = text[:at] + piece + text[at + (1 if replace else 0) :]
    if draw(st.booleans()):
        text = text * draw(st.integers(1, 300))
    return text


hostile_ids = (
    mangled_uuids()
    | st.text(max_size=80)
    | st.lists(st.sampled_from([*"0123456789abcdefABCDEF-", *HOSTILE_PIECES]), max_size=40).map(
        "".join
    )
)


_SEGMENT = re.compile(r"(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})+", re.ASCII)


@settings(max_examples=500, deadline=None)
@given(trade_id=hostile_ids)
@example(trade_id="\uff17c9e6679-7425-40de-944b-e07fc1f90ae7")
@example(trade_id="7c9e6679-7425-40de-944b-e07fc1f90ae7\r\nX-Injected: 1")
@example(trade_id="7c9e6679%2F7425-40de-944b-e07fc1f90ae7")
@example(trade_id="../../secure/merchant")
@example(trade_id="7c9e6679-7425-40de-944b-e07fc1f90ae7" * 1000)
def test_an_id_gives_one_encoded_segment_naming_it_or_invalid_request_error(trade_id: str) -> None:
    """Refs are ids or externalIds: any text is either refused, or travels as exactly one percent-encoded
    path segment that decodes back to the very text given (so it can never change the route)."""
    try:
        spec = proto.cancel_request(trade_id, ITEM)
    except InvalidRequestError as exc:
        text = str(exc)
        assert len(text) < 200
        assert "\n" not in text
        assert "\r" not in text
        return
    parts = spec.path.split("/")
    assert parts[:4] == ["", "client", "trading", "withdraw"]
    assert parts[5:] == ["items", str(ITEM), "cancel"], spec.path
    assert _SEGMENT.fullmatch(parts[4]), parts[4]
    assert parts[4] not in (".", "..")
    assert urllib.parse.unquote(parts[4], errors="strict") == trade_id


# Refused before sending: no byte reaches any server.
ESCAPES = [
    "..",
    ".",
    "",
    "  ",
    f"{CANONICAL}\r\nX-Injected: 1",
    f"{CANONICAL}\x00",
    f"{CANONICAL}\x7f",
    "x" * 129,
    CANONICAL * 1000,
]
# Legal refs (they could be a merchant's externalId) that look like path tricks: sent as one encoded
# segment, found by nobody.
ENCODED = [
    "../../secure/merchant",
    f"{CANONICAL}/../../../secure",
    f"..%2F..%2F{CANONICAL}",
    f"{CANONICAL}%2F..",
    "\uff17c9e6679-7425-40de-944b-e07fc1f90ae7",
    "7c9e6679-7425-40d\u0435-944b-e07fc1f90ae7",
    "?query#fragment",
]


class _Listener:
    """A loopback TCP listener that records every connection and every byte it receives."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = b""
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.received += await reader.read(65536)
        writer.close()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def test_escaping_ids_never_leave_the_process() -> None:
    """One by one, and as a batch, every refused ref is refused and the server sees no connection at all."""

    async def scenario() -> None:
        listener = _Listener()
        async with world() as w, listener as url:
            token = w.sandbox.token(w.user)
            async with AssetPaySession(cancel_quota=FAST_CANCEL, base_url=url) as session:
                client = session.client(token)
                for bad in ESCAPES:
                    pairs: list[tuple[str | uuid.UUID, str | uuid.UUID]] = [
                        (bad, ITEM),
                        (CANONICAL, bad),
                    ]
                    for trade_id, item_id in pairs:
                        with pytest.raises(InvalidRequestError):
                            await client.cancel_withdrawal_item(trade_id, item_id)
                    with pytest.raises(InvalidRequestError):
                        await client.get_trade(bad)
                    with pytest.raises(InvalidRequestError):
                        await client.cancel_withdrawal_trade(bad)
                outcomes = await client.cancel_withdrawal_items([(bad, ITEM) for bad in ESCAPES])
                granted = session.limiter_stats().granted
            # The same batch against the sandbox: it records no request either.
            sandbox_outcomes = await w.client.cancel_withdrawal_items(
                [(w.trade.id, bad) for bad in ESCAPES]
            )
            await asyncio.sleep(0.01)
            assert w.sandbox.requests == ()
        assert (listener.connections, listener.received) == (0, b"")
        assert granted == 0
        for batch in (outcomes, sandbox_outcomes):
            assert [o.kind for o in batch] == [OutcomeKind.FAILED] * len(ESCAPES)
            assert all(type(o.error) is InvalidRequestError for o in batch)

    run_virtual(scenario())


def test_path_like_refs_stay_one_segment_on_the_wire() -> None:
    """Refs that look like path tricks are legal (an externalId may be anything): each reaches the sandbox
    as one segment of the cancel route and names nothing there."""

    async def scenario() -> None:
        async with world() as w:
            outcomes = await w.client.cancel_withdrawal_items(
                [(ref, ITEM) for ref in ENCODED] + [(w.trade.id, ref) for ref in ENCODED]
            )
            paths = [r.path for r in w.sandbox.requests]
        assert len(paths) == 2 * len(ENCODED)
        assert all(
            p.startswith("/client/trading/withdraw/") and p.endswith("/cancel") for p in paths
        )
        assert [type(o.error).__name__ for o in outcomes] == ["TradeNotFoundError"] * len(
            ENCODED
        ) + ["ItemNotFoundError"] * len(ENCODED)

    run_virtual(scenario())
