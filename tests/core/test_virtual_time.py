"""`assetpay_async.testing`: the virtual clock jumps over idle time, never over real work in another thread."""

from __future__ import annotations

import asyncio
import threading

from assetpay_async.testing import VirtualTimeLoop, run_virtual


def test_the_clock_jumps_over_a_sleep() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        return loop.time() - start

    assert run_virtual(main()) == 3600.0


def test_closing_waits_for_the_default_executor_in_real_time() -> None:
    """Regression: ``asyncio.Runner`` joins the executor's threads under a 300 s timeout; on the virtual clock
    that timeout fired at once (a RuntimeWarning, an error under -W error on Python 3.13)."""
    release = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: None)
        # The executor's thread is busy when the runner closes: joining it takes real time.
        loop.run_in_executor(None, release.wait, 5.0)
        loop.call_later(3600, release.set)  # a timer that would otherwise pull the clock past 300 s

    threading.Timer(0.01, release.set).start()
    run_virtual(main())
    assert release.is_set()


def test_a_virtual_loop_starts_at_zero() -> None:
    loop = VirtualTimeLoop()
    try:
        assert loop.time() == 0.0
    finally:
        loop.close()
