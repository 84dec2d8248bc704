"""The sandbox's clock: the running event loop's time plus an offset that `SandboxClock.advance` moves.

Under `assetpay_async.testing.VirtualTimeLoop` the loop's time is virtual, so quota windows, revert
delays, callback retries and item ages all run on virtual time; on a normal loop they run in real time.

Sandbox time 0 is a wall-clock datetime: the one given, else `DEFAULT_START` on a `VirtualTimeLoop` (the same
timestamps every run) and the current time on any other loop, so that callbacks signed by the sandbox pass a
callback handler's timestamp check with its default (system) clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from assetpay_async.testing import VirtualTimeLoop

__all__ = ["DEFAULT_START", "SandboxClock", "isoformat_ms"]

DEFAULT_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""The wall-clock time of sandbox time 0 on a `VirtualTimeLoop` unless configured (a round minute)."""


def isoformat_ms(when: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, as AssetPay writes times: ``2026-01-01T00:00:00.000Z``."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SandboxClock:
    """Seconds since the sandbox started, read from the event loop; ``advance`` jumps it forward.

    Args:
        start: the wall-clock datetime of sandbox time 0 (timezone-aware). None: `DEFAULT_START` on a
            `VirtualTimeLoop`, the current time on any other loop (decided when the clock is bound, or first
            read, whichever comes first; the current time when no loop is running then).
    """

    __slots__ = ("_loop", "_offset", "_origin", "_start", "_waker")

    def __init__(self, start: dt.datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("the sandbox start datetime must be timezone-aware")
        self._start = start
        self._loop: asyncio.AbstractEventLoop | None = None
        self._origin = 0.0
        self._offset = 0.0
        self._waker = asyncio.Event()

    @property
    def start(self) -> dt.datetime:
        """The wall-clock datetime of sandbox time 0."""
        if self._start is None:
            self._start = _default_start(_running_loop(), self.now())
        return self._start

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start counting on ``loop`` (the sandbox does this when it starts); time before that is 0."""
        now = self.now()
        if self._start is None:
            self._start = _default_start(loop, now)
        self._loop = loop
        self._origin = loop.time()
        self._offset = now

    def now(self) -> float:
        """Sandbox seconds: elapsed loop time since `bind` plus every `advance`."""
        if self._loop is None:
            return self._offset
        return self._loop.time() - self._origin + self._offset

    def wall(self, at: float | None = None) -> dt.datetime:
        """The wall-clock datetime of sandbox time ``at`` (default: now)."""
        return self.start + dt.timedelta(seconds=self.now() if at is None else at)

    def unix(self) -> float:
        """Now as a Unix timestamp (for token ``iat``/``exp``)."""
        return self.wall().timestamp()

    def advance(self, delta: dt.timedelta | float) -> None:
        """Jump forward; whatever waits on `sleep_until` re-checks its deadline at once."""
        seconds = delta.total_seconds() if isinstance(delta, dt.timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += seconds
        waker, self._waker = self._waker, asyncio.Event()
        waker.set()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until sandbox time ``deadline``, waking early if `advance` passes it."""
        while (remaining := deadline - self.now()) > 0:
            waker = self._waker
            try:
                async with asyncio.timeout(remaining):
                    await waker.wait()
            except TimeoutError:
                pass

    def __repr__(self) -> str:
        return f"<SandboxClock now={self.now():.3f}s wall={isoformat_ms(self.wall())}>"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _default_start(loop: asyncio.AbstractEventLoop | None, elapsed: float) -> dt.datetime:
    """`DEFAULT_START` on virtual time; else the datetime that makes sandbox time ``elapsed`` read as now."""
    if isinstance(loop, VirtualTimeLoop):
        return DEFAULT_START
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=elapsed)
