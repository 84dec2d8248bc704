"""Issue 19 point 6: a signed body the SDK cannot certainly read as a non-gate event gets the rejection answer.

AssetPay reads any 2xx without ``{"action": "reject"}`` as an approval, so ``200 {"ok": true}`` to a body the
SDK could not read would approve a withdrawal nobody looked at. Every case runs twice: through the aiohttp
handler over loopback, and through the framework-neutral ``CallbackProcessor``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from assetpay_async import ConfigurationError
from assetpay_async.callbacks import (
    NO_APPROVER_REASON,
    ApprovalDecision,
    ApprovalRequest,
    CallbackEvent,
    OtherEvent,
    callback_handler,
    verify_callback,
    verify_signature,
)
from tests.support.callbacks import (
    NOW,
    SECRET,
    TRADE_ID,
    callback_body,
    signed_headers,
    trade_payload,
)

PATH = "/assetpay/callback"
Answer = tuple[int, Any]
Post = Callable[[bytes, dict[str, str]], Awaitable[Answer]]


class Hooks:
    """Records what reached the merchant's code; approves whatever it is asked (the worst case)."""

    def __init__(self) -> None:
        self.events: list[CallbackEvent] = []
        self.others: list[OtherEvent] = []
        self.approvals: list[ApprovalRequest] = []

    async def on_event(self, event: CallbackEvent) -> None:
        self.events.append(event)

    async def on_other(self, event: OtherEvent) -> None:
        self.others.append(event)

    async def on_approval(self, event: ApprovalRequest) -> ApprovalDecision:
        self.approvals.append(event)
        return ApprovalDecision.approve()


def _without_type() -> bytes:
    trade = trade_payload(status="initiated")
    del trade["type"]
    return json.dumps({"trade": trade}).encode()


UNREADABLE_GATES = {
    "not-json": b"\x00not json at all{",
    "truncated-approval": callback_body(status="initiated")[:-7],
    "approval-without-type": _without_type(),
    "withdrawal-without-status": json.dumps({"withdrawal": {"id": "cw-1"}}).encode(),
    "trade-and-withdrawal": json.dumps(
        {
            "trade": trade_payload(status="completed"),
            "withdrawal": {"id": "cw-1", "status": "awaiting_approval"},
        }
    ).encode(),
    "unknown-shape": b'{"event": "withdrawal.awaiting", "id": "x"}',
    "a-json-array": b"[]",
}
"""Signed bodies that may be an approval gate the SDK cannot read: rejected without asking anyone."""

GATES_WITHOUT_APPROVER = {
    "status-upper-case": callback_body(status="INITIATED"),
    "type-and-status-mixed-case": callback_body(type="Withdraw", status="Initiated"),
    "signed-test-withdrawal": json.dumps(
        {"test": True, "withdrawal": {"id": "cw-2", "status": "awaiting_approval"}}
    ).encode(),
    "crypto-status-upper-case": json.dumps(
        {"withdrawal": {"id": "cw-3", "status": "AWAITING_APPROVAL"}}
    ).encode(),
}
"""Readable approval gates that today's code took for something else: without on_approval, rejected."""


@pytest.fixture(params=["aiohttp", "processor"])
async def make_post(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[..., Awaitable[Post]]]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(hooks: Hooks, *, approver: bool = False, other: bool = True) -> Post:
        options: dict[str, Any] = {
            "on_approval": hooks.on_approval if approver else None,
            "on_other": hooks.on_other if other else None,
            "now": lambda: NOW,
        }
        if request.param == "processor":
            from assetpay_async.callbacks import CallbackProcessor

            processor = CallbackProcessor(SECRET, hooks.on_event, **options)

            async def through_processor(body: bytes, headers: dict[str, str]) -> Answer:
                answer = await processor.handle(body, headers)
                return answer.status, json.loads(answer.body) if answer.body else None

            return through_processor
        app = web.Application()
        app.router.add_post(PATH, callback_handler(SECRET, hooks.on_event, **options))
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)

        async def over_loopback(body: bytes, headers: dict[str, str]) -> Answer:
            async with client.post(PATH, data=body, headers=headers) as response:
                text = await response.text()
                return response.status, json.loads(text) if text else None

        return over_loopback

    yield make
    for client in clients:
        await client.close()


def _is_rejection(answer: Answer) -> bool:
    status, body = answer
    return (
        status == 200
        and isinstance(body, dict)
        and body.get("action") == "reject"
        and bool(body.get("reason"))
    )


