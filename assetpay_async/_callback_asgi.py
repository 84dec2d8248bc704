"""A plain ASGI application over a [`CallbackProcessor`][assetpay_async.callbacks.CallbackProcessor].

No ASGI library is imported: Starlette, FastAPI (``app.mount(path, processor.asgi())``) or any ASGI server
runs it as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final, Protocol

from ._callback_events import CallbackAnswer

__all__ = ["MAX_BODY", "ASGIApp", "CallbackASGIApp", "Handler", "asgi_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application: ``await app(scope, receive, send)``."""

MAX_BODY: Final = 1024 * 1024
"""The largest body read (AssetPay's callbacks are a few kilobytes); a larger one is answered 413."""


class Handler(Protocol):
    """What the application answers with: a [`CallbackProcessor`][assetpay_async.callbacks.CallbackProcessor]."""

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> CallbackAnswer: ...


_NOT_POST: Final = CallbackAnswer.json(
    405, {"error": "method not allowed"}, headers={"Allow": "POST"}
)
_TOO_LARGE: Final = CallbackAnswer.json(413, {"error": "body too large"})


class CallbackASGIApp:
    """The ASGI application answering every ``POST`` with ``processor.handle``.

    A class, not a function: Starlette's ``Route`` (and FastAPI's ``add_route``) serve a callable object as an
    ASGI application, where a plain function would be taken for a request handler.
    """

    __slots__ = ("_processor",)

    def __init__(self, processor: Handler) -> None:
        self._processor = processor

    def __repr__(self) -> str:
        return f"<CallbackASGIApp {self._processor!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: nothing to serve
        if scope.get("method") != "POST":
            await _send(send, _NOT_POST)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        if body is _TOO_LARGE_BODY:
            await _send(send, _TOO_LARGE)
            return
        answer = await self._processor.handle(body, _headers(scope))
        await _send(send, answer)


def asgi_app(processor: Handler) -> CallbackASGIApp:
    """The ASGI application over ``processor``."""
    return CallbackASGIApp(processor)


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers by lowercase name; a repeated header is joined with ``", "`` (RFC 9110)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


_TOO_LARGE_BODY: Final = b"<over MAX_BODY>"


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body; None when the client disconnected; `_TOO_LARGE_BODY` beyond `MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size <= MAX_BODY else _TOO_LARGE_BODY


async def _send(send: Send, answer: CallbackAnswer) -> None:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers.items()
    ]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
