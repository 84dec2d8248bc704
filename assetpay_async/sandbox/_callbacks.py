"""Callbacks: POST ``{"trade": {...}}`` (or a crypto ``{"withdrawal": ...}``/``{"deposit": ...}``, or any body)
to the merchant's URL, signed, retried with one delivery id."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import attrs

from assetpay_async._signing import SIGNATURE_HEADER, signature_header

from ._clock import SandboxClock, isoformat_ms
from ._state import Merchant

__all__ = ["CallbackAttempt", "CallbackDispatcher"]


@attrs.frozen
class CallbackAttempt:
    """One HTTP attempt of one callback delivery.

    Attributes:
        delivery_id: the same for every attempt (and every duplicate) of one event.
        merchant_id: the merchant called.
        trade_id: the trade the event is about.
        trade_status: the trade's status in the body (the event).
        url: where it was posted.
        attempt: 1 for the first attempt of this delivery.
        copy: 1, or 2 for the duplicate delivery of the same event.
        time: sandbox seconds when it was sent.
        timestamp: the ``t`` it was signed with.
        body: the raw bytes posted.
        signature: the ``X-AssetPay-Signature`` header.
        status: the HTTP status answered, None when the request failed.
        error: why it failed without a status, else None.
        kind: what the body carries: ``trade``, ``withdrawal``, ``deposit`` or ``other`` (for the last three,
            ``trade_id``/``trade_status`` hold the object's id and status, or empty strings).
        answer: the body answered (its first 4 KiB), empty when the request failed.
    """

    delivery_id: str
    merchant_id: str
    trade_id: str
    trade_status: str
    url: str
    attempt: int
    copy: int
    time: float
    timestamp: str
    body: bytes
    signature: str
    status: int | None
    error: str | None
    kind: str = "trade"
    answer: bytes = attrs.field(default=b"", repr=False)

    @property
    def delivered(self) -> bool:
        """Answered with a 2xx."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def rejected(self) -> bool:
        """What AssetPay reads as a rejection of an approval gate: any 4xx but 408 and 429, or a 2xx whose body
        is ``{"action": "reject", ...}``."""
        if self.status is None:
            return False
        if 400 <= self.status < 500:
            return self.status not in (408, 429)
        if not self.delivered:
            return False
        try:
            body = json.loads(self.answer)
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("action") == "reject"


class CallbackDispatcher:
    """Delivers callbacks; every attempt is appended to ``attempts``.

    Args:
        clock: the sandbox clock (backoff sleeps on it; ``t`` is its wall time).
        new_id: makes delivery ids.
        max_attempts: attempts per delivery before giving up.
        backoff: seconds before the second attempt; doubles after each failure (capped at 1 hour).
        timeout: seconds an attempt may take (AssetPay: 15).
        duplicate: deliver every event twice (same delivery id), to test dedupe.
    """

    def __init__(
        self,
        clock: SandboxClock,
        new_id: Callable[[], str],
        *,
        max_attempts: int = 5,
        backoff: float = 1.0,
        timeout: float = 15.0,
        duplicate: bool = False,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._clock = clock
        self._new_id = new_id
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout
        self.duplicate = duplicate
        self.attempts: list[CallbackAttempt] = []
        self._http: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    async def deliver(self, merchant: Merchant, trade: dict[str, Any]) -> bool:
        """Deliver one trade event (and its duplicate, if configured); True once a copy got a 2xx."""
        return await self.deliver_payload(merchant, {"trade": trade})

    async def deliver_payload(self, merchant: Merchant, payload: Any) -> bool:
        """Deliver any JSON body, signed like every callback; True once a copy got a 2xx."""
        if merchant.callback_url is None:
            return False
        body = json.dumps(payload, separators=(",", ":")).encode()
        kind, subject = _subject(payload)
        delivery_id = self._new_id()
        delivered = False
        for copy in range(1, 3 if self.duplicate else 2):
            copy_delivered = await self._deliver_copy(
                merchant, kind, subject, body, delivery_id=delivery_id, copy=copy
            )
            delivered = delivered or copy_delivered
        return delivered

    async def _deliver_copy(
        self,
        merchant: Merchant,
        kind: str,
        subject: dict[str, Any],
        body: bytes,
        *,
        delivery_id: str,
        copy: int,
    ) -> bool:
        url = merchant.callback_url
        if url is None:
            return False
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                wait = min(self.backoff * 2 ** (attempt - 2), 3600.0)
                await self._clock.sleep_until(self._clock.now() + wait)
            timestamp = isoformat_ms(self._clock.wall())
            header = signature_header(
                merchant.secret,
                delivery_id,
                timestamp,
                body,
                previous_secret=merchant.previous_secret,
            )
            sent_at = self._clock.now()
            status, error, answer = await self._post(url, body, header)
            record = CallbackAttempt(
                delivery_id=delivery_id,
                merchant_id=merchant.id,
                trade_id=str(subject.get("id", "")),
                trade_status=str(subject.get("status", "")),
                url=url,
                attempt=attempt,
                copy=copy,
                time=sent_at,
                timestamp=timestamp,
                body=body,
                signature=header,
                status=status,
                error=error,
                kind=kind,
                answer=answer,
            )
            self.attempts.append(record)
            if record.delivered:
                return True
        return False

    async def _post(
        self, url: str, body: bytes, header: str
    ) -> tuple[int | None, str | None, bytes]:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            async with self._http.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: header},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as response:
                answer = await response.read()
                return response.status, None, answer[:4096]
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:200], b""


def _subject(payload: Any) -> tuple[str, dict[str, Any]]:
    """What a body is about: its kind and the object carrying ``id`` and ``status``."""
    if isinstance(payload, dict):
        for kind in ("trade", "withdrawal", "deposit"):
            value = payload.get(kind)
            if isinstance(value, dict):
                return kind, value
    return "other", {}
