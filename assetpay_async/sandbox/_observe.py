"""What the sandbox saw: one record per request, per-merchant totals, and window arithmetic for assertions.

Records hold no header and no token: the path, the route group, the merchant the token named, the outcome.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import attrs

from assetpay_async._quota import Quota, RouteGroup

__all__ = ["RequestRecord", "Totals", "accepted_times", "max_in_window", "quota_share", "totals"]


@attrs.frozen
class RequestRecord:
    """One request the sandbox received.

    Attributes:
        time: sandbox seconds when it arrived.
        method: the HTTP method.
        path: the path as sent, percent-encoded (refs stay one segment each; query strings are dropped).
        group: its route group.
        merchant_id: the merchant of a valid token, else None.
        status: the HTTP status answered (0 when the connection was dropped instead).
        key: the error key answered, None on success or without an envelope.
        request_id: the ``X-Request-Id`` the client sent, if any.
        counted: whether the quota counted it (the request reached the rate limiter).
        fault: the fault kinds that fired on it.
    """

    time: float
    method: str
    path: str
    group: RouteGroup
    merchant_id: str | None
    status: int
    key: str | None
    request_id: str | None
    counted: bool
    fault: tuple[str, ...] = ()

    @property
    def rate_limited(self) -> bool:
        """Refused by the sandbox's rate limiter (injected 429s are faults, not this)."""
        return self.counted and self.key == "RATE_LIMITED"


@attrs.frozen
class Totals:
    """Counts of one merchant's requests.

    Attributes:
        accepted: counted requests the rate limiter let through.
        rate_limited: counted requests it refused (429).
        faulted: requests a fault hit.
    """

    accepted: int
    rate_limited: int
    faulted: int


def totals(
    records: Iterable[RequestRecord], merchant_id: str, group: RouteGroup | None = None
) -> Totals:
    """The totals of ``merchant_id``'s requests (of ``group`` only, if given)."""
    accepted = rate_limited = faulted = 0
    for record in records:
        if record.merchant_id != merchant_id or (group is not None and record.group is not group):
            continue
        if record.rate_limited:
            rate_limited += 1
        elif record.counted:
            accepted += 1
        if record.fault:
            faulted += 1
    return Totals(accepted, rate_limited, faulted)


def accepted_times(
    records: Iterable[RequestRecord], merchant_id: str, group: RouteGroup
) -> list[float]:
    """When the rate limiter let ``merchant_id``'s requests of ``group`` through, in arrival order."""
    return [
        r.time
        for r in records
        if r.merchant_id == merchant_id and r.group is group and r.counted and not r.rate_limited
    ]


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most ``times`` (ascending) falling within any closed interval ``[t, t + window]``."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect.bisect_right(times, start + window, lo=i) - i)
    return best


def quota_share(times: Sequence[float], quota: Quota) -> float:
    """``max_in_window(times, T) / N``: 1.0 means some window of the quota's length held exactly N hits."""
    return max_in_window(times, quota.period_seconds) / quota.limit
