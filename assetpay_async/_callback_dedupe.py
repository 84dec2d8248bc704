"""Remembering which callbacks were handled: a tiny key-value protocol and a bounded in-memory default."""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from typing import Final, Protocol, runtime_checkable

__all__ = ["DedupeStore", "MemoryDedupeStore"]

DEFAULT_MAX_ENTRIES: Final = 100_000


@runtime_checkable
class DedupeStore(Protocol):
    """Where the callback handler remembers deliveries it handled (and approval decisions it gave).

    Four operations on string keys and values, each entry expiring after ``ttl`` seconds. They map one to one
    onto Redis (``SET NX EX``, ``GET``, ``SET EX``, ``DEL``) or a SQL table with a unique key, so several
    processes behind one callback URL can share one store. ``add`` must be atomic: of two concurrent
    ``add`` calls on one key, exactly one returns True.
    """

    async def add(self, key: str, value: str, ttl: float) -> bool:
        """Store ``value`` under ``key`` unless the key is present; True when stored."""
        ...

    async def get(self, key: str) -> str | None:
        """The value under ``key``, or None when absent or expired."""
        ...

    async def set(self, key: str, value: str, ttl: float) -> None:
        """Store ``value`` under ``key``, replacing any value."""
        ...

    async def delete(self, key: str) -> None:
        """Forget ``key`` (no error when absent)."""
        ...


class MemoryDedupeStore:
    """A per-process `DedupeStore`: entries expire after their TTL, the oldest go first when full.

    Use it with a single process; several processes need a shared store. An entry evicted early only means a
    redelivery is handled again, so size ``max_entries`` above the deliveries expected within the TTL.

    Args:
        max_entries: how many keys to keep at most.
        clock: seconds from a monotonic source; injectable for tests.
    """

    __slots__ = ("_clock", "_entries", "_max_entries")

    def __init__(
        self, *, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError("max_entries must be a positive int")
        self._max_entries = max_entries
        self._clock = clock
        # key -> (expires at, value), in order of last write: the front is the oldest.
        self._entries: collections.OrderedDict[str, tuple[float, str]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<MemoryDedupeStore entries={len(self._entries)} max_entries={self._max_entries}>"

    async def add(self, key: str, value: str, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        self._write(key, value, ttl)
        return True

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._write(key, value, ttl)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    def _live(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        return value

    def _write(self, key: str, value: str, ttl: float) -> None:
        if not math.isfinite(ttl) or ttl <= 0:
            raise ValueError("ttl must be a positive, finite number of seconds")
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        self._prune()

    def _prune(self) -> None:
        now = self._clock()
        # Drop expired entries at the front (cheap, amortised), then the oldest ones beyond the bound.
        while self._entries:
            oldest_key, (expires_at, _) = next(iter(self._entries.items()))
            if expires_at > now and len(self._entries) <= self._max_entries:
                break
            del self._entries[oldest_key]
