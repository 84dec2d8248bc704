"""``processor.asgi()`` mounted in a Starlette app: the whole callback matrix through httpx's ASGI transport.

Starlette stands in for FastAPI (which mounts the same application with ``app.mount``); neither is a
dependency of the SDK, and the ASGI application imports neither.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from assetpay_async.callbacks import (
    NO_APPROVER_REASON,
    UNREADABLE_APPROVAL_REASON,
    ApprovalDecision,
    ApprovalRequest,
    CallbackEvent,
    CallbackProcessor,
    MemoryDedupeStore,
    OtherEvent,
)
from tests.support.callbacks import (
    NOW,
    SECRET,
    TRADE_ID,
    at,
    callback_body,
    signed_headers,
    trade_payload,
)

PATH = "/assetpay/callback"


class Hooks:
    """The merchant's coroutines: record, optionally fail once or wait, approve or reject."""

    def __init__(self, decision: ApprovalDecision | None = None) -> None:
        self.events: list[CallbackEvent] = []
        self.others: list[OtherEvent] = []
        self.approvals: list[ApprovalRequest] = []
        self.decision = decision or ApprovalDecision.approve()
        self.fail_next = False
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def on_event(self, event: CallbackEvent) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database down")
        self.events.append(event)

    async def on_other(self, event: OtherEvent) -> None:
        self.others.append(event)

    async def on_approval(self, event: ApprovalRequest) -> ApprovalDecision:
        self.approvals.append(event)
        return self.decision


def _app(processor: CallbackProcessor) -> Starlette:
    return Starlette(routes=[Route(PATH, processor.asgi())])


@pytest.fixture
async def hooks_and_client() -> AsyncIterator[tuple[Hooks, httpx.AsyncClient]]:
    hooks = Hooks()
    processor = CallbackProcessor(
        SECRET,
        hooks.on_event,
        on_approval=hooks.on_approval,
        on_other=hooks.on_other,
        now=lambda: NOW,
    )
    transport = httpx.ASGITransport(app=_app(processor))
    async with httpx.AsyncClient(transport=transport, base_url="http://merchant.test") as client:
        yield hooks, client


async def _post(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    response = await client.post(PATH, content=body, headers=headers or {})
    return response.status_code, response.json() if response.content else None


async def _deliver(client: httpx.AsyncClient, body: bytes, **options: Any) -> tuple[int, Any]:
    return await _post(client, body, signed_headers(body, **options))


async def test_a_valid_event_is_handed_over_and_acknowledged(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient],
) -> None:
    hooks, client = hooks_and_client

    answer = await _deliver(client, callback_body(status="reverted"))

    assert answer == (200, {"ok": True})
    assert [e.trade.id for e in hooks.events] == [TRADE_ID]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        signed_headers(callback_body(), secret="wrong-secret"),
        signed_headers(callback_body(), timestamp="2026-07-31T11:54:59.999Z"),  # stale
        signed_headers(callback_body(), timestamp="2026-07-31T12:05:00.001Z"),  # from the future
    ],
    ids=["missing", "bad-signature", "stale", "future"],
)
async def test_unauthenticated_deliveries_get_401(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient], headers: dict[str, str]
) -> None:
    hooks, client = hooks_and_client

    status, _ = await _post(client, callback_body(), headers)

    assert status == 401
    assert hooks.events == []


async def test_a_repeated_signature_header_is_refused_as_malformed(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient],
) -> None:
    hooks, client = hooks_and_client
    body = callback_body()
    value = signed_headers(body)["X-AssetPay-Signature"]

    response = await client.post(
        PATH,
        content=body,
        headers=[("X-AssetPay-Signature", value), ("X-AssetPay-Signature", value)],
    )

    assert response.status_code == 401
    assert response.json() == {"error": "MalformedSignatureError"}
    assert hooks.events == []


async def test_replays_are_deduplicated(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient],
) -> None:
    hooks, client = hooks_and_client
    body = callback_body(status="reverted")

    first = await _deliver(client, body, delivery_id="dup")
    second = await _deliver(client, body, delivery_id="dup")

    assert first == (200, {"ok": True})
    assert second == (200, {"ok": True, "duplicate": True})
    assert len(hooks.events) == 1


async def test_a_failing_handler_answers_500_and_the_retry_runs_it(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient],
) -> None:
    hooks, client = hooks_and_client
    hooks.fail_next = True
    body = callback_body(status="reverted")

    failed = await _deliver(client, body, delivery_id="retry-me")
    retried = await _deliver(client, body, delivery_id="retry-me")

    assert failed == (500, {"error": "handler failed"})
    assert retried == (200, {"ok": True})
    assert len(hooks.events) == 1


