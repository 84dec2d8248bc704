"""Callbacks: signed, retried with one delivery id on the sandbox clock, optionally delivered twice."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
from aiohttp import web

from assetpay_async._signing import parse_signature_header, signature
from tests.support.sandbox_world import world

HOUR = dt.timedelta(hours=1)


@attrs.define
class Receiver:
    """A merchant's callback endpoint on loopback that fails its first ``failures`` requests."""

    url: str = ""
    failures: int = 0
    received: list[tuple[str, bytes]] = attrs.field(factory=list)


@asynccontextmanager
async def receiver(failures: int = 0) -> AsyncIterator[Receiver]:
    state = Receiver(failures=failures)

    async def handle(request: web.Request) -> web.Response:
        state.received.append((request.headers["X-AssetPay-Signature"], await request.read()))
        if len(state.received) <= state.failures:
            return web.Response(status=500)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/callbacks", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/callbacks"
    try:
        yield state
    finally:
        await runner.cleanup()


def test_the_published_test_vector() -> None:
    body = b'{"event":"trade.completed","tradeId":"trade-1"}'
    assert (
        signature("current-secret", "delivery-1", "2026-07-31T12:00:00.000Z", body)
        == "264a1a0c4deb4462658b9cc21cce4bf2baaf8da9dd7dd1a51bbd71e0f4d81135"
    )


async def test_revert_delivers_a_signed_trade_callback() -> None:
    async with receiver() as rx, world(callback_url="", revert_delay=5.0) as w:
        w.merchant.callback_url = rx.url
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        await w.sandbox.settle()
        ((header, body),) = rx.received
        parsed = parse_signature_header(header)
        assert parsed is not None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", parsed.timestamp)
        assert parsed.signatures == (
            signature(w.merchant.secret, parsed.delivery_id, parsed.timestamp, body),
        )
        doc = json.loads(body)
        assert doc["trade"]["id"] == trade.id
        assert doc["trade"]["status"] == "reverted"
        assert doc["trade"]["revertedBy"] == "supplier"
        assert doc["trade"]["items"][0]["status"] == "reverted"
        (attempt,) = w.sandbox.deliveries
        assert attempt.delivered
        assert attempt.time >= 5.0  # after the revert delay, on the sandbox clock


async def test_rotation_adds_s1_signed_with_the_previous_secret() -> None:
    async with receiver() as rx, world() as w:
        w.merchant.callback_url = rx.url
        w.merchant.previous_secret = "old-secret"
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        await w.sandbox.settle()
        ((header, body),) = rx.received
        parsed = parse_signature_header(header)
        assert parsed is not None
        assert parsed.signatures[1] == signature(
            "old-secret", parsed.delivery_id, parsed.timestamp, body
        )
        assert ",s1=" in header


async def test_failed_deliveries_are_retried_with_the_same_id_and_growing_backoff() -> None:
    async with receiver(failures=3) as rx, world(callback_backoff=2.0) as w:
        w.merchant.callback_url = rx.url
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        await w.sandbox.settle()
        attempts = w.sandbox.deliveries
        assert [a.status for a in attempts] == [500, 500, 500, 200]
        assert len({a.delivery_id for a in attempts}) == 1
        assert len({a.body for a in attempts}) == 1
        gaps = [round(b.time - a.time, 6) for a, b in itertools.pairwise(attempts)]
        assert gaps == [2.0, 4.0, 8.0]
        ids = {parse_signature_header(h).delivery_id for h, _ in rx.received}  # type: ignore[union-attr]
        assert len(ids) == 1


async def test_attempts_are_bounded() -> None:
    async with receiver(failures=100) as rx, world(callback_attempts=3) as w:
        w.merchant.callback_url = rx.url
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        await w.sandbox.settle()
        assert len(rx.received) == 3
        assert not any(a.delivered for a in w.sandbox.deliveries)


async def test_duplicate_delivery_sends_each_event_twice_with_one_id() -> None:
    async with receiver() as rx, world(duplicate_callbacks=True) as w:
        w.merchant.callback_url = rx.url
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        await w.sandbox.settle()
        assert [a.copy for a in w.sandbox.deliveries] == [1, 2]
        assert len({a.delivery_id for a in w.sandbox.deliveries}) == 1
        assert rx.received[0][1] == rx.received[1][1]


async def test_an_unreachable_callback_url_is_recorded_as_an_error() -> None:
    async with world(callback_attempts=2) as w:
        w.merchant.callback_url = "http://127.0.0.1:9/nowhere"
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        await w.sandbox.settle()
        assert [a.status for a in w.sandbox.deliveries] == [None, None]
        assert all(a.error for a in w.sandbox.deliveries)
