"""Fault injection: what can go wrong between the SDK and AssetPay, scheduled per route group and merchant.

A `Fault` says what happens and to which requests ("the next k cancels", "with probability p",
"for merchant m"); `FaultSchedule` picks the faults of each request with a seeded ``random.Random``,
so a test sees the same faults every run.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator

import attrs

from assetpay_async._quota import RouteGroup

__all__ = ["Fault", "FaultKind", "FaultSchedule"]


class FaultKind(enum.StrEnum):
    """What a fault does to a request."""

    LATENCY = "latency"
    """Wait ``delay`` seconds (plus up to ``jitter``) before handling; the request is then served normally."""
    RESET_BEFORE = "reset-before"
    """Drop the connection before handling: nothing happened, but the client cannot know."""
    RESET_AFTER = "reset-after"
    """Handle the request (a cancel takes effect), then drop the connection instead of answering."""
    HTML_5XX = "html-5xx"
    """A proxy's HTML error page with HTTP ``status`` (default 500); not handled."""
    EMPTY_502 = "empty-502"
    """HTTP 502 with an empty body; not handled."""
    MALFORMED_JSON = "malformed-json"
    """Handle the request, answer with its status and a truncated JSON body."""
    MISSING_FIELDS = "missing-fields"
    """Handle the request; a success envelope loses its ``data`` fields but one (errors pass unchanged)."""
    UNKNOWN_ERROR_KEY = "unknown-error-key"
    """Answer HTTP ``status`` (default 400) with an error envelope whose key no SDK knows; not handled."""
    RATE_LIMITED = "rate-limited"
    """A 429 RATE_LIMITED as if someone else spent the quota; ``retry_after`` seconds or no header."""
    MAINTENANCE = "maintenance"
    """503 SYSTEM_MAINTENANCE (1007); not handled."""
    SLOW_HEADERS = "slow-headers"
    """Handle the request, then wait ``delay`` seconds before sending anything."""
    SLOW_BODY = "slow-body"
    """Handle the request, send the headers and half the body, wait ``delay`` seconds, send the rest."""


_PREHANDLE_ANSWERS = frozenset(
    {
        FaultKind.RESET_BEFORE,
        FaultKind.HTML_5XX,
        FaultKind.EMPTY_502,
        FaultKind.UNKNOWN_ERROR_KEY,
        FaultKind.RATE_LIMITED,
        FaultKind.MAINTENANCE,
    }
)


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")


@attrs.define(eq=False)
class Fault:
    """One scheduled fault.

    Attributes:
        kind: what happens.
        group: the route group it applies to (None: every route).
        merchant_id: the merchant it applies to (None: every merchant; unauthenticated requests never).
        times: how many more requests it may hit (None: unlimited); counts down as it fires.
        probability: the chance it fires on a matching request.
        delay: seconds, for LATENCY, SLOW_HEADERS and SLOW_BODY.
        jitter: extra seconds drawn uniformly from ``[0, jitter]`` for LATENCY.
        status: the HTTP status for HTML_5XX (default 500) and UNKNOWN_ERROR_KEY (default 400).
        retry_after: the ``Retry-After`` seconds of an injected 429 (None: no header).
        fired: how many requests it hit so far.
    """

    kind: FaultKind
    group: RouteGroup | None = None
    merchant_id: str | None = None
    times: int | None = None
    probability: float = attrs.field(default=1.0, validator=_probability)
    delay: float = 0.0
    jitter: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    fired: int = 0

    @property
    def answers_instead(self) -> bool:
        """True when this fault replaces the handling of the request (nothing takes effect)."""
        return self.kind in _PREHANDLE_ANSWERS

    def matches(self, group: RouteGroup, merchant_id: str | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.group is not None and self.group is not group:
            return False
        return self.merchant_id is None or self.merchant_id == merchant_id


class FaultSchedule:
    """The faults of one sandbox, drawn with a seeded random generator.

    Example:
        >>> schedule = FaultSchedule(random.Random(1))
        >>> schedule.add("reset-after", group="cancel-item", times=2)  # the next two cancels
        Fault(kind=<FaultKind.RESET_AFTER: 'reset-after'>, ...)
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._faults: list[Fault] = []

    def add(
        self,
        kind: FaultKind | str,
        *,
        group: RouteGroup | str | None = None,
        merchant: object = None,
        times: int | None = None,
        probability: float = 1.0,
        delay: float = 0.0,
        jitter: float = 0.0,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> Fault:
        """Schedule a fault; ``merchant`` is a merchant or its id. Returns it (see ``fired``)."""
        merchant_id = getattr(merchant, "id", merchant)
        if merchant_id is not None and not isinstance(merchant_id, str):
            raise TypeError("merchant must be a Merchant, a merchant id or None")
        if times is not None and times < 0:
            raise ValueError("times must be >= 0 or None")
        fault = Fault(
            FaultKind(kind),
            RouteGroup(group) if group is not None else None,
            merchant_id,
            times,
            probability,
            delay,
            jitter,
            status,
            retry_after,
        )
        self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        """Unschedule one fault."""
        self._faults.remove(fault)

    def clear(self) -> None:
        """Unschedule every fault."""
        self._faults.clear()

    def __iter__(self) -> Iterator[Fault]:
        return iter(tuple(self._faults))

    def __len__(self) -> int:
        return len(self._faults)

    def draw(self, group: RouteGroup, merchant_id: str | None) -> list[Fault]:
        """The faults that fire on one request, in scheduling order; each one's count goes down."""
        fired: list[Fault] = []
        for fault in self._faults:
            if merchant_id is None or not fault.matches(group, merchant_id):
                continue
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            if fault.times is not None:
                fault.times -= 1
            fault.fired += 1
            fired.append(fault)
        return fired

    def jitter(self, fault: Fault) -> float:
        """The delay of a LATENCY fault for one request."""
        return fault.delay + (self._rng.uniform(0.0, fault.jitter) if fault.jitter > 0 else 0.0)