async def test_a_redelivery_while_the_first_runs_gets_503_with_retry_after(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient],
) -> None:
    hooks, client = hooks_and_client
    hooks.gate = asyncio.Event()
    body = callback_body()

    async with asyncio.timeout(10):
        first = asyncio.create_task(_deliver(client, body, delivery_id="slow"))
        await hooks.entered.wait()
        response = await client.post(
            PATH, content=body, headers=signed_headers(body, delivery_id="slow")
        )
        hooks.gate.set()
        assert await first == (200, {"ok": True})

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (ApprovalDecision.approve(), {"action": "approve"}),
        (ApprovalDecision.reject("limit reached"), {"action": "reject", "reason": "limit reached"}),
    ],
)
async def test_an_approval_is_decided_once_and_repeated(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient],
    decision: ApprovalDecision,
    expected: dict[str, str],
) -> None:
    hooks, client = hooks_and_client
    hooks.decision = decision
    body = callback_body(status="initiated")

    answers = [await _deliver(client, body, delivery_id=f"attempt-{n}") for n in range(3)]

    assert answers == [(200, expected)] * 3
    assert len(hooks.approvals) == 1
    assert hooks.events == []


async def test_without_an_approver_every_approval_is_rejected() -> None:
    hooks = Hooks()
    processor = CallbackProcessor(SECRET, hooks.on_event, now=lambda: NOW)
    transport = httpx.ASGITransport(app=_app(processor))
    async with httpx.AsyncClient(transport=transport, base_url="http://merchant.test") as client:
        answer = await _deliver(client, callback_body(status="initiated"))

    assert answer == (200, {"action": "reject", "reason": NO_APPROVER_REASON})


async def test_the_unsigned_ping_is_acknowledged(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient],
) -> None:
    hooks, client = hooks_and_client

    answer = await _post(client, b'{"test": true, "url": "https://merchant.example/cb"}')

    assert answer == (200, {"ok": True})
    assert (hooks.events, hooks.others, hooks.approvals) == ([], [], [])


def _without_type() -> bytes:
    trade = trade_payload(status="initiated")
    del trade["type"]
    return json.dumps({"trade": trade}).encode()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        callback_body(status="initiated")[:-9],
        _without_type(),
        b'{"something": "new"}',
    ],
    ids=["not-json", "truncated", "no-type", "unknown-shape"],
)
async def test_unreadable_signed_bodies_get_the_rejection(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient], body: bytes
) -> None:
    hooks, client = hooks_and_client

    answer = await _deliver(client, body)

    assert answer == (200, {"action": "reject", "reason": UNREADABLE_APPROVAL_REASON})
    assert hooks.approvals == []


async def test_upper_case_gates_go_to_the_approver(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient],
) -> None:
    hooks, client = hooks_and_client
    hooks.decision = ApprovalDecision.reject("manual review")
    trade = callback_body(status="INITIATED")
    crypto = json.dumps({"withdrawal": {"id": "cw-1", "status": "AWAITING_APPROVAL"}}).encode()

    answers = [
        await _deliver(client, trade, delivery_id="a"),
        await _deliver(client, crypto, delivery_id="b"),
    ]

    assert answers == [(200, {"action": "reject", "reason": "manual review"})] * 2
    assert len(hooks.approvals) == 2


async def test_other_methods_and_oversized_bodies_are_refused(
    hooks_and_client: tuple[Hooks, httpx.AsyncClient],
) -> None:
    _, client = hooks_and_client

    got = await client.get(PATH)
    huge = await client.post(PATH, content=b"x" * (1024 * 1024 + 1))

    assert (got.status_code, got.headers["Allow"]) == (405, "POST")
    assert huge.status_code == 413


async def test_one_store_shared_by_an_asgi_and_another_processor_dedupes_across_them() -> None:
    store = MemoryDedupeStore()
    hooks = Hooks()
    first = CallbackProcessor(SECRET, hooks.on_event, dedupe=store, now=lambda: NOW)
    second = CallbackProcessor(SECRET, hooks.on_event, dedupe=store, now=lambda: at(1))
    body = callback_body()
    transport = httpx.ASGITransport(app=_app(first))

    async with httpx.AsyncClient(transport=transport, base_url="http://merchant.test") as client:
        over_asgi = await _deliver(client, body, delivery_id="shared")
    direct = await second.handle(body, signed_headers(body, delivery_id="shared"))

    assert over_asgi == (200, {"ok": True})
    assert (direct.status, json.loads(direct.body)) == (200, {"ok": True, "duplicate": True})
    assert len(hooks.events) == 1


async def test_mounted_under_a_prefix_it_answers_at_the_prefix() -> None:
    hooks = Hooks()
    processor = CallbackProcessor(SECRET, hooks.on_event, now=lambda: NOW)
    app = Starlette(routes=[Mount("/hooks", app=processor.asgi())])
    body = callback_body(status="reverted")
    transport = httpx.ASGITransport(app=app)

    async with httpx.AsyncClient(transport=transport, base_url="http://merchant.test") as client:
        response = await client.post("/hooks/assetpay", content=body, headers=signed_headers(body))

    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert len(hooks.events) == 1
