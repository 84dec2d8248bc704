"""The shared poller's share of the merchant's trades-read quota.

The trades-read quota is the merchant's, shared with every other reader: a frontend holding client tokens,
``get_trade`` calls, a batch planning whole-trade cancels. The poller of ``wait_for_items`` must not eat it, so
it starts its requests evenly spaced at no more than ``share`` of the quota: ``floor(share x N)`` per period
``T``, one every ``T / floor(share x N)`` seconds (a hair more, so that no closed window of ``T`` holds one
more). The merchant's limiter still paces each request as usual; this only holds the poller back.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

from ._errors import ConfigurationError
from ._quota import Quota

__all__ = ["DEFAULT_READ_SHARE", "ReadPace", "check_share"]

DEFAULT_READ_SHARE: Final = 0.5
"""The poller's share of the trades-read quota unless the session says otherwise."""
_SLACK: Final = 1.001


def check_share(value: object, name: str = "poll_read_share") -> float:
    """``value`` as a share of a quota, 0 < share <= 1.

    Raises:
        ConfigurationError: not a finite number in (0, 1].
    """
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and 0 < value <= 1
    )
    if not ok:
        raise ConfigurationError(f"{name} must be a number above 0 and at most 1, got {value!r}")
    return float(value)  # type: ignore[arg-type]


class ReadPace:
    """Even spacing of the poller's requests within ``share`` of ``quota``.

    Args:
        quota: the merchant's trades-read quota.
        share: the poller's share of it.
    """

    __slots__ = ("_next", "limit", "spacing")

    def __init__(self, quota: Quota, share: float) -> None:
        self.limit = max(1, math.floor(quota.limit * check_share(share)))
        """Requests the poller may start in one period of the quota."""
        self.spacing = quota.period_seconds / self.limit * _SLACK
        """Seconds between two of its requests."""
        self._next = -math.inf

    async def wait(self) -> None:
        """Return when the poller may send its next request (its slot is taken then)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        at = max(now, self._next)
        self._next = at + self.spacing
        if at > now:
            await asyncio.sleep(at - now)
