"""The in-memory limiter's per-event-loop pieces: a loop's queue of waiters, and the hand-over between loops.

A limiter used by one event loop only grants an idle call without taking its lock (the loop is *solo*). Before
a second loop touches the schedule it takes solo away and waits until the solo loop has run one callback: the
lock-free grant is synchronous code, so once that loop runs anything else none of its grants is half done.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import threading

from ._pacing import Pacing, grant_base

__all__ = [
    "EXPIRED",
    "LoopQueue",
    "LoopWaker",
    "Queued",
    "handshake",
    "may_go_solo",
    "queue_for",
]

EXPIRED = -1
"""The result a waiter's future gets when its ``max_wait`` ran out (grants are numbered from 1)."""

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


Queued = tuple[
    LoopQueue,
    asyncio.Future[int],
    float,
    asyncio.TimerHandle | None,
    asyncio.AbstractEventLoop | None,
]
"""A queued call: its queue, future, start time, expiry timer, and the solo loop to hand over from."""


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
        with contextlib.suppress(RuntimeError):  # our loop closed: nobody waits for the answer
            loop.call_soon_threadsafe(_resolve, done)

    try:
        other.call_soon_threadsafe(answer)
    except RuntimeError:  # closed: none of its grants can be under way
        return
    while not done.done() and other.is_running():
        await asyncio.wait((done,), timeout=_POLL)


class LoopWaker:
    """The waking half of [`MemoryLimiter`][assetpay_async._limiting.MemoryLimiter]: timers, wake-ups, expiry.

    Every method runs with the limiter's lock held, except ``_wake`` and ``_expire`` (timer callbacks, which
    take it).
    """

    __slots__ = ("_granted", "_tat", "_undo_tat")

    _lock: threading.Lock
    _queues: dict[asyncio.AbstractEventLoop, LoopQueue]
    _pacing: Pacing
    _seq: int
    _tat: float
    _undo_tat: float | None
    _granted: int

    def _now(self) -> float:
        raise NotImplementedError

    def _head_due(self) -> float:
        raise NotImplementedError

    def _level(self, t: float) -> float:
        raise NotImplementedError

    def _grant(self, base: float) -> int:
        raise NotImplementedError

    def _undo_grant(self, seq: int, queue: LoopQueue) -> None:
        """Give back a grant whose task was cancelled before it could use it, if it was the latest one."""
        if seq != self._seq or self._undo_tat is None:
            return  # a later grant was built on it: leave it spent, which only errs on the slow side
        self._tat, self._undo_tat = self._undo_tat, None
        self._granted -= 1
        if queue.queued:
            self._arm(queue)
        self._poke_others(queue)

    def _forget_one(self, queue: LoopQueue) -> None:
        """A queued waiter left (cancelled or timed out); its future stays in the deque, marked done."""
        queue.queued -= 1
        if queue.queued == 0:
            self._arm(queue)

    def _poke_others(self, queue: LoopQueue) -> None:
        """Let the other loops' queues look again: a grant may be due earlier than their timers think."""
        for other in self._queues.values():
            if other is not queue and other.queued and not other.loop.is_closed():
                try:
                    other.loop.call_soon_threadsafe(self._wake, other, self._now())
                except RuntimeError:  # closed in the meantime: its waiters are gone with it
                    continue

    def _arm(self, queue: LoopQueue) -> None:
        """Make sure the queue's timer fires no later than its head is due (or drop it when nobody waits).

        Runs in the queue's own loop only (``call_later`` is not thread-safe).
        """
        if queue.queued == 0:
            queue.waiters.clear()
            queue.drop_timer()
            return
        due = self._head_due()
        if due == math.inf:  # a hand-over is under way: its end arms the queues again
            queue.drop_timer()
            return
        if queue.timer is not None:
            if queue.timer_when <= due:
                return  # fires early enough; _wake re-arms for the rest
            queue.timer.cancel()
        now = self._now()
        planned = max(due, now)
        queue.timer = queue.loop.call_later(planned - now, self._wake, queue, planned)
        queue.timer_when = planned

    def _wake(self, queue: LoopQueue, planned: float) -> None:
        """Grant the head of the queue if it is due, then re-arm. Runs in the queue's loop.

        Args:
            queue: the queue to serve.
            planned: when this wake-up was meant to happen (a timer's time, or when another loop asked).
        """
        with self._lock:
            self._wake_locked(queue, planned)

    def _wake_locked(self, queue: LoopQueue, planned: float) -> None:
        queue.drop_timer()
        now = self._now()
        waiters = queue.waiters
        while waiters:
            head = waiters[0]
            if head.done():
                waiters.popleft()
                continue
            due = self._head_due()
            if now < due:
                break
            waiters.popleft()
            queue.queued -= 1
            # Only the loop's own lateness (now - planned) may keep the grid: a grant that was due before
            # this wake-up was even planned (one handed back) starts from the wake-up.
            interval = self._pacing.interval / self._level(due)
            head.set_result(self._grant(grant_base(min(now, max(due, planned)), now, interval)))
        self._arm(queue)

    def _expire(self, queue: LoopQueue, fut: asyncio.Future[int]) -> None:
        with self._lock:
            if fut.done():
                return
            self._wake_locked(queue, self._now())  # a grant due at this very moment goes out first
            if not fut.done():
                fut.set_result(EXPIRED)
                self._forget_one(queue)
