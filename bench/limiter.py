"""Cost per acquire, our limiter against raw aiolimiter: with nobody waiting, and with 1,000 to 100,000 waiters.

**Nobody waits** (an unpaced acquire: the slot is always free): one task awaits ``acquire()`` in a loop on a
real event loop, ``Quota(10**9, 1.0)`` with J = 0 against ``AsyncLimiter(10**9, 1)``; the two alternate in
rounds of 1,000 calls and the best round of each counts (the machine is shared: the best round is the one
least disturbed).

**Queued:**
Both limiters space grants alike (one every millisecond: ``Quota(1001, 1.0)`` with J = 0 for ours,
``AsyncLimiter(1, 0.001)`` for aiolimiter) and run on a :class:`~assetpay_async.testing.VirtualTimeLoop`,
(ticking 1 ns per clock reading, see :class:`TickingVirtualTimeLoop`), so the clock jumps from grant to
grant and the wall time measured is the CPU cost of queueing, waking and
granting, task creation included. Each size is measured ``--repeat`` times; the best run counts.

Run: ``nox -s bench -- limiter`` or ``python -m bench limiter [--sizes 1000,10000] [--repeat 3]
[--rounds 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiolimiter

from assetpay_async._limiting import LimiterKey, MemoryLimiter, RateLimiter
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.testing import VirtualTimeLoop

from ._common import stamp

T = TypeVar("T")

QUOTA = Quota(1001, 1.0)
KEY = LimiterKey("bench", RouteGroup.CANCEL_ITEM)

Factory = Callable[[], RateLimiter | aiolimiter.AsyncLimiter]


def ours() -> MemoryLimiter:
    return MemoryLimiter(KEY, QUOTA, latency_margin=0.0)


def theirs() -> aiolimiter.AsyncLimiter:
    return aiolimiter.AsyncLimiter(1, 0.001)


class TickingVirtualTimeLoop(VirtualTimeLoop):
    """Virtual time that also moves one nanosecond at every reading, as a real monotonic clock does.

    On a clock that stands still between loop iterations aiolimiter spins forever: a float residue of its
    bucket level (2.2e-16) makes it re-arm its timer for the very instant it is woken at. A real clock
    moves on between readings, and so does this one; our limiter does not need it, but both run on it.
    """

    def time(self) -> float:
        self.advance(1e-9)
        return super().time()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=TickingVirtualTimeLoop) as runner:
        return runner.run(coro)


async def _drain(factory: Factory, waiters: int) -> tuple[float, float]:
    """Queue ``waiters`` calls at once and wait for every grant; return (wall seconds, virtual span)."""
    limiter = factory()
    loop = asyncio.get_running_loop()
    start_wall = time.perf_counter()
    await asyncio.gather(*(limiter.acquire() for _ in range(waiters)))
    wall = time.perf_counter() - start_wall
    return wall, loop.time()


def measure(factory: Factory, waiters: int, repeat: int) -> float:
    """Best microseconds per acquire over ``repeat`` runs; checks the pacing was kept."""
    interval = 0.001
    best = float("inf")
    for _ in range(repeat):
        wall, span = _run(_drain(factory, waiters))
        # Every grant after the first is one interval later (aiolimiter may land a hair late).
        assert span >= (waiters - 1) * interval * (1 - 1e-6), (span, waiters)
        best = min(best, wall)
    return best / waiters * 1e6


async def _unpaced_round(limiter: RateLimiter | aiolimiter.AsyncLimiter, calls: int) -> float:
    acquire = limiter.acquire
    started = time.perf_counter()
    for _ in range(calls):
        await acquire()
    return (time.perf_counter() - started) / calls * 1e6


async def unpaced(rounds: int, calls: int = 1000) -> tuple[float, float]:
    """Best microseconds per acquire when nobody waits: (ours, aiolimiter's), alternating rounds."""
    mine = MemoryLimiter(KEY, Quota(10**9, 1.0), latency_margin=0.0)
    theirs = aiolimiter.AsyncLimiter(10**9, 1.0)
    best_mine = best_theirs = float("inf")
    for _ in range(rounds):
        best_mine = min(best_mine, await _unpaced_round(mine, calls))
        best_theirs = min(best_theirs, await _unpaced_round(theirs, calls))
    assert mine.stats().granted == rounds * calls  # every call was granted
    return best_mine, best_theirs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench limiter", description=__doc__)
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="comma-separated waiter counts"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the best counts")
    parser.add_argument("--rounds", type=int, default=200, help="rounds of the unpaced comparison")
    parser.add_argument("--smoke", action="store_true", help="1,000 waiters, one run")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.repeat, args.rounds = "1000", 1, 3
    sizes = [int(s) for s in args.sizes.split(",")]

    print(stamp("limiter", argv, extra=f"aiolimiter {getattr(aiolimiter, '__version__', '?')}"))
    print()
    ours_us, theirs_us = asyncio.run(unpaced(args.rounds))
    print(
        "| nobody waits | assetpay-async (us per acquire) | aiolimiter (us per acquire) | ratio |"
    )
    print("|---|---:|---:|---:|")
    print(f"| an unpaced acquire | {ours_us:.2f} | {theirs_us:.2f} | {ours_us / theirs_us:.2f} |")
    print()
    print(
        "| waiters | assetpay-async (us per acquire) | aiolimiter `AsyncLimiter(1, g)` (us per acquire) "
        "| ratio ours / aiolimiter |"
    )
    print("|--------:|---:|---:|---:|")
    for size in sizes:
        repeat = args.repeat if size < 100_000 else max(1, args.repeat - 1)
        our_cost = measure(ours, size, repeat)
        their_cost = measure(theirs, size, repeat)
        print(f"| {size:,} | {our_cost:.1f} | {their_cost:.1f} | {our_cost / their_cost:.2f} |")
    return 0
