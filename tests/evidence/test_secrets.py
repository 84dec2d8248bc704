"""Secrets: the client token and the callback secret never show, and TLS verification cannot be switched off.

A whole session of work (a faulty batch, trade reads, signed callbacks, a forged callback) runs with every
logger at DEBUG; then every log record, repr, exception text and traceback, the sandbox's request log and
its callback log are searched for the token (whole, its signature segment, and as a Bearer header) and for
the merchant's API secret. ``tests/core/test_core_redaction.py`` and
``tests/callbacks/test_callback_handler.py::test_secrets_never_reach_answers_or_logs`` cover the same for
the core and the handler alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import logging
import re
import shutil
import ssl
import subprocess
import traceback
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import assetpay_async
from assetpay_async import (
    AssetPayError,
    AssetPaySession,
    CancelOutcome,
    Quota,
    RetryPolicy,
    TransportError,
)
from assetpay_async.callbacks import CallbackError, CallbackEvent, callback_handler, verify_callback
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual
from tests.support.core import (
    HANG_UP,
    ITEM_ID,
    TRADE_ID,
    ScriptedServer,
    api_error,
    make_token,
    new_session,
)
from tests.support.evidence import FAST_CANCEL, HOUR

SECRET = "sk_evidence_merchant_secret_0123456789"
CALLBACK_PATH = "/assetpay/callback"


def _texts_of(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(vars(exc))]


def _record_texts(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage(), repr(record.args), record.exc_text or "", record.stack_info or ""]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


async def _a_day_of_work() -> tuple[list[str], list[str]]:
    """Run everything with faults; return (the secrets, every text the SDK and the sandbox produced)."""
    texts: list[str] = []
    events: list[CallbackEvent] = []

    async def on_event(event: CallbackEvent) -> None:
        events.append(event)

    async with Sandbox(seed=5) as sb:
        app = web.Application()
        app.router.add_post(CALLBACK_PATH, callback_handler(SECRET, on_event, now=sb.clock.wall))
        receiver = TestServer(app, host="127.0.0.1")
        await receiver.start_server()
        try:
            merchant = sb.add_merchant(
                "verified",
                quotas={"cancel-item": FAST_CANCEL},
                secret=SECRET,
                callback_url=str(receiver.make_url(CALLBACK_PATH)),
            )
            user = sb.add_user(merchant)
            token = sb.token(user)
            trade = sb.add_trade(user, items=8, age=HOUR)
            faults = [
                ("reset-after", {}),
                ("reset-before", {}),
                ("html-5xx", {}),
                ("malformed-json", {}),
                ("unknown-error-key", {}),
                ("rate-limited", {"retry_after": 1.0}),
                ("maintenance", {}),
                ("slow-headers", {"delay": 5.0}),
            ]
            retry = RetryPolicy(max_retries=1)
            async with AssetPaySession(
                cancel_quota=FAST_CANCEL, base_url=sb.base_url, timeout=2.0, retry=retry
            ) as session:
                client = session.client(f"Bearer {token}")
                for item, (kind, options) in zip(trade.items, faults, strict=True):
                    sb.faults.add(kind, group="cancel-item", times=1, **options)  # type: ignore[arg-type]
                    try:
                        await client.cancel_withdrawal_item(trade.id, item.id)
                    except AssetPayError as exc:
                        texts += _texts_of(exc)
                sb.faults.add("reset-after", group="cancel-item")
                pairs: list[tuple[object, object]] = [(trade.id, i.id) for i in trade.items[:2]]
                pairs.append((f"{trade.id}\r\n../../secure", trade.items[0].id))
                outcomes: list[CancelOutcome] = await client.cancel_withdrawal_items(pairs)
                sb.faults.clear()
                read = await client.get_trade(trade.id)
                try:
                    await client.wait_for_item(trade.id, trade.items[0].id, timeout=1.0)
                except AssetPayError as exc:
                    texts += _texts_of(exc)
                texts += [repr(session), str(session), repr(client), str(client), repr(read)]
            sb.advance(dt.timedelta(seconds=30))
            await sb.settle()
            async with aiohttp.ClientSession() as forger:
                body = json.dumps({"trade": sb.render(trade)}).encode()
                header = f"t=2026-01-01T00:00:00.000Z,id=forged,s={'0' * 64}"
                url = receiver.make_url(CALLBACK_PATH)
                async with forger.post(
                    url, data=body, headers={"X-AssetPay-Signature": header}
                ) as forged:
                    assert forged.status == 401
            try:
                verify_callback(body, {"X-AssetPay-Signature": header}, SECRET)
            except CallbackError as exc:
                texts += _texts_of(exc)
        finally:
            await receiver.close()
        texts += [repr(sb), repr(sb.requests), repr(sb.deliveries), repr(merchant), repr(user)]
        texts += [repr(o) for o in outcomes]
        texts += [text for o in outcomes if o.error is not None for text in _texts_of(o.error)]
        texts += [repr(event) for event in events]

    assert [o.kind.value for o in outcomes] == ["unknown", "unknown", "failed"]
    assert events, "no callback reached the handler"
    signature = token.rsplit(".", 1)[1]
    return [token, signature, SECRET], texts


def test_no_secret_in_any_log_repr_exception_or_sandbox_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(
        logging.DEBUG
    )  # every logger: ours, aiohttp's (client, server, access), the sandbox's
    secrets, texts = run_virtual(_a_day_of_work())

    names = {record.name for record in caplog.records}
    assert {"assetpay_async", "aiohttp.access"} <= names, names
    for record in caplog.records:
        for text in _record_texts(record):
            assert not any(secret in text for secret in secrets), (record.name, text[:200])
    assert not any(secret in caplog.text for secret in secrets)
    for text in texts:
        assert not any(secret in text for secret in secrets), text[:200]


# -- TLS ----------------------------------------------------------------------------------------------------


def test_the_sdks_own_http_session_verifies_tls() -> None:
    async def connector_ssl() -> object:
        async with AssetPaySession(cancel_quota=Quota(60, 60.0)) as session:
            # the HTTP session the SDK created for this loop
            binding = session._requester._aiohttp._binding
            assert binding is not None
            assert binding.owned
            connector = binding.http.connector
            assert isinstance(connector, aiohttp.TCPConnector)
            return (
                connector._ssl
            )  # aiohttp's per-connector setting: True means default verification

    setting = asyncio.run(connector_ssl())
    assert setting is True or (
        isinstance(setting, ssl.SSLContext)
        and setting.verify_mode is ssl.CERT_REQUIRED
        and setting.check_hostname
    )


def test_no_sdk_option_turns_tls_verification_off() -> None:
    options = set(inspect.signature(AssetPaySession).parameters)
    assert not options & {"ssl", "verify_ssl", "verify", "insecure", "ssl_context", "connector"}
    assert "http_session" in options  # the one way to bring your own CA (see docs/evidence.md)
    package = Path(assetpay_async.__file__).parent
    insecure = re.compile(r"ssl\s*=\s*False|verify_ssl|CERT_NONE|check_hostname\s*=\s*False")
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if insecure.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and its key (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(  # noqa: S603 (our own arguments, no shell)
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
async def tls_server(self_signed: tuple[Path, Path]) -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTPS server on 127.0.0.1 with the self-signed certificate; answers every cancel with success."""
    cert, key = self_signed
    seen: list[str] = []

    async def cancel(request: web.Request) -> web.Response:
        seen.append(request.path)
        data = {
            "tradeId": request.match_info["trade"],
            "itemId": request.match_info["item"],
            "status": "cancelled",
        }
        return web.json_response({"requestId": "r-1", "success": True, "data": data})

    app = web.Application()
    app.router.add_post("/client/trading/withdraw/{trade}/items/{item}/cancel", cancel)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


