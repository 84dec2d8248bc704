"""The DedupeStore contract, run against the in-memory store and the Redis recipe of the docs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import fakeredis
import pytest

from assetpay_async.callbacks import DedupeStore, MemoryDedupeStore
from tests.support.redis_dedupe_store import RedisDedupeStore


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[DedupeStore]:
    if request.param == "memory":
        yield MemoryDedupeStore()
        return
    redis = fakeredis.FakeAsyncRedis()
    try:
        yield RedisDedupeStore(redis)
    finally:
        await redis.aclose()


async def test_is_a_dedupe_store(store: DedupeStore) -> None:
    assert isinstance(store, DedupeStore)


async def test_add_get_set_delete(store: DedupeStore) -> None:
    assert await store.add("k", "processing", 60)
    assert not await store.add("k", "other", 60)
    assert await store.get("k") == "processing"

    await store.set("k", "done", 60)
    assert await store.get("k") == "done"

    await store.delete("k")
    await store.delete("k")
    assert await store.get("k") is None
    assert await store.get("never") is None


async def test_concurrent_adds_have_one_winner(store: DedupeStore) -> None:
    results = await asyncio.gather(*(store.add("race", str(n), 60) for n in range(20)))

    assert results.count(True) == 1