@pytest.mark.parametrize("approver", [False, True], ids=["no-approver", "approver"])
@pytest.mark.parametrize("name", sorted(UNREADABLE_GATES))
async def test_a_signed_body_that_may_be_an_unread_gate_is_rejected(
    make_post: Callable[..., Awaitable[Post]], name: str, approver: bool
) -> None:
    hooks = Hooks()
    post = await make_post(hooks, approver=approver)
    body = UNREADABLE_GATES[name]

    first = await post(body, signed_headers(body, delivery_id="attempt-1"))
    again = await post(body, signed_headers(body, delivery_id="attempt-1"))  # the same delivery
    retry = await post(body, signed_headers(body, delivery_id="attempt-2"))  # AssetPay's next try

    assert _is_rejection(first), first
    assert _is_rejection(again), again  # never {"ok": true, "duplicate": true}
    assert _is_rejection(retry), retry
    assert hooks.approvals == []  # nothing unread is put to the approver
    assert hooks.events == []


@pytest.mark.parametrize("name", sorted(GATES_WITHOUT_APPROVER))
async def test_a_readable_gate_in_another_spelling_is_rejected_without_an_approver(
    make_post: Callable[..., Awaitable[Post]], name: str
) -> None:
    hooks = Hooks()
    post = await make_post(hooks)
    body = GATES_WITHOUT_APPROVER[name]

    answer = await post(body, signed_headers(body))

    assert answer == (200, {"action": "reject", "reason": NO_APPROVER_REASON})
    assert (hooks.events, hooks.others) == ([], [])


async def test_an_upper_case_initiated_trade_goes_to_the_approver(
    make_post: Callable[..., Awaitable[Post]],
) -> None:
    hooks = Hooks()
    post = await make_post(hooks, approver=True)
    body = callback_body(status="INITIATED")

    answer = await post(body, signed_headers(body))

    assert answer == (200, {"action": "approve"})
    [event] = hooks.approvals
    assert isinstance(event, CallbackEvent)
    assert event.trade.id == TRADE_ID
    assert hooks.events == []


async def test_unsigned_ping_is_still_acknowledged_and_a_signed_one_is_not_a_ping(
    make_post: Callable[..., Awaitable[Post]],
) -> None:
    hooks = Hooks()
    post = await make_post(hooks)
    ping = b'{"test": true}'

    unsigned = await post(ping, {"Content-Type": "application/json"})
    signed = await post(ping, signed_headers(ping))
    forged = await post(ping, signed_headers(ping, secret="not-the-secret"))

    assert unsigned == (200, {"ok": True})
    assert _is_rejection(
        signed
    )  # an authentic body of no known shape: acknowledged by the rejection
    assert forged[0] == 401  # a signature header makes it a delivery, checked like any other


async def test_a_readable_non_gate_is_still_acknowledged_ok(
    make_post: Callable[..., Awaitable[Post]],
) -> None:
    hooks = Hooks()
    post = await make_post(hooks)
    bodies = [
        callback_body(status="reverted"),
        callback_body(type="deposit", status="initiated"),
        callback_body(status="completed", createdAt="not a date"),  # unreadable, but not a gate
        json.dumps({"withdrawal": {"id": "cw-4", "status": "completed"}}).encode(),
        json.dumps({"deposit": {"id": "cd-1"}}).encode(),
    ]

    answers = [
        await post(body, signed_headers(body, delivery_id=f"d-{n}"))
        for n, body in enumerate(bodies)
    ]

    assert answers == [(200, {"ok": True})] * len(bodies)
    assert len(hooks.events) == 2
    assert len(hooks.others) == 3


def test_verify_callback_reads_a_text_body_as_utf8() -> None:
    body = callback_body(status="reverted", name="caf\u00e9")

    event = verify_callback(body.decode(), signed_headers(body), SECRET, now=NOW)
    delivery = verify_signature(body.decode(), signed_headers(body), SECRET, now=NOW)

    assert isinstance(event, CallbackEvent)
    assert event.trade.id == TRADE_ID
    assert delivery.delivery_id == "delivery-1"


@pytest.mark.parametrize("body", [None, 42, ["not", "bytes"]])
def test_verify_callback_refuses_other_body_types_with_a_typed_error(body: object) -> None:
    headers = signed_headers(b"{}")
    with pytest.raises(ConfigurationError, match="body"):
        verify_callback(body, headers, SECRET, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="body"):
        verify_signature(body, headers, SECRET, now=NOW)  # type: ignore[arg-type]
