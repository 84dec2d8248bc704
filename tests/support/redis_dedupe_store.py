"""A DedupeStore on Redis, for callback handlers in several processes (shown in docs/callbacks.md)."""

from __future__ import annotations

from redis.asyncio import Redis


class RedisDedupeStore:
    """Keys live under ``prefix`` and expire on their own; ``add`` is one atomic ``SET NX PX``."""

    def __init__(self, redis: Redis, *, prefix: str = "assetpay:callbacks:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def add(self, key: str, value: str, ttl: float) -> bool:
        stored = await self._redis.set(self._prefix + key, value, nx=True, px=_ms(ttl))
        return bool(stored)

    async def get(self, key: str) -> str | None:
        value: bytes | str | None = await self._redis.get(self._prefix + key)
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._redis.set(self._prefix + key, value, px=_ms(ttl))

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
