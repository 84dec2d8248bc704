"""The client token never shows: not in a log record, a repr, a str, an exception or its traceback.

Logging goes through ``logging.getLogger("assetpay_async")``: silent by default, one DEBUG line per attempt.
"""

from __future__ import annotations

import logging
import traceback

import pytest

from assetpay_async import AssetPayError, AssetPaySession, MerchantTier, RetryPolicy
from assetpay_async.testing import run_virtual
from tests.support.core import (
    HANG_UP,
    ITEM_ID,
    MERCHANT,
    TRADE_ID,
    Reply,
    ScriptedServer,
    api_error,
    cancel_ok,
    make_token,
    new_session,
)

TOKEN = make_token(steam_id="76561198999999999", secret=b"very-secret-merchant-key")
SIGNATURE = TOKEN.rsplit(".", 1)[1]


def _revealing(text: str) -> bool:
    return TOKEN in text or SIGNATURE in text


def _record_texts(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage(), repr(record.args), record.exc_text or "", record.stack_info or ""]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


def _exception_texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(vars(exc))]


async def _every_path(closed_port: int) -> tuple[list[AssetPayError], list[str]]:
    """Success, API error, lost response, invalid response, timeout and transport error, with a token."""
    errors: list[AssetPayError] = []
    retry = RetryPolicy(max_retries=1, backoff_base=0.001, backoff_cap=0.001)
    async with (
        ScriptedServer() as server,
        new_session(server.url, retry=retry, timeout=5.0) as session,
    ):
        server.script(
            cancel_ok(),
            api_error(400, "TRADE_NOT_CANCELLABLE", 28),
            HANG_UP,
            api_error(404, "ITEM_NOT_FOUND", 2201),
            Reply(502, b"<html>Bad gateway</html>", content_type="text/html"),
            Reply(200, b"{}", delay=60),
            Reply(200, b"{}", delay=60),
        )
        client = session.client(f"Bearer {TOKEN}")
        await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
        for _ in range(4):
            try:
                await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            except AssetPayError as exc:
                errors.append(exc)
        shown = [repr(session), str(session), repr(client), str(client)]
    async with new_session(f"http://127.0.0.1:{closed_port}", retry=retry) as unreachable:
        try:
            await unreachable.client(TOKEN).cancel_withdrawal_item(TRADE_ID, ITEM_ID)
        except AssetPayError as exc:
            errors.append(exc)
    for bad_session, bad_token in [
        (new_session(server.url), make_token("other", header_user_id="mixed")),
        (new_session(server.url), TOKEN + ".opaque"),
        (new_session(server.url, merchant_id="merchant-7"), TOKEN),
    ]:
        try:
            bad_session.client(bad_token)
        except AssetPayError as exc:
            errors.append(exc)
    return errors, shown


def test_no_log_record_repr_or_exception_reveals_the_token(
    caplog: pytest.LogCaptureFixture, closed_port: int
) -> None:
    caplog.set_level(logging.DEBUG)
    errors, shown = run_virtual(_every_path(closed_port))

    kinds = sorted(type(exc).__name__ for exc in errors)
    assert kinds == [
        "InvalidRequestError",
        "InvalidResponseError",
        "ItemNotFoundError",
        "MerchantMismatchError",
        "MerchantMismatchError",
        "NotCancellableError",
        "RequestTimeoutError",
        "TransportError",
    ]
    ours = [r for r in caplog.records if r.name.startswith("assetpay_async")]
    assert len(ours) >= 9  # one line per attempt, every path logged
    for record in caplog.records:  # every logger, not only ours
        assert not any(_revealing(text) for text in _record_texts(record)), record.getMessage()
    assert not _revealing(caplog.text)
    for exc in errors:
        assert not any(_revealing(text) for text in _exception_texts(exc)), type(exc).__name__
    assert not any(_revealing(text) for text in shown)


def test_repr_of_a_client_shows_merchant_and_fingerprint() -> None:
    session = AssetPaySession(tier=MerchantTier.VERIFIED)
    client = session.client(TOKEN)
    text = repr(client)
    assert MERCHANT in text
    assert "sha256:" in text
    assert client.token_fingerprint in text
    assert not _revealing(text)
    assert MERCHANT in repr(session)


def test_one_debug_line_per_attempt(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with ScriptedServer() as server, new_session(server.url) as session:
            server.script(cancel_ok(), HANG_UP, HANG_UP, cancel_ok())
            client = session.client(TOKEN)
            await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
            await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)

    caplog.set_level(logging.DEBUG, logger="assetpay_async")
    run_virtual(scenario())
    ours = [r for r in caplog.records if r.name == "assetpay_async"]
    assert [r.levelno for r in ours] == [logging.DEBUG] * 4
    assert all(str(TRADE_ID) in r.getMessage() for r in ours)
    assert [("failure=" in r.getMessage()) for r in ours] == [False, True, True, False]


def test_silent_by_default(caplog: pytest.LogCaptureFixture, closed_port: int) -> None:
    caplog.set_level(logging.INFO)  # what an application that logs INFO and up would see
    errors, _ = run_virtual(_every_path(closed_port))
    assert errors
    assert [r for r in caplog.records if r.name.startswith("assetpay_async")] == []
