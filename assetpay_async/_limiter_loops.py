"""The in-memory limiter's per-event-loop pieces: a loop's queue of waiters, and the hand-over between loops.

A limiter used by one event loop only grants an idle call without taking its lock (the loop is *solo*). Before
a second loop touches the schedule it takes solo away and waits until the solo loop has run one callback: the
lock-free grant is synchronous code, so once that loop runs anything else none of its grants is half done.
"""

from __future__ import annotations

import asyncio
import collections
import math

__all__ = ["LoopQueue", "handshake", "may_go_solo", "queue_for"]

_POLL = 0.005
"""Seconds between looks at whether the other loop still runs, while waiting for its answer."""


class LoopQueue:
    """The waiters of one event loop, and that loop's timer. Touched only under the limiter's lock."""

    __slots__ = ("loop", "queued", "timer", "timer_when", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiters: collections.deque[asyncio.Future[int]] = collections.deque()
        self.queued = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_when = math.inf

    def drop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.timer_when = math.inf

    @property
    def idle(self) -> bool:
        """Nobody waits and no timer is armed (or the loop has finished)."""
        return self.loop.is_closed() or (self.queued == 0 and self.timer is None)


def queue_for(
    queues: dict[asyncio.AbstractEventLoop, LoopQueue], loop: asyncio.AbstractEventLoop
) -> LoopQueue:
    """``loop``'s queue, made on first use; making one forgets finished loops and idle queues."""
    queue = queues.get(loop)
    if queue is None:
        for other in list(queues.values()):
            if other.idle:  # recreated on its next call
                other.drop_timer()
                other.waiters.clear()
                del queues[other.loop]
        queue = queues[loop] = LoopQueue(loop)
    return queue


def may_go_solo(users: list[asyncio.AbstractEventLoop], loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` may grant without the lock: every other loop that used the limiter has closed.

    ``users`` (the loops that used the limiter, in order) gets ``loop`` added and the closed ones dropped.
    Two live loops never take turns at being solo: each turn would cost a hand-over.
    """
    users[:] = [user for user in users if user is not loop and not user.is_closed()]
    users.append(loop)
    return len(users) == 1


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


async def handshake(other: asyncio.AbstractEventLoop) -> None:
    """Return once ``other`` (another thread's loop) has run a callback, or has stopped or closed."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def answer() -> None:  # runs in the other loop
        try:
            loop.call_soon_threadsafe(_resolve, done)
        except RuntimeError:  # our loop closed meanwhile: nobody waits for the answer
            pass

    try:
        other.call_soon_threadsafe(answer)
    except RuntimeError:  # closed: none of its grants can be under way
        return
    while not done.done() and other.is_running():
        await asyncio.wait((done,), timeout=_POLL)
