"""The thin aiohttp layer: one attempt on the wire, its failures sorted into "not sent" and "maybe sent".

The core (``_protocol.py``) never sees aiohttp: this layer adds the ``User-Agent`` and the ``Authorization``
header to the core's headers at the last moment, reads at most ``MAX_RESPONSE_BYTES`` of the body, and hands
back the status, the headers with lower-cased names, and the body.
"""

from __future__ import annotations

import platform
import ssl
import time
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import aiohttp
from yarl import URL

from ._minting import ApiKey
from ._protocol import RequestSpec
from ._tokens import SecretToken
from ._version import __version__

USER_AGENT: Final = (
    f"assetpay-async/{__version__} aiohttp/{aiohttp.__version__} Python/{platform.python_version()}"
)

MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
"""The most of a response body the SDK reads (4 MiB). AssetPay's answers are a few kilobytes (a page of 100
trades is well under 1 MiB); past this the answer is refused as an ``InvalidResponseError`` without reading
the rest, so a hostile or broken server cannot make the SDK buffer without bound."""


class RawResponse(NamedTuple):
    """One answer as read off the wire (a named tuple: one is made per attempt).

    Attributes:
        status: the HTTP status.
        headers: the response headers, names lower-cased.
        body: the body (its first ``MAX_RESPONSE_BYTES + 1`` bytes when ``truncated``).
        wire_seconds: from sending to the end of the read.
        truncated: the body was longer than ``MAX_RESPONSE_BYTES``; the rest was not read.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    wire_seconds: float
    truncated: bool = False


class _RedactedHeaders(dict[str, str]):
    """The request's headers, the ``Authorization`` value included, with a ``repr`` that hides it.

    Built inside [`send`][assetpay_async._http.send] as the request is made, so the token appears in no local
    variable of the SDK's frames: a traceback formatter that captures locals (error trackers do) shows this
    object's ``repr`` only.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        shown = {
            name: ("<redacted>" if name in _CREDENTIAL_HEADERS else value)
            for name, value in self.items()
        }
        return f"_RedactedHeaders({shown!r})"

    __str__ = __repr__


_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "api-key"})


def _with_credentials(
    headers: Mapping[str, str], token: SecretToken, *, json_body: bool = False
) -> _RedactedHeaders:
    full = _RedactedHeaders(headers)
    full["user-agent"] = USER_AGENT
    if json_body:
        full["content-type"] = "application/json"
    if isinstance(token, ApiKey):  # the merchant scope (/secure/*, /auth/*)
        full["api-key"] = token.reveal()
    else:
        full["authorization"] = "Bearer " + token.reveal()
    return full


class NotSentError(Exception):
    """The request never left this process (connection refused, DNS, connect timeout)."""


class MaybeSentError(Exception):
    """The request may have reached the server but no complete response came back."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class TLSError(Exception):
    """Certificate or TLS failure: never retried, never silenced."""


def _describe(exc: BaseException) -> str:
    # aiohttp's messages name host and port, never headers, so they cannot carry the token.
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


# The calls carry no body: aiohttp would otherwise label the empty POST application/octet-stream.
SKIP_AUTO_HEADERS: Final = ("Content-Type",)


def per_request_options(timeout: aiohttp.ClientTimeout) -> dict[str, Any]:
    """What each request must carry on a session the SDK did not build (an injected one).

    The SDK's own session has these as session defaults, set once: passed per request they cost aiohttp
    several microseconds a call. An injected session may also raise for status, and AssetPay's error
    envelopes must reach the decoder.
    """
    return {"timeout": timeout, "skip_auto_headers": SKIP_AUTO_HEADERS, "raise_for_status": False}


async def _read_capped(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    """The body, or its first ``MAX_RESPONSE_BYTES + 1`` bytes and True when it is longer."""
    length = response.content_length
    if length is not None and length <= MAX_RESPONSE_BYTES:
        return await response.read(), False  # the common case: bounded by Content-Length
    if length is not None:
        return b"", True  # announced too long: do not read any of it
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return b"".join(chunks)[: MAX_RESPONSE_BYTES + 1], True
    return b"".join(chunks), False


async def _read_body(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    """The body and whether it was cut at ``MAX_RESPONSE_BYTES``."""
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) <= MAX_RESPONSE_BYTES:
        return await response.read(), False  # the common case, read inline
    return await _read_capped(response)


async def send(
    http: aiohttp.ClientSession,
    url: str,
    spec: RequestSpec,
    headers: Mapping[str, str],
    token: SecretToken,
    *,
    timeout: float,
    options: Mapping[str, Any],
) -> RawResponse:
    """Send one attempt and read the body (up to ``MAX_RESPONSE_BYTES``), classifying every failure.

    Args:
        http: the aiohttp session to send on.
        url: the full URL.
        spec: the call.
        headers: the core's headers (lower-cased names), without credentials.
        token: the client token; it becomes the ``Authorization`` header inside the request only.
        timeout: the attempt's timeout in seconds (for the message of a timeout).
        options: extra ``ClientSession.request`` arguments: ``per_request_options()`` for a session the SDK
            did not build, nothing for its own.
    """
    started = time.perf_counter()
    try:
        async with http.request(
            spec.method,
            # The path is percent-encoded already (refs are escaped segment by segment): yarl must neither
            # decode "%21" back to "!" nor encode "%2F" again.
            URL(url, encoded=True),
            params=spec.params or None,
            headers=_with_credentials(headers, token, json_body=spec.body is not None),
            data=spec.body,
            allow_redirects=False,
            **options,
        ) as response:
            body, truncated = await _read_body(response)
            return RawResponse(
                response.status,
                {name.lower(): value for name, value in response.headers.items()},
                body,
                time.perf_counter() - started,
                truncated,
            )
    except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError, ssl.SSLError) as exc:
        raise TLSError(_describe(exc)) from exc
    except aiohttp.ClientConnectorError as exc:
        raise NotSentError(_describe(exc)) from exc
    except aiohttp.ConnectionTimeoutError as exc:
        raise NotSentError(_describe(exc)) from exc
    except TimeoutError as exc:
        raise MaybeSentError(f"no response within {timeout:g}s", timed_out=True) from exc
    except (
        aiohttp.ClientPayloadError,
        aiohttp.ClientConnectionError,  # disconnected, reset, OS errors, "Connection closed"
        aiohttp.ClientResponseError,
    ) as exc:
        raise MaybeSentError(_describe(exc)) from exc