TOKEN_MERCHANT = "merchant-tls"


async def test_an_untrusted_certificate_is_refused_and_not_retried(
    tls_server: tuple[str, list[str]],
) -> None:
    url, seen = tls_server
    async with AssetPaySession(
        cancel_quota=FAST_CANCEL, base_url=url, merchant_id=TOKEN_MERCHANT
    ) as session:
        client = session.client("opaque-client-token")
        with pytest.raises(TransportError, match="TLS") as caught:
            await client.cancel_withdrawal_item(uuid.uuid4(), uuid.uuid4())
        granted = session.limiter_stats().granted
    assert caught.value.ambiguous is False
    assert granted == 1  # a certificate failure is never retried
    assert seen == []


async def test_a_custom_ca_goes_through_your_own_http_session(
    tls_server: tuple[str, list[str]], self_signed: tuple[Path, Path]
) -> None:
    url, seen = tls_server
    trusting = ssl.create_default_context(cafile=str(self_signed[0]))
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as http,
        AssetPaySession(
            cancel_quota=FAST_CANCEL, base_url=url, merchant_id=TOKEN_MERCHANT, http_session=http
        ) as session,
    ):
        trade_id, item_id = uuid.uuid4(), uuid.uuid4()
        result = await session.client("opaque-client-token").cancel_withdrawal_item(
            trade_id, item_id
        )
    assert (result.trade_id, result.item_id) == (str(trade_id), str(item_id))
    assert len(seen) == 1


