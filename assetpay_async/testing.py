"""Test helpers for code that uses assetpay-async: an event loop whose clock is virtual.

`VirtualTimeLoop` is a selector event loop whose `time` only moves when the loop would otherwise
sleep: it then jumps straight to the next timer. Real sockets keep working (the sandbox and the SDK talk over
loopback inside one loop), so a minute of rate-limited traffic runs in milliseconds and the same schedule comes
out every run. Do not use it with I/O served by another process: time would jump while that process works.

Example:
    >>> from assetpay_async.testing import run_virtual
    >>> async def main() -> float:
    ...     import asyncio
    ...     loop = asyncio.get_running_loop()
    ...     start = loop.time()
    ...     await asyncio.sleep(3600)
    ...     return loop.time() - start
    >>> run_virtual(main())
    3600.0
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")


class _WarpSelector(selectors.DefaultSelector):
    """A selector that, instead of blocking for ``timeout`` seconds, advances the loop's virtual clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None:
            # Nothing scheduled: only real I/O can wake us; block for it.
            return super().select(None)
        if self.loop is None:
            raise RuntimeError("_WarpSelector is used only by VirtualTimeLoop")
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps over idle time. Its clock starts at 0.0."""

    def __init__(self) -> None:
        selector = _WarpSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Join the default executor's threads, timed by the wall clock, not the virtual one.

        ``asyncio.Runner`` (Python 3.12+) gives this 300 s: on the virtual clock that timer would fire as soon as
        the loop idles, before a thread still at work could finish.
        """
        del timeout  # a thread's work is real: no virtual deadline applies to it
        await super().shutdown_default_executor()

    def advance(self, seconds: float) -> None:
        """Move the clock forward (the loop does this itself whenever it would sleep)."""
        if seconds > 0:
            moved = self._virtual_now + seconds
            # Never stand still: a step below the float resolution would spin the loop forever.
            self._virtual_now = (
                moved if moved > self._virtual_now else math.nextafter(moved, math.inf)
            )


def run_virtual(coro: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Like `asyncio.run`, on a `VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop, debug=debug) as runner:
        return runner.run(coro)
