"""Helpers of the core tests: JWT-shaped client tokens and a scripted HTTP server on loopback.

The tests import these; the fixtures that use them are in ``conftest.py``.

The server is a few dozen lines of raw asyncio HTTP/1.1 instead of an ``aiohttp.web`` app on purpose: tests
need to misbehave at the socket level (read a request, then hang up without answering) and to run on
:class:`assetpay_async.testing.VirtualTimeLoop`, where a reply delayed by a minute costs no wall time.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import attrs

from assetpay_async import AssetPaySession, Quota, RetryPolicy

TRADE_ID = uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7")
ITEM_ID = uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479")
MERCHANT = "merchant-42"

# Retries that never sleep more than a few milliseconds of wall time.
FAST_RETRY = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_cap=0.004)


def _b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_token(
    merchant_id: str | None = MERCHANT,
    *,
    header_user_id: str | None = None,
    steam_id: str = "76561198000000001",
    secret: bytes = b"merchant-api-secret",
) -> str:
    """A client token shaped like AssetPay's: ``header.payload.signature``, HS256 with a test secret.

    Args:
        merchant_id: the payload's ``merchantId`` (None leaves it out).
        header_user_id: the header's ``userId``; defaults to ``merchant_id`` as AssetPay issues them.
        steam_id: the end user, so that two tokens of one merchant differ.
        secret: the signing key (the SDK never checks the signature).
    """
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    user_id = header_user_id if header_user_id is not None else merchant_id
    if user_id is not None:
        header["userId"] = user_id
    payload: dict[str, Any] = {
        "client": {"steamID": steam_id, "tradeUrl": "https://steamcommunity.com/tradeoffer/new/"},
        "iat": 1_780_000_000,
        "exp": 1_780_086_400,
    }
    if merchant_id is not None:
        payload["merchantId"] = merchant_id
    signing_input = f"{_b64url(header)}.{_b64url(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def success_body(data: Any, request_id: str = "srv-req-1") -> bytes:
    return json.dumps({"requestId": request_id, "success": True, "data": data}).encode()


def error_body(
    key: str | None,
    code: int | None,
    message: Any = "nope",
    request_id: str = "srv-req-1",
    **extra: Any,
) -> bytes:
    error: dict[str, Any] = {"message": message, **extra}
    if key is not None:
        error["key"] = key
    if code is not None:
        error["code"] = code
    return json.dumps({"requestId": request_id, "success": False, "error": error}).encode()


@attrs.frozen
class Reply:
    """What the scripted server does with one request.

    Attributes:
        status: HTTP status.
        body: response body bytes.
        content_type: Content-Type header (None sends none).
        headers: extra response headers.
        delay: seconds (loop time) to wait before answering.
        hang_up: read the request, then close the connection without answering.
    """

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    hang_up: bool = False


HANG_UP = Reply(hang_up=True)


def cancel_ok(request_id: str = "srv-req-1", **data: Any) -> Reply:
    """A 200 cancel result for TRADE_ID/ITEM_ID."""
    body = {"tradeId": str(TRADE_ID), "itemId": str(ITEM_ID), "status": "cancelled", **data}
    return Reply(200, success_body(body, request_id))


def api_error(
    status: int,
    key: str | None,
    code: int | None,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    **kwargs: Any,
) -> Reply:
    """An error envelope with ``key`` and ``code``; ``kwargs`` go into the error object."""
    return Reply(status, error_body(key, code, **kwargs), headers=headers)


@attrs.frozen
class RecordedRequest:
    method: str
    target: str
    headers: dict[str, str]
    """Header names lowercased."""
    body: bytes


def echo_cancel(request: RecordedRequest) -> Reply:
    """A 200 cancel result naming the ids of the request's own path."""
    parts = request.target.split("/")  # /client/trading/withdraw/{t}/items/{i}/cancel
    data = {"tradeId": parts[4], "itemId": parts[6], "status": "cancelled"}
    return Reply(200, success_body(data, request.headers.get("x-request-id", "srv")))


class ScriptedServer:
    """An HTTP/1.1 server on 127.0.0.1 that answers from a script and records every request it read.

    Use as ``async with ScriptedServer() as server``; ``server.url`` is its base URL. Replies come from
    ``script(...)`` in order, or from ``respond`` (a function of the request) once the script is empty; an
    unscripted request gets a 599 so a test notices.
    """

    def __init__(self, *, sock: socket.socket | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        self.respond: Callable[[RecordedRequest], Reply] | None = None
        self._script: collections.deque[Reply] = collections.deque()
        self._sock = sock
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._arrivals = asyncio.Condition()
        self.url = ""

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    async def wait_for_requests(self, count: int) -> None:
        """Return once the server has read ``count`` requests in all."""
        async with self._arrivals:
            await self._arrivals.wait_for(lambda: len(self.requests) >= count)

    async def __aenter__(self) -> Self:
        if self._sock is not None:
            self._server = await asyncio.start_server(self._serve, sock=self._sock)
        else:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def _next_reply(self, request: RecordedRequest) -> Reply:
        if self._script:
            return self._script.popleft()
        if self.respond is not None:
            return self.respond(request)
        return Reply(599, b"unscripted request", content_type="text/plain")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _version = request_line.split(" ", 2)
                headers = {}
                for line in filter(None, header_lines):
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = RecordedRequest(method, target, headers, body)
                self.requests.append(request)
                async with self._arrivals:
                    self._arrivals.notify_all()
                reply = self._next_reply(request)
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                if reply.hang_up:
                    return
                lines = [f"HTTP/1.1 {reply.status} Scripted", f"Content-Length: {len(reply.body)}"]
                if reply.content_type is not None:
                    lines.append(f"Content-Type: {reply.content_type}")
                lines.extend(f"{name}: {value}" for name, value in reply.headers)
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body)
                await writer.drain()
        finally:
            self._handlers.discard(task)
            writer.close()


def new_session(base_url: str, **overrides: Any) -> AssetPaySession:
    """A session for tests: a generous quota with no latency margin, retries that barely sleep."""
    options: dict[str, Any] = {
        "cancel_quota": Quota(1000, 1.0),
        "latency_margin": 0.0,
        "base_url": base_url,
        "retry": FAST_RETRY,
    }
    options.update(overrides)
    return AssetPaySession(**options)
