"""The thin aiohttp layer: one attempt on the wire, its failures sorted into "not sent" and "maybe sent"."""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import attrs
from yarl import URL

from ._protocol import RequestSpec


@attrs.frozen
class RawResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    wire_seconds: float


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


async def send(
    http: aiohttp.ClientSession,
    url: str,
    spec: RequestSpec,
    headers: Mapping[str, str],
    *,
    timeout: float,
    options: Mapping[str, Any],
) -> RawResponse:
    """Send one attempt and read the whole body, classifying every failure.

    Args:
        options: extra ``ClientSession.request`` arguments: :func:`per_request_options` for a session the
            SDK did not build, nothing for its own.
    """
    started = time.perf_counter()
    try:
        async with http.request(
            spec.method,
            # The path is percent-encoded already (refs are escaped segment by segment): yarl must neither
            # decode "%21" back to "!" nor encode "%2F" again.
            URL(url, encoded=True),
            params=spec.params or None,
            headers=headers,
            allow_redirects=False,
            **options,
        ) as response:
            body = await response.read()
            return RawResponse(
                response.status, response.headers, body, time.perf_counter() - started
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
