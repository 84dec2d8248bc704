"""Each fault kind, as the SDK meets it over loopback (on virtual time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest

from assetpay_async import (
    APIError,
    AssetPaySession,
    CancelStatus,
    InvalidResponseError,
    Quota,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
)
from assetpay_async.sandbox import FaultKind
from tests.support.sandbox_world import world

HOUR = dt.timedelta(hours=1)


async def test_latency_with_jitter_delays_but_serves() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        w.sandbox.faults.add("latency", delay=2.0, jitter=1.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert result.status is CancelStatus.CANCELLED
        assert 2.0 <= loop.time() - started <= 3.1


@pytest.mark.parametrize("kind", [FaultKind.RESET_BEFORE, FaultKind.RESET_AFTER])
async def test_a_reset_connection_is_retried_and_the_cancel_takes_effect_once(
    kind: FaultKind,
) -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        fault = w.sandbox.faults.add(kind, group="cancel-item", times=1)
        result = await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert result.status is CancelStatus.CANCELLED
        assert fault.fired == 1
        first, second = w.sandbox.requests
        assert (first.status, first.fault, second.status) == (0, (kind.value,), 200)
        assert first.counted is (kind is FaultKind.RESET_AFTER)  # only a handled request is counted
        assert len(w.sandbox._tasks) == 1  # one revert, whichever attempt took effect
        w.sandbox.advance(60)
        await w.sandbox.settle()
        assert trade.items[0].status == "reverted"


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        (FaultKind.HTML_5XX, 500, "not JSON"),
        (FaultKind.EMPTY_502, 502, "empty"),
        (FaultKind.MALFORMED_JSON, 200, "not JSON"),
        (FaultKind.MISSING_FIELDS, 200, "unexpected shape"),
    ],
)
async def test_answers_without_a_usable_envelope_are_invalid_responses(
    kind: FaultKind, status: int, reason: str
) -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        w.sandbox.faults.add(kind, times=1)
        with pytest.raises(InvalidResponseError, match=reason) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert caught.value.http_status == status


async def test_html_5xx_status_is_configurable_and_has_an_html_body() -> None:
    async with world() as w:
        w.sandbox.faults.add("html-5xx", status=504)
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        with pytest.raises(InvalidResponseError) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert caught.value.http_status == 504
        assert (caught.value.content_type or "").startswith("text/html")
        assert "Gateway" in (caught.value.snippet or "")


async def test_unknown_error_key_is_a_plain_api_error_keeping_the_key() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        w.sandbox.faults.add("unknown-error-key", times=1)
        with pytest.raises(APIError) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert type(caught.value) is APIError
        assert caught.value.key == "SANDBOX_UNKNOWN_ERROR"
        assert trade.items[0].cancel_pending is False  # not handled


async def test_maintenance_is_a_server_error() -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        w.sandbox.faults.add("maintenance", times=1)
        with pytest.raises(ServerError) as caught:
            await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert (caught.value.key, caught.value.http_status) == ("SYSTEM_MAINTENANCE", 503)


@pytest.mark.parametrize(("retry_after", "least_wait"), [(7.0, 7.0), (None, 3.0)])
async def test_injected_429_pauses_the_sdk_then_it_succeeds(
    retry_after: float | None, least_wait: float
) -> None:
    async with world(Quota(60, 3.0)) as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        w.sandbox.faults.add("rate-limited", times=1, retry_after=retry_after)
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert result.status is CancelStatus.CANCELLED
        assert loop.time() - started >= least_wait  # Retry-After, else a whole window
        first = w.sandbox.requests[0]
        assert (first.status, first.key, first.counted) == (429, "RATE_LIMITED", False)
        assert w.sandbox.totals(w.merchant).rate_limited == 0  # someone else spent it: not ours


@pytest.mark.parametrize("kind", [FaultKind.SLOW_HEADERS, FaultKind.SLOW_BODY])
async def test_slow_answers_time_out_on_the_client(kind: FaultKind) -> None:
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        w.sandbox.faults.add(kind, delay=10.0)
        async with AssetPaySession(
            cancel_quota=Quota(60, 3.0),
            base_url=w.sandbox.base_url,
            timeout=2.0,
            retry=RetryPolicy(max_retries=1),
        ) as session:
            with pytest.raises(RequestTimeoutError) as caught:
                await session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert caught.value.ambiguous
        w.sandbox.faults.clear()


async def test_a_slow_body_to_a_client_that_left_is_dropped_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: writing the rest of a slow body to a gone client logged an aiohttp traceback per request."""
    caplog.set_level(logging.ERROR)
    async with world() as w:
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        w.sandbox.faults.add(FaultKind.SLOW_BODY, delay=10.0)
        async with AssetPaySession(
            cancel_quota=Quota(60, 3.0),
            base_url=w.sandbox.base_url,
            timeout=2.0,
            retry=RetryPolicy(max_retries=0),
        ) as session:
            with pytest.raises(RequestTimeoutError):
                await session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        await asyncio.sleep(15.0)  # virtual: the handler wakes and writes to the closed connection
        w.sandbox.faults.clear()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_faults_select_by_merchant_and_count_down() -> None:
    async with world() as w:
        other = w.sandbox.add_merchant()
        fault = w.sandbox.faults.add("maintenance", merchant=other, times=2)
        trade = w.sandbox.add_trade(w.user, age=HOUR)
        result = await w.session.client(w.token).cancel_withdrawal_item(trade.id, trade.items[0].id)
        assert result.status is CancelStatus.CANCELLED
        assert (fault.fired, fault.times) == (0, 2)


async def test_probabilistic_faults_repeat_with_the_seed() -> None:
    runs = []
    for _ in range(2):
        async with world(seed=9) as w:
            w.sandbox.faults.add("maintenance", probability=0.5)
            trade = w.sandbox.add_trade(w.user, items=16, age=HOUR)
            client = w.session.client(w.token)
            run = []
            for item in trade.items:
                try:
                    await client.cancel_withdrawal_item(trade.id, item.id)
                    run.append(True)
                except ServerError:
                    run.append(False)
            runs.append(run)
    assert runs[0] == runs[1]
    assert 0 < sum(runs[0]) < 16


def test_fault_validation() -> None:
    from assetpay_async.sandbox import Sandbox

    sb = Sandbox(seed=0)
    with pytest.raises(ValueError, match="probability"):
        sb.faults.add("latency", probability=1.5)
    with pytest.raises(ValueError, match="not a valid FaultKind"):
        sb.faults.add("meteor")
