"""Typed calls of the Redis limiter's two Lua scripts: the GCRA schedule and the roll of live processes.

Each call is one round trip and has a deadline (`Deadline`): a Redis that hangs (stopped, swapping, a network
that drops packets) fails the call with [`RedisTimeoutError`][redis.exceptions.TimeoutError], whatever the
client's own socket timeouts (a client passed in by the caller may have none). The deadline follows the
measured round trips (a high percentile times a factor, at least a floor, at most the configured
``timeout``), so a Redis 150 ms away is not taken for a dead one. A call past its deadline is not cancelled
at once: it goes on in the background for up to `LINGER_TIMEOUTS` more timeouts, so its connection (which
redis-py would close if the reply were abandoned) finishes its reply and goes back to the pool, and a slow
first connection is not made again and again. A late reply is dropped (a slot it reserved is wasted, never
granted: fail closed) but its round trip is measured.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.resources
import math
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs
import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "ANY_WAIT",
    "FIRST_CALL_TIMEOUTS",
    "GCRA_SCRIPT",
    "LINGER_TIMEOUTS",
    "PEERS_SCRIPT",
    "Deadline",
    "GcraReply",
    "GcraScript",
    "PeersScript",
    "us",
]


def _lua(name: str) -> str:
    return importlib.resources.files("assetpay_async").joinpath(name).read_text(encoding="utf-8")


GCRA_SCRIPT: Final = _lua("_gcra.lua")
"""The Lua source of the GCRA (see ``_gcra.lua`` for its arguments and replies)."""
PEERS_SCRIPT: Final = _lua("_peers.lua")
"""The Lua source of the roll of live processes (see ``_peers.lua``)."""

ANY_WAIT: Final = -1
_NO_RESERVATION: Final = -2
_NOTHING_TO_CONFIRM: Final = -1


def us(seconds: float) -> int:
    """Whole microseconds, rounded up (a limiter errs on the slow side), ignoring float noise."""
    return math.ceil(round(seconds * 1_000_000, 3))


LINGER_TIMEOUTS: Final = 5
"""A call past its deadline goes on in the background for this many ``timeout`` before it is cancelled."""
FIRST_CALL_TIMEOUTS: Final = 3
"""Until a round trip was measured, a call may take this many ``timeout``: a first call makes the connection
and loads the script (up to six round trips), which a far Redis must not turn into an outage."""
_SAMPLES: Final = 64
_PERCENTILE: Final = 0.99


class Deadline:
    """The deadline of one Redis call, from the round trips measured (pure but for `call`).

    Args:
        cap: the configured ``timeout``: the deadline never exceeds it (None: no deadline at all).
        floor: the shortest deadline (scheduling noise on a loaded host is not an outage).
        factor: the deadline is this many times the high percentile of the recent round trips.
    """

    __slots__ = ("_cap", "_factor", "_floor", "_lingering", "_samples")

    def __init__(self, cap: float | None, *, floor: float = 0.25, factor: float = 4.0) -> None:
        if cap is not None and not (cap > 0 and math.isfinite(cap)):
            raise ValueError("timeout must be None or a positive number of seconds")
        self._cap = cap
        self._floor = min(floor, cap) if cap is not None else floor
        self._factor = factor
        self._samples: collections.deque[float] = collections.deque(maxlen=_SAMPLES)
        self._lingering: set[asyncio.Task[Any]] = set()

    def observe(self, seconds: float) -> None:
        """A call took ``seconds`` from send to reply (late replies included)."""
        if seconds >= 0 and math.isfinite(seconds):
            self._samples.append(seconds)

    def current(self) -> float | None:
        """Seconds the next call may take (`FIRST_CALL_TIMEOUTS` times the cap before any measure)."""
        if self._cap is None:
            return None
        if not self._samples:
            return FIRST_CALL_TIMEOUTS * self._cap
        ordered = sorted(self._samples)
        high = ordered[min(len(ordered) - 1, math.ceil(_PERCENTILE * len(ordered)) - 1)]
        return min(self._cap, max(self._floor, self._factor * high))

    async def call(self, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable`` within `current` seconds; past that, it lingers (see the module)."""
        loop = asyncio.get_running_loop()
        limit = self.current()
        task = loop.create_task(self._measured(awaitable, loop.time()))
        try:
            async with asyncio.timeout(limit):
                return await asyncio.shield(task)
        except TimeoutError:
            self._lingering.add(task)
            task.add_done_callback(self._forget)
            raise RedisTimeoutError(f"Redis did not answer within {limit:g}s") from None
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def _measured(self, awaitable: Awaitable[Any], start: float) -> Any:
        loop = asyncio.get_running_loop()
        linger = None if self._cap is None else LINGER_TIMEOUTS * self._cap
        async with asyncio.timeout(linger):
            result = await awaitable
        self.observe(loop.time() - start)
        return result

    def cancel(self) -> list[asyncio.Task[Any]]:
        """Cancel the calls still lingering (the limiter closes); return them, to await."""
        tasks = [task for task in self._lingering if not task.get_loop().is_closed()]
        for task in tasks:
            task.cancel()
        return tasks

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._lingering.discard(task)
        if not task.cancelled():
            task.exception()  # a late failure was already counted as a timeout


class _Script:
    """One registered Lua script, called with a deadline and an optional test clock."""

    __slots__ = ("_clock", "_deadline", "_script")

    def __init__(
        self,
        redis: aioredis.Redis | aioredis.RedisCluster,
        source: str,
        *,
        deadline: Deadline,
        clock: Callable[[], float] | None,
    ) -> None:
        self._script = redis.register_script(source)
        self._deadline = deadline
        self._clock = clock

    def now_arg(self) -> str:
        return "" if self._clock is None else str(us(self._clock()))

    async def run(self, key: str, *args: str | int) -> Any:
        return await self._deadline.call(self._script(keys=[key], args=list(args)))