# -- tracebacks that capture locals ----------------------------------------------------------------------

SDK_DIR = str(Path(assetpay_async.__file__).parent)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every cause and context behind it, suppressed ones included."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
    return seen


def _sdk_frame_locals(exc: BaseException) -> list[str]:
    """``repr`` of every local of every SDK frame in the tracebacks of ``exc``'s chain, as a formatter
    that captures locals (``traceback`` with ``capture_locals``, error trackers) would show them."""
    shown: list[str] = []
    for link in _chain(exc):
        summary = traceback.TracebackException(
            type(link), link, link.__traceback__, capture_locals=True, lookup_lines=False
        )
        for frame in summary.stack:
            if frame.filename.startswith(SDK_DIR):
                shown += [f"{name}={value}" for name, value in (frame.locals or {}).items()]
    return shown


def _sdk_frame_locals_rich(exc: BaseException) -> list[str]:
    """The same as rich's traceback with ``show_locals=True`` renders them (nothing shortened)."""
    rich_traceback = pytest.importorskip("rich.traceback")
    shown: list[str] = []
    for link in _chain(exc):
        trace = rich_traceback.Traceback.extract(
            type(link),
            link,
            link.__traceback__,
            show_locals=True,
            locals_max_length=10_000,
            locals_max_string=100_000,
        )
        for stack in trace.stacks:
            for frame in stack.frames:
                if frame.filename.startswith(SDK_DIR):
                    shown += [
                        f"{name}={node.render()}" for name, node in (frame.locals or {}).items()
                    ]
    return shown


@pytest.mark.parametrize("formatter", ["traceback", "rich"])
@pytest.mark.parametrize("failure", ["refused", "hang-up", "401"])
def test_the_token_is_in_no_local_of_the_sdks_frames(
    failure: str, formatter: str, closed_port: int
) -> None:
    token = make_token()

    async def scenario() -> AssetPayError:
        async with ScriptedServer() as server:
            server.respond = lambda _request: (
                HANG_UP if failure == "hang-up" else api_error(401, "UNAUTHORIZED", 1100)
            )
            url = f"http://127.0.0.1:{closed_port}" if failure == "refused" else server.url
            async with new_session(url) as session:
                client = session.client(token)
                with pytest.raises(AssetPayError) as info:
                    await client.cancel_withdrawal_item(TRADE_ID, ITEM_ID)
                return info.value

    exc = run_virtual(scenario())
    shown = _sdk_frame_locals(exc) if formatter == "traceback" else _sdk_frame_locals_rich(exc)
    assert any(
        "token=" in text for text in shown
    )  # the SDK's frames were captured, token holder included
    assert len([link for link in _chain(exc) if link.__traceback__ is not None]) >= 1
    secret_part = token.rsplit(".", 1)[1]
    leaks = [text for text in shown if token in text or secret_part in text]
    assert leaks == []
