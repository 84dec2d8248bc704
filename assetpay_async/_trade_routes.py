"""What a session has learnt about AssetPay's single-trade route, ``GET /client/trades/{id}``.

That route is what the contract says to poll, but it is not in AssetPay's published API. A session starts not
knowing whether it exists and learns it from answers:

* **present**: it answered in its own terms (a trade, or an error envelope such as ``TRADE_NOT_FOUND`` (21),
  ``FORBIDDEN``): reads use it.
* **missing**: it answered as a route the server does not have: a 404 or 405 without an AssetPay envelope,
  or a gateway's envelope for an unknown route (404 with key ``NOT_FOUND`` or, without a key, code 1003; any
  405). One such answer makes the session *suspect* the route: reads go through ``GET /client/trades`` for
  ``CONFIRM_AFTER`` seconds, then one read probes the route again. A second missing-route answer confirms it
  and the session reads through the list for good; any other answer puts the route back in use. A single
  transient 404 from a gateway therefore costs one list read, not the single-trade route for the session.
* Anything else (429, 5xx, a lost connection, an unreadable 200) says nothing about the route.

While the session does not know (at first, and when a suspicion is due for confirmation), ONE read probes the
route and every other reader waits for its answer: following 1,000 trades costs one probe, not 1,000.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Final

from ._errors import APIError, InvalidResponseError

__all__ = ["CONFIRM_AFTER", "RouteAnswer", "TradeRoutes", "route_answer"]

logger = logging.getLogger("assetpay_async")

CONFIRM_AFTER: Final = 60.0
"""Seconds between a first missing-route answer and the probe that confirms it."""
_MISSING_STATUSES: Final = frozenset({404, 405})


class RouteAnswer(enum.Enum):
    """What one answer of the single-trade route says about the route."""

    PRESENT = "present"
    MISSING = "missing"
    NOTHING = "nothing"


def route_answer(outcome: BaseException | None) -> RouteAnswer:
    """What the outcome of one ``GET /client/trades/{id}`` says about the route (None: it gave a trade)."""
    if outcome is None:
        return RouteAnswer.PRESENT
    if isinstance(outcome, InvalidResponseError):
        return (
            RouteAnswer.MISSING if outcome.http_status in _MISSING_STATUSES else RouteAnswer.NOTHING
        )
    if isinstance(outcome, APIError):
        if outcome.http_status == 405:
            return RouteAnswer.MISSING
        if outcome.http_status == 404 and (
            outcome.key == "NOT_FOUND" or (outcome.key is None and outcome.code == 1003)
        ):
            return RouteAnswer.MISSING
        if outcome.http_status == 429 or (outcome.http_status or 0) >= 500:
            return RouteAnswer.NOTHING
        return RouteAnswer.PRESENT  # the route answered in AssetPay's own terms
    return RouteAnswer.NOTHING


class _State(enum.Enum):
    UNKNOWN = "unknown"
    PRESENT = "present"
    SUSPECT = "suspect"
    MISSING = "missing"


class TradeRoutes:
    """Per-session knowledge of the single-trade route (see the module's docstring)."""

    def __init__(self) -> None:
        self._state = _State.UNKNOWN
        self._confirm_at = 0.0
        self._probe: asyncio.Future[None] | None = None
        self.probes = 0
        """Probes sent (for tests and benchmarks)."""

    @property
    def single_trade_missing(self) -> bool:
        """True while reads go through ``GET /client/trades`` (the route is missing or suspected to be)."""
        return self._state in (_State.MISSING, _State.SUSPECT)

    @property
    def state(self) -> str:
        """``unknown``, ``present``, ``suspect`` or ``missing``."""
        return self._state.value

    def probe_due(self) -> bool:
        """True when the route is suspected missing and the probe that confirms it is due."""
        return (
            self._state is _State.SUSPECT and asyncio.get_running_loop().time() >= self._confirm_at
        )

    async def use_single(self) -> bool | None:
        """Whether a read should use the single-trade route: True, False (read the list), or None: this
        caller is THE probe, must send one single-trade read and report its outcome with ``learn(..., probe=True)``."""
        while True:
            state = self._state
            if state is _State.PRESENT:
                return True
            if state is _State.MISSING:
                return False
            if state is _State.SUSPECT and asyncio.get_running_loop().time() < self._confirm_at:
                return False
            if self._probe is None:
                self._probe = asyncio.get_running_loop().create_future()
                self.probes += 1
                return None
            await asyncio.shield(self._probe)  # another read is probing: its answer is ours

    def learn(self, outcome: BaseException | None, *, probe: bool) -> bool:
        """Learn from one single-trade read (``outcome`` None: it gave a trade; ``probe``: the read was the
        probe, whose waiters wake now). True when it answered as a missing route: read the list instead."""
        try:
            answer = route_answer(outcome)
            if answer is RouteAnswer.PRESENT:
                self._state = _State.PRESENT
            elif answer is RouteAnswer.MISSING:
                self._missing(outcome, probe=probe)
            return answer is RouteAnswer.MISSING
        finally:
            if probe:
                waiting, self._probe = self._probe, None
                if waiting is not None and not waiting.done():
                    waiting.set_result(None)

    def _missing(self, outcome: BaseException | None, *, probe: bool) -> None:
        status = getattr(outcome, "http_status", None)
        if self._state is _State.SUSPECT and probe:
            self._state = _State.MISSING
            logger.info(
                "GET /client/trades/{id} answered HTTP %s as a missing route again: this session "
                "finds trades through GET /client/trades from now on",
                status,
            )
        elif self._state in (_State.UNKNOWN, _State.PRESENT):
            self._state = _State.SUSPECT
            self._confirm_at = asyncio.get_running_loop().time() + CONFIRM_AFTER
            logger.info(
                "GET /client/trades/{id} answered HTTP %s as a missing route: reading through "
                "GET /client/trades, and probing it again in %g s",
                status,
                CONFIRM_AFTER,
            )
