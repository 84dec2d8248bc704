"""The transport seam: one object that puts an attempt on the wire and hands back what came back.

[`Requester`][assetpay_async._transport.Requester] knows a transport only as a
[`Transport`][assetpay_async._wire.Transport]: ``await transport.send(request)`` returns a
[`RawResponse`][assetpay_async._http.RawResponse] or raises one of ``_http``'s three failures (``NotSentError``,
``MaybeSentError``, ``TLSError``). Tests replace it with an object of their own; the SDK's is
[`AiohttpTransport`][assetpay_async._wire.AiohttpTransport], which owns the HTTP connection pool of each event
loop (created on first use inside a coroutine, closed with its loop or by ``aclose()``) and the connection
slots that keep waiting for a pooled connection out of the request timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import aiohttp

from . import _http
from ._errors import SessionClosedError
from ._protocol import RequestSpec
from ._tokens import SecretToken

__all__ = ["AiohttpTransport", "Transport", "WireRequest"]


class WireRequest(NamedTuple):
    """One attempt as it goes out (a named tuple: one is made per attempt): the call, its full URL, the
    core's headers and the token to send.

    Attributes:
        spec: the call (method, path, query).
        url: the base URL and the path, already percent-encoded.
        headers: the core's headers (lower-cased names), without credentials.
        token: the credential; the HTTP layer turns it into a header inside the request only.
    """

    spec: RequestSpec
    url: str
    headers: Mapping[str, str]
    token: SecretToken


@runtime_checkable
class Transport(Protocol):
    """Sends one attempt: what `Requester` needs of the network."""

    async def send(self, request: WireRequest) -> _http.RawResponse:
        """Send ``request`` once and read its answer.

        Raises:
            NotSentError: the request never left this process (AssetPay did not see it).
            MaybeSentError: it may have reached AssetPay, but no complete answer came back.
            TLSError: a certificate or TLS failure.
            SessionClosedError: the transport was closed.
        """
        ...

    async def aclose(self) -> None:
        """Release the connections. Idempotent."""
        ...


class _LoopBinding:
    """The HTTP session of one event loop, closed when that loop is shut down by ``asyncio.run``."""

    __slots__ = ("http", "loop", "owned", "request_options", "sentinel", "slots")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        http: aiohttp.ClientSession,
        owned: bool,
        slots: int,
        request_options: Mapping[str, Any],
    ) -> None:
        self.loop = loop
        self.http = http
        self.owned = owned
        self.request_options = request_options
        # Taken before the request timeout starts, so waiting for a pooled connection is not a timeout.
        self.slots = asyncio.Semaphore(slots)
        self.sentinel: AsyncIterator[None] | None = None


async def _close_at_loop_shutdown(binding: _LoopBinding) -> AsyncIterator[None]:
    # asyncio.run() calls loop.shutdown_asyncgens() before closing the loop, which closes this generator:
    # the HTTP session goes down with its loop instead of leaking sockets into the next asyncio.run().
    try:
        yield
    finally:
        if binding.owned and not binding.http.closed:
            await binding.http.close()


class AiohttpTransport:
    """The SDK's transport: an aiohttp session per event loop, its own or one the caller passed.

    Args:
        http_session: an ``aiohttp.ClientSession`` the caller owns (never closed here), or None.
        timeout: seconds for one attempt on the wire.
        connect_timeout: seconds to establish a connection.
        max_connections: connections at once.
    """

    def __init__(
        self,
        *,
        http_session: aiohttp.ClientSession | None,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
    ) -> None:
        self._external_http = http_session
        self._timeout = timeout
        self._client_timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._max_connections = max_connections
        self._binding: _LoopBinding | None = None
        self._closed = False

    @property
    def owns_open_http(self) -> bool:
        """Whether an HTTP session this transport created is still open (for the unclosed warning)."""
        binding = self._binding
        return binding is not None and binding.owned and not binding.http.closed

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError("this AssetPaySession is closed; create a new one")

    async def send(self, request: WireRequest) -> _http.RawResponse:
        """One attempt on the wire (see [`Transport.send`][assetpay_async._wire.Transport.send])."""
        binding = self._binding
        if (
            binding is None
            or binding.loop is not asyncio.get_running_loop()
            or binding.http.closed
            or self._closed
        ):
            binding = await self.ensure_http()
        async with binding.slots:
            self._check_open()
            return await _http.send(
                binding.http,
                request.url,
                request.spec,
                request.headers,
                request.token,
                timeout=self._timeout,
                options=binding.request_options,
            )

    async def ensure_http(self) -> _LoopBinding:
        """The HTTP session of the running loop, created on first use."""
        self._check_open()
        loop = asyncio.get_running_loop()
        binding = self._binding
        if binding is not None and binding.loop is loop and not binding.http.closed:
            return binding
        if binding is not None and binding.loop is not loop and binding.loop.is_running():
            raise SessionClosedError(
                "this AssetPaySession is in use on another event loop that is still running; "
                "create one session per event loop"
            )
        if self._external_http is not None:
            binding = self._bind_external(loop, self._external_http)
        else:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
            http = aiohttp.ClientSession(
                connector=connector,
                timeout=self._client_timeout,
                skip_auto_headers=_http.SKIP_AUTO_HEADERS,
                raise_for_status=False,
            )
            binding = _LoopBinding(
                loop, http, owned=True, slots=self._max_connections, request_options={}
            )
            sentinel = _close_at_loop_shutdown(binding)
            await anext(sentinel)
            binding.sentinel = sentinel
        self._binding = binding
        return binding

    def _bind_external(
        self, loop: asyncio.AbstractEventLoop, http: aiohttp.ClientSession
    ) -> _LoopBinding:
        if http.closed:
            raise SessionClosedError("the aiohttp.ClientSession passed as http_session is closed")
        if getattr(http, "_loop", loop) is not loop:
            raise SessionClosedError(
                "the aiohttp.ClientSession passed as http_session belongs to another event loop"
            )
        return _LoopBinding(
            loop,
            http,
            owned=False,
            slots=self._max_connections,
            request_options=_http.per_request_options(self._client_timeout),
        )

    async def aclose(self) -> None:
        """Close the HTTP session if this transport created it; later sends raise SessionClosedError."""
        self._closed = True
        binding, self._binding = self._binding, None
        if binding is not None:
            if binding.sentinel is not None:
                await binding.sentinel.aclose()  # type: ignore[attr-defined]
            if binding.owned and not binding.http.closed:
                await binding.http.close()