@attrs.frozen
class GcraReply:
    """What one ``acquire`` call of the script answered. Times are Redis microseconds.

    Attributes:
        confirmed: whether the slot asked about is still good (None: none was asked about).
        reserved: whether a new slot was reserved.
        wait_us: how long until that slot is due (also when it was not reserved: the wait that was refused).
        slot_us: when the slot is due.
        tat_us: the key's theoretical arrival time after this call (a refund needs it).
        generation: the server's identity (its ``run_id``; "" where unknown): a new one means a restart
            or a failover, so the schedule may have lost recent grants.
    """

    confirmed: bool | None
    reserved: bool
    wait_us: int
    slot_us: int
    tat_us: int
    generation: str = ""


class GcraScript:
    """Typed calls of the GCRA Lua script on one Redis connection pool (one round trip each).

    Args:
        redis: the client to run it on.
        interval: the emission interval g in seconds (one grant every g).
        burst: how many grants may go out at once after an idle spell (1: none).
        clock: seconds to pass as the script's "now" instead of Redis ``TIME`` (tests only).
        timeout: seconds after which a call fails with ``redis.exceptions.TimeoutError`` (None: never).
        deadline: the deadline shared with the limiter's other calls (default: one from ``timeout``).
        max_pause: the longest pause an ``acquire`` believes: one stored further ahead is cut back (None:
            every pause is believed).
    """

    __slots__ = ("_burst_arg", "_interval_us", "_max_pause_args", "_script")

    def __init__(
        self,
        redis: aioredis.Redis | aioredis.RedisCluster,
        *,
        interval: float,
        burst: int = 1,
        clock: Callable[[], float] | None = None,
        timeout: float | None = None,
        max_pause: float | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        if not (interval > 0 and math.isfinite(interval)) or burst < 1:
            raise ValueError("interval must be a positive number of seconds and burst >= 1")
        deadline = Deadline(timeout) if deadline is None else deadline
        self._script = _Script(redis, GCRA_SCRIPT, deadline=deadline, clock=clock)
        self._interval_us = us(interval)
        self._burst_arg = str(burst)
        self._max_pause_args: tuple[int, ...] = () if max_pause is None else (us(max_pause),)

    @property
    def interval_us(self) -> int:
        return self._interval_us

    async def acquire(
        self,
        key: str,
        *,
        confirm_slot_us: int | None = None,
        reserve_within_us: int | None = ANY_WAIT,
    ) -> GcraReply:
        """Confirm a reserved slot and/or reserve the next one.

        Args:
            key: the limiter key.
            confirm_slot_us: a slot reserved earlier, to check before using it.
            reserve_within_us: reserve only if the slot is due within this many microseconds (``-1``: any
                wait); None reserves nothing.
        """
        within = _NO_RESERVATION if reserve_within_us is None else max(reserve_within_us, ANY_WAIT)
        confirm = _NOTHING_TO_CONFIRM if confirm_slot_us is None else confirm_slot_us
        reply = await self._call(key, "acquire", confirm, within, *self._max_pause_args)
        confirmed, reserved, wait_us, slot_us, tat_us = (int(value) for value in reply[:5])
        generation = reply[5] if len(reply) > 5 else b""
        return GcraReply(
            confirmed=None if confirmed < 0 else bool(confirmed),
            reserved=bool(reserved),
            wait_us=wait_us,
            slot_us=slot_us,
            tat_us=tat_us,
            generation=generation.decode() if isinstance(generation, bytes) else str(generation),
        )

    async def pause(self, key: str, penalty: float) -> int:
        """Push the key's next slot to at least now + ``penalty`` seconds; return the pause left in us."""
        return int(await self._call(key, "pause", us(max(0.0, penalty))))

    async def refund(self, key: str, tat_us: int) -> bool:
        """Give back the slot whose reservation left ``tat_us``, if nobody reserved after it."""
        return bool(await self._call(key, "refund", tat_us))

    async def _call(self, key: str, op: str, *args: int) -> Any:
        script = self._script
        return await script.run(
            key, op, self._interval_us, self._burst_arg, script.now_arg(), *args
        )


class PeersScript:
    """Typed calls of the roll of live processes (``_peers.lua``): announce, withdraw, count.

    Args:
        redis: the client to run it on.
        lifetime: seconds an announcement stays live unless renewed.
        clock: seconds to pass as the script's "now" instead of Redis ``TIME`` (tests only).
        timeout: seconds after which a call fails with ``redis.exceptions.TimeoutError`` (None: never).
        deadline: the deadline shared with the limiter's other calls (default: one from ``timeout``).
    """

    __slots__ = ("_lifetime_us", "_script")

    def __init__(
        self,
        redis: aioredis.Redis | aioredis.RedisCluster,
        *,
        lifetime: float,
        clock: Callable[[], float] | None = None,
        timeout: float | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        if not (lifetime > 0 and math.isfinite(lifetime)):
            raise ValueError("lifetime must be a positive number of seconds")
        deadline = Deadline(timeout) if deadline is None else deadline
        self._script = _Script(redis, PEERS_SCRIPT, deadline=deadline, clock=clock)
        self._lifetime_us = us(lifetime)

    async def beat(self, key: str, member: str) -> int:
        """Announce (or renew) ``member``; return how many members are live, ``member`` included."""
        return int(await self._call(key, "beat", member))

    async def leave(self, key: str, member: str) -> int:
        """Withdraw ``member``; return how many members are live without it."""
        return int(await self._call(key, "leave", member))

    async def _call(self, key: str, op: str, member: str) -> Any:
        script = self._script
        return await script.run(key, op, member, self._lifetime_us, script.now_arg())
