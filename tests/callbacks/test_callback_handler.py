"""callback_handler behind a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from assetpay_async import ConfigurationError
from assetpay_async.callbacks import (
    NO_APPROVER_REASON,
    UNREADABLE_APPROVAL_REASON,
    ApprovalDecision,
    ApprovalHandler,
    ApprovalRequest,
    CallbackEvent,
    CryptoDepositEvent,
    CryptoWithdrawalEvent,
    DedupeStore,
    EventHandler,
    MemoryDedupeStore,
    OtherEvent,
    OtherEventHandler,
    UnknownCallbackEvent,
    callback_handler,
)
from tests.support.callbacks import (
    NOW,
    OLD_SECRET,
    SECRET,
    TRADE_ID,
    at,
    callback_body,
    signed_headers,
)

PATH = "/assetpay/callback"
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


class Recorder:
    """An on_event coroutine that records events and can be told to fail or to wait."""

    def __init__(self) -> None:
        self.events: list[CallbackEvent] = []
        self.failures_left = 0
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def __call__(self, event: CallbackEvent) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("database down")
        self.events.append(event)


class Approver:
    """An on_approval coroutine returning a fixed decision and counting calls."""

    def __init__(self, decision: Any) -> None:
        self.decision = decision
        self.calls: list[ApprovalRequest] = []
        self.failures_left = 0

    async def __call__(self, event: ApprovalRequest) -> ApprovalDecision:
        self.calls.append(event)
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("risk engine down")
        return self.decision  # type: ignore[no-any-return]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[Client] = []

    async def make(
        on_event: EventHandler,
        *,
        on_approval: ApprovalHandler | None = None,
        on_other: OtherEventHandler | None = None,
        dedupe: DedupeStore | None = None,
        secrets: str | list[str] = SECRET,
    ) -> Client:
        app = web.Application()
        handler = callback_handler(
            secrets,
            on_event,
            on_approval=on_approval,
            on_other=on_other,
            dedupe=dedupe,
            now=lambda: NOW,
        )
        app.router.add_post(PATH, handler)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def _post(
    client: Client, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with client.post(PATH, data=body, headers=headers or {}) as response:
        text = await response.text()
        return response.status, json.loads(text) if text else None


async def _deliver(client: Client, body: bytes, **header_options: Any) -> tuple[int, Any]:
    return await _post(client, body, signed_headers(body, **header_options))


# --- plain events ---------------------------------------------------------------------------------------


async def test_valid_event_is_answered_200_and_handed_over(make_client: MakeClient) -> None:
    recorder = Recorder()
    client = await make_client(recorder)

    status, answer = await _deliver(client, callback_body(status="reverted"))

    assert status == 200
    assert answer == {"ok": True}
    assert [e.trade.id for e in recorder.events] == [TRADE_ID]
    assert recorder.events[0].dedupe_key == "delivery:delivery-1"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-AssetPay-Signature": "nonsense"},
        signed_headers(callback_body(), secret="wrong-secret"),
        signed_headers(callback_body(), timestamp="2026-07-31T11:54:59.999Z"),  # 300.001 s old
        signed_headers(callback_body(), timestamp="2026-07-31T12:05:00.001Z"),  # from the future
    ],
    ids=["missing", "malformed", "bad-signature", "stale", "future"],
)
async def test_unauthenticated_deliveries_get_401(
    make_client: MakeClient, headers: dict[str, str]
) -> None:
    recorder = Recorder()
    client = await make_client(recorder)

    status, _ = await _post(client, callback_body(), headers)

    assert status == 401
    assert recorder.events == []


class OtherRecorder:
    """An on_other coroutine recording crypto and unknown events."""

    def __init__(self) -> None:
        self.events: list[OtherEvent] = []

    async def __call__(self, event: OtherEvent) -> None:
        self.events.append(event)


@pytest.mark.parametrize(
    "body",
    [b'{"trade": "no"}', b"[]", b"not json", b'{"event": "trade.completed", "tradeId": "t"}'],
)
async def test_an_authentic_body_of_unknown_shape_is_handed_over_once_and_rejected(
    make_client: MakeClient, body: bytes
) -> None:
    recorder, others = Recorder(), OtherRecorder()
    client = await make_client(recorder, on_other=others)

    first = await _deliver(client, body)
    again = await _deliver(client, body)  # the same delivery: handled once

    # It may be an approval gate the SDK cannot read: the rejection (a 200 that also acknowledges it).
    rejection = (200, {"action": "reject", "reason": UNREADABLE_APPROVAL_REASON})
    assert first == again == rejection
    assert recorder.events == []
    [event] = others.events
    assert isinstance(event, UnknownCallbackEvent)
    assert event.body == body


async def test_crypto_events_go_to_on_other_and_are_acknowledged_without_it(
    make_client: MakeClient,
) -> None:
    recorder, others = Recorder(), OtherRecorder()
    client = await make_client(recorder, on_other=others)
    bare = await make_client(recorder)  # no on_other: acknowledged and logged
    withdrawal = json.dumps({"withdrawal": {"id": "cw-1", "status": "completed"}}).encode()
    deposit = json.dumps({"deposit": {"id": "cd-1", "status": "confirmed"}}).encode()

    answers = [
        await _deliver(client, withdrawal, delivery_id="d-1"),
        await _deliver(client, deposit, delivery_id="d-2"),
        await _deliver(bare, withdrawal, delivery_id="d-3"),
    ]

    assert [status for status, _ in answers] == [200, 200, 200]
    assert [type(e) for e in others.events] == [CryptoWithdrawalEvent, CryptoDepositEvent]
    assert recorder.events == []


async def test_a_crypto_withdrawal_awaiting_approval_is_decided_by_on_approval(
    make_client: MakeClient,
) -> None:
    recorder, others = Recorder(), OtherRecorder()
    approver = Approver(ApprovalDecision.reject("sanctioned address"))
    client = await make_client(recorder, on_approval=approver, on_other=others)
    body = json.dumps({"withdrawal": {"id": "cw-9", "status": "awaiting_approval"}}).encode()

    first = await _deliver(client, body, delivery_id="attempt-1")
    second = await _deliver(client, body, delivery_id="attempt-2")

    assert first == second == (200, {"action": "reject", "reason": "sanctioned address"})
    [event] = approver.calls  # once per withdrawal, the decision repeated to the next attempt
    assert isinstance(event, CryptoWithdrawalEvent)
    assert event.withdrawal.id == "cw-9"
    assert (recorder.events, others.events) == ([], [])


async def test_an_approval_request_the_sdk_cannot_read_is_rejected_without_asking(
    make_client: MakeClient,
) -> None:
    approver = Approver(ApprovalDecision.approve())
    client = await make_client(Recorder(), on_approval=approver)
    body = callback_body(status="initiated", createdAt="whenever")

    answers = [await _deliver(client, body, delivery_id=f"attempt-{n}") for n in range(2)]

    assert answers == [(200, {"action": "reject", "reason": UNREADABLE_APPROVAL_REASON})] * 2
    assert approver.calls == []


async def test_unsigned_test_ping_gets_200_and_does_nothing(make_client: MakeClient) -> None:
    recorder = Recorder()
    client = await make_client(recorder)

    status, _ = await _post(client, b'{"test": true}', {"Content-Type": "application/json"})

    assert status == 200
    assert recorder.events == []


async def test_rotated_secrets(make_client: MakeClient) -> None:
    recorder = Recorder()
    client = await make_client(recorder, secrets=[SECRET, OLD_SECRET])

    status_new, _ = await _deliver(client, callback_body(), secret=SECRET, delivery_id="a")
    status_old, _ = await _deliver(client, callback_body(), secret=OLD_SECRET, delivery_id="b")

    assert (status_new, status_old) == (200, 200)
    assert [e.delivery_id for e in recorder.events] == ["a", "b"]


# --- dedupe ---------------------------------------------------------------------------------------------


async def test_duplicate_delivery_reaches_on_event_once(make_client: MakeClient) -> None:
    recorder = Recorder()
    client = await make_client(recorder)
    body = callback_body(status="reverted")

    first = await _deliver(client, body, delivery_id="dup-1")
    second = await _deliver(client, body, delivery_id="dup-1")

    assert first == (200, {"ok": True})
    assert second == (200, {"ok": True, "duplicate": True})
    assert len(recorder.events) == 1


async def test_distinct_deliveries_of_one_trade_are_all_handed_over(
    make_client: MakeClient,
) -> None:
    recorder = Recorder()
    client = await make_client(recorder)

    for delivery_id, status in (("d1", "pending"), ("d2", "active"), ("d3", "completed")):
        await _deliver(client, callback_body(status=status), delivery_id=delivery_id)

    assert [e.status for e in recorder.events] == ["pending", "active", "completed"]


async def test_redelivery_during_processing_is_asked_to_retry(make_client: MakeClient) -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    client = await make_client(recorder)
    body = callback_body()

    async with asyncio.timeout(10):  # a handler that ran the duplicate too would block here forever
        first = asyncio.create_task(_deliver(client, body, delivery_id="slow"))
        await recorder.entered.wait()
        concurrent = await _deliver(client, body, delivery_id="slow")
        recorder.gate.set()
        first_answer = await first
        later = await _deliver(client, body, delivery_id="slow")

    # Not acknowledged while the outcome is unknown: a 200 here would lose the event if the first failed.
    assert concurrent[0] == 503
    assert first_answer[0] == 200
    assert later == (200, {"ok": True, "duplicate": True})
    assert len(recorder.events) == 1


async def test_failing_on_event_answers_500_and_the_redelivery_is_processed(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    recorder.failures_left = 1
    client = await make_client(recorder)
    body = callback_body(status="reverted")

    with caplog.at_level(logging.ERROR, logger="assetpay_async.callbacks"):
        failed = await _deliver(client, body, delivery_id="retry-me")
    retried = await _deliver(client, body, delivery_id="retry-me")

    assert failed[0] == 500
    assert retried == (200, {"ok": True})
    assert [e.delivery_id for e in recorder.events] == ["retry-me"]
    assert "retry-me" in caplog.text


async def test_a_shared_store_dedupes_across_handlers(make_client: MakeClient) -> None:
    # Two processes behind one callback URL, sharing one store.
    store = MemoryDedupeStore()
    recorder = Recorder()
    first = await make_client(recorder, dedupe=store)
    second = await make_client(recorder, dedupe=store)
    body = callback_body()

    await _deliver(first, body, delivery_id="shared")
    answer = await _deliver(second, body, delivery_id="shared")

    assert answer == (200, {"ok": True, "duplicate": True})
    assert len(recorder.events) == 1


# --- the approval gate ----------------------------------------------------------------------------------


async def test_without_on_approval_every_approval_request_is_rejected(
    make_client: MakeClient,
) -> None:
    recorder = Recorder()
    client = await make_client(recorder)

    status, answer = await _deliver(client, callback_body(status="initiated"))

    assert status == 200  # the one rejection answer: a 2xx whose body rejects
    assert answer == {"action": "reject", "reason": NO_APPROVER_REASON}
    assert recorder.events == []  # approval requests never reach on_event


async def test_approval_is_asked_once_per_trade_and_repeated(make_client: MakeClient) -> None:
    approver = Approver(ApprovalDecision.approve())
    client = await make_client(Recorder(), on_approval=approver)
    body = callback_body(status="initiated")

    answers = [await _deliver(client, body, delivery_id=f"attempt-{n}") for n in range(3)]

    assert answers == [(200, {"action": "approve"})] * 3
    assert len(approver.calls) == 1


async def test_rejection_is_answered_and_repeated(make_client: MakeClient) -> None:
    approver = Approver(ApprovalDecision.reject("insufficient balance"))
    client = await make_client(Recorder(), on_approval=approver)
    body = callback_body(status="initiated")

    answers = [await _deliver(client, body, delivery_id=f"attempt-{n}") for n in range(2)]

    expected = (200, {"action": "reject", "reason": "insufficient balance"})
    assert answers == [expected, expected]
    assert len(approver.calls) == 1


async def test_failing_on_approval_answers_500_then_decides_on_the_next_attempt(
    make_client: MakeClient,
) -> None:
    approver = Approver(ApprovalDecision.approve())
    approver.failures_left = 1
    client = await make_client(Recorder(), on_approval=approver)
    body = callback_body(status="initiated")

    failed = await _deliver(client, body, delivery_id="attempt-1")
    decided = await _deliver(client, body, delivery_id="attempt-2")

    # 500 is neither an approval (2xx) nor a rejection (4xx): AssetPay tries again.
    assert failed[0] == 500
    assert decided == (200, {"action": "approve"})
    assert len(approver.calls) == 2


@pytest.mark.parametrize("returned", [None, True, "approve", {"action": "approve"}])
async def test_on_approval_without_a_decision_rejects(
    make_client: MakeClient, returned: object
) -> None:
    client = await make_client(Recorder(), on_approval=Approver(returned))

    status, answer = await _deliver(client, callback_body(status="initiated"))

    assert status == 200
    assert answer["action"] == "reject"


async def test_approval_requests_do_not_reach_on_event(make_client: MakeClient) -> None:
    recorder = Recorder()
    approver = Approver(ApprovalDecision.approve())
    client = await make_client(recorder, on_approval=approver)

    await _deliver(client, callback_body(status="initiated"), delivery_id="a")
    await _deliver(client, callback_body(status="pending"), delivery_id="b")

    assert [e.delivery_id for e in approver.calls] == ["a"]
    assert [e.delivery_id for e in recorder.events] == ["b"]


async def test_unauthenticated_approval_request_is_never_approved(make_client: MakeClient) -> None:
    approver = Approver(ApprovalDecision.approve())
    client = await make_client(Recorder(), on_approval=approver)
    body = callback_body(status="initiated")

    status, _ = await _post(client, body, signed_headers(body, secret="forged"))

    assert status == 401
    assert approver.calls == []


# --- configuration and secrecy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secrets": []},
        {"secrets": ""},
        {"secrets": SECRET, "tolerance": -1},
        {"secrets": SECRET, "seen_ttl": 0},
        {"secrets": SECRET, "processing_ttl": -5},
    ],
)
def test_bad_configuration_fails_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        callback_handler(on_event=Recorder(), **kwargs)


async def test_secrets_never_reach_answers_or_logs(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    recorder.failures_left = 1
    client = await make_client(recorder, secrets=[SECRET, OLD_SECRET])
    body = callback_body()

    with caplog.at_level(logging.DEBUG, logger="assetpay_async.callbacks"):
        answers = [
            await _post(client, body, {}),
            await _post(client, body, signed_headers(body, secret="wrong")),
            await _post(client, body, signed_headers(body, timestamp="2020-01-01T00:00:00Z")),
            await _deliver(client, b"[]"),
            await _deliver(client, body, delivery_id="fails-once"),
            await _deliver(client, callback_body(status="initiated")),
        ]

    assert [status for status, _ in answers] == [401, 401, 401, 200, 500, 200]
    assert answers[-1][1]["action"] == "reject"
    text = caplog.text + json.dumps([answer for _, answer in answers])
    assert SECRET not in text
    assert OLD_SECRET not in text


def test_clock_helper_matches_signed_time() -> None:
    # Guards the fixtures above: the handler's fixed clock reads the signing time exactly.
    assert at(0) == NOW
