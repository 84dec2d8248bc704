"""Every answer the sandbox gives validates against the published schema of its operation (``jsonschema``).

A scenario calls each served operation over raw HTTP, successes and refusals alike, and every body is checked:
the success envelope of the operation on a 2xx, the error envelope otherwise, and the status against the ones
the operation declares.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp
import jsonschema
import pytest

from assetpay_async import Quota
from assetpay_async.sandbox import Sandbox, SandboxBehavior
from tests.support.openapi_schemas import DECLARED_STATUSES, ERROR, OPERATIONS

HOUR = dt.timedelta(hours=1)
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS)


class Recorder:
    """Calls the sandbox over HTTP and keeps (operation, status, body) of every answer."""

    def __init__(self, sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
        self.sandbox = sandbox
        self.http = http
        self.answers: list[tuple[str, int, Any]] = []

    async def call(
        self, operation: str, method: str, path: str, token: str | None, **params: str
    ) -> Any:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with self.http.request(
            method, self.sandbox.base_url + path, headers=headers, params=params or None
        ) as response:
            body = await response.json()
            self.answers.append((operation, response.status, body))
            return body


async def _scenario(recorder: Recorder) -> None:
    sb = recorder.sandbox
    merchant = sb.add_merchant("verified", quotas={"cancel-item": Quota(8, 60.0)})
    user, other = sb.add_user(merchant), sb.add_user(merchant)
    token = sb.token(user)
    old = sb.add_trade(
        user,
        items=3,
        age=HOUR,
        listing_ids=True,
        external_id="order-1",
        item_external_ids=["a", "b", "c"],
    )
    plain = sb.add_trade(user, items=2, age=HOUR)
    young = sb.add_trade(user, age=dt.timedelta(minutes=1))
    rust = sb.add_trade(user, game="rust", age=HOUR)
    foreign = sb.add_trade(other, age=HOUR)
    sb.add_trade(user, type="deposit", age=HOUR)
    old.items[2].refuse_cancel = True

    def item_path(trade: str, item: str) -> str:
        return f"/client/trading/withdraw/{trade}/items/{item}/cancel"

    call = recorder.call
    await call("cancel-item", "POST", item_path("order-1", "a"), token)
    await call("cancel-item", "POST", item_path(plain.id, plain.items[0].id), token)
    await call("cancel-item", "POST", item_path(young.id, young.items[0].id), token)
    await call("cancel-item", "POST", item_path(rust.id, rust.items[0].id), token)
    await call("cancel-item", "POST", item_path(foreign.id, foreign.items[0].id), token)
    await call("cancel-item", "POST", item_path(plain.id, "nope"), token)
    await call("cancel-item", "POST", item_path("no-such", "x"), token)
    await call("cancel-item", "POST", item_path("%20", "x" * 129), token)
    await call("cancel-item", "POST", item_path(plain.id, plain.items[1].id), None)
    await call("cancel-trade", "POST", f"/client/trading/withdraw/{old.id}/cancel", token)
    await call("cancel-trade", "POST", f"/client/trading/withdraw/{young.id}/cancel", token)
    # Over the 8-a-minute quota by now: the next ones draw 429s.
    await call("cancel-trade", "POST", "/client/trading/withdraw/order-1/cancel", token)
    await call("cancel-item", "POST", item_path(plain.id, plain.items[1].id), token)
    sb.advance(120)
    await call("cancel-trade", "POST", f"/client/trading/withdraw/{foreign.id}/cancel", token)
    await call("cancel-trade", "POST", "/client/trading/withdraw/no-such/cancel", token)
    body = await call("list-trades", "GET", "/client/trades", token, limit="2")
    await call("list-trades", "GET", "/client/trades", token, cursor=body["data"]["nextCursor"])
    await call("list-trades", "GET", "/client/trades", token, game="252490", type="withdraw")
    await call("list-trades", "GET", "/client/trades", token, game="440")
    await call("list-trades", "GET", "/client/trades", token, limit="0")
    await call("get-trade", "GET", f"/client/trades/{old.id}", token)
    await call("get-trade", "GET", "/client/trades/order-1", token)
    await call("get-trade", "GET", f"/client/trades/{foreign.id}", token)
    await call("get-trade", "GET", "/client/trades/no-such", token)


async def test_every_answer_of_every_operation_matches_its_schema() -> None:
    behavior = SandboxBehavior(trade_by_id_route=True)
    async with Sandbox(seed=3, behavior=behavior) as sb, aiohttp.ClientSession() as http:
        recorder = Recorder(sb, http)
        await _scenario(recorder)
    answers = recorder.answers
    assert {op for op, _, _ in answers} == set(OPERATIONS)
    statuses = {(op, status) for op, status, _ in answers}
    # The scenario reaches successes and refusals of each operation, a 429 and a 401 among them.
    assert {("cancel-item", 429), ("cancel-item", 401), ("cancel-trade", 429)} <= statuses
    assert {("list-trades", 200), ("list-trades", 400), ("get-trade", 403)} <= statuses
    problems = []
    for op, status, body in answers:
        assert status in DECLARED_STATUSES[op], (op, status, body)
        schema = OPERATIONS[op] if 200 <= status < 300 else ERROR
        problems += [
            f"{op} {status}: {error.json_path}: {error.message}"
            for error in _validator(schema).iter_errors(body)
        ]
    assert problems == []


@pytest.mark.parametrize(
    ("operation", "data"),
    [
        ("cancel-item", {"tradeId": "not-a-uuid", "itemId": "x", "status": "cancelled"}),
        ("cancel-item", {"tradeId": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "itemId": "x"}),
        ("cancel-trade", {"tradeId": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "requested": 1}),
        ("list-trades", {"items": [{"id": "x"}], "nextCursor": None}),
        ("get-trade", {"id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "type": "swap"}),
    ],
)
def test_the_schemas_refuse_what_the_document_does_not_allow(
    operation: str, data: dict[str, Any]
) -> None:
    body = {"requestId": "r", "success": True, "data": data}
    assert list(_validator(OPERATIONS[operation]).iter_errors(body))


def test_the_error_schema_refuses_an_envelope_without_a_key() -> None:
    body = {"requestId": "r", "success": False, "error": {"code": 21, "message": "x"}}
    assert list(_validator(ERROR).iter_errors(body))
