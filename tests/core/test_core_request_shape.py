"""The exact request the SDK hands to aiohttp, checked with aioresponses.

This uses the ``aioresponses-ng`` fork (same import name): plain aioresponses 0.7.9 fails on aiohttp 3.14
with ``ClientResponse.__init__() missing ... 'stream_writer'``.
"""

from __future__ import annotations

import re
import uuid

import aiohttp
import pytest
from aioresponses import aioresponses
from aioresponses.core import RequestCall
from multidict import CIMultiDict
from yarl import URL

from assetpay_async import (
    DEFAULT_BASE_URL,
    AssetPaySession,
    CancelStatus,
    Quota,
    RetryPolicy,
    TransportError,
)
from tests.support.core import ITEM_ID, TRADE_ID, make_token

CANCEL_URL = f"{DEFAULT_BASE_URL}/client/trading/withdraw/{TRADE_ID}/items/{ITEM_ID}/cancel"
OK_PAYLOAD = {
    "requestId": "srv-1",
    "success": True,
    "data": {"tradeId": str(TRADE_ID), "itemId": str(ITEM_ID), "status": "cancelled"},
}
UA_PATTERN = re.compile(r"assetpay-async/\S+ aiohttp/\S+ Python/\d+\.\d+\.\d+\S*")


def _calls(mocked: aioresponses) -> dict[tuple[str, URL], list[RequestCall]]:
    assert mocked.requests is not None
    return mocked.requests


def _session() -> AssetPaySession:
    retry = RetryPolicy(backoff_base=0.001, backoff_cap=0.002)
    return AssetPaySession(cancel_quota=Quota(1000, 1.0), latency_margin=0.0, retry=retry)


async def test_cancel_request_shape() -> None:
    token = make_token()
    with aioresponses() as mocked:
        mocked.post(CANCEL_URL, payload=OK_PAYLOAD)
        async with _session() as session:
            client = session.client(token)
            result = await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)

    assert result.status is CancelStatus.CANCELLED
    [(method, url)] = _calls(mocked)
    assert (method, url) == ("POST", URL(CANCEL_URL))  # a uuid.UUID renders lowercase
    [call] = _calls(mocked)[(method, url)]
    assert call.kwargs.get("data") is None
    assert call.kwargs.get("json") is None
    assert not call.kwargs.get("params")
    headers = CIMultiDict(call.kwargs["headers"])
    assert headers["Authorization"] == f"Bearer {token}"
    assert headers["Accept"] == "application/json"
    assert UA_PATTERN.fullmatch(headers["User-Agent"])
    request_id = headers["X-Request-Id"]
    assert uuid.UUID(request_id).version == 4
    assert str(uuid.UUID(request_id)) == request_id


async def test_each_call_has_its_own_request_id() -> None:
    with aioresponses() as mocked:
        mocked.post(CANCEL_URL, payload=OK_PAYLOAD, repeat=True)
        async with _session() as session:
            client = session.client(make_token())
            await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
    calls = _calls(mocked)[("POST", URL(CANCEL_URL))]
    assert len({CIMultiDict(call.kwargs["headers"])["X-Request-Id"] for call in calls}) == 2


@pytest.mark.parametrize(
    "failure",
    [
        aiohttp.ClientConnectionResetError("Cannot write to closing transport"),
        aiohttp.ClientConnectionError("Connection closed"),
    ],
    ids=["reset", "closed"],
)
async def test_every_connection_failure_is_a_transport_error(failure: Exception) -> None:
    with aioresponses() as mocked:
        mocked.post(CANCEL_URL, exception=failure, repeat=True)
        async with _session() as session:
            with pytest.raises(TransportError) as info:
                await session.client(make_token()).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
    assert info.value.ambiguous is True  # it may have been written before the connection died
    calls = _calls(mocked)[("POST", URL(CANCEL_URL))]
    assert len(calls) == 4
    assert len({CIMultiDict(call.kwargs["headers"])["X-Request-Id"] for call in calls}) == 1
