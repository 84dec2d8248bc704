"""MemoryDedupeStore: add-if-absent, TTL on an injected clock, the size bound."""

from __future__ import annotations

import pytest

from assetpay_async.callbacks import DedupeStore, MemoryDedupeStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_add_only_once(clock: FakeClock) -> None:
    store = MemoryDedupeStore(clock=clock)

    assert await store.add("k", "a", 10)
    assert not await store.add("k", "b", 10)
    assert await store.get("k") == "a"


async def test_entries_expire_after_their_ttl(clock: FakeClock) -> None:
    store = MemoryDedupeStore(clock=clock)
    await store.add("k", "a", 10)

    clock.now += 9.999
    assert await store.get("k") == "a"
    clock.now += 0.001
    assert await store.get("k") is None
    assert await store.add("k", "b", 10)


async def test_set_replaces_value_and_ttl(clock: FakeClock) -> None:
    store = MemoryDedupeStore(clock=clock)
    await store.add("k", "processing", 1)

    await store.set("k", "done", 100)
    clock.now += 50

    assert await store.get("k") == "done"


async def test_delete_forgets(clock: FakeClock) -> None:
    store = MemoryDedupeStore(clock=clock)
    await store.add("k", "a", 10)

    await store.delete("k")
    await store.delete("never-there")

    assert await store.get("k") is None
    assert len(store) == 0


async def test_bound_evicts_the_oldest_write(clock: FakeClock) -> None:
    store = MemoryDedupeStore(max_entries=3, clock=clock)
    for key in "abc":
        await store.add(key, "v", 100)
    await store.set("a", "v2", 100)  # rewriting "a" makes "b" the oldest

    await store.add("d", "v", 100)

    assert len(store) == 3
    assert await store.get("b") is None
    assert [await store.get(k) for k in "acd"] == ["v2", "v", "v"]


async def test_expired_entries_are_pruned_on_write(clock: FakeClock) -> None:
    store = MemoryDedupeStore(clock=clock)
    for n in range(100):
        await store.add(f"k{n}", "v", 5)
    clock.now += 5

    await store.add("fresh", "v", 5)

    assert len(store) == 1


def test_is_a_dedupe_store_and_repr_shows_state() -> None:
    store = MemoryDedupeStore(max_entries=7)

    assert isinstance(store, DedupeStore)
    assert repr(store) == "<MemoryDedupeStore entries=0 max_entries=7>"


@pytest.mark.parametrize("max_entries", [0, -1, True])
def test_bad_bound_is_refused(max_entries: int) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryDedupeStore(max_entries=max_entries)


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan")])
async def test_bad_ttl_is_refused(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await MemoryDedupeStore().add("k", "v", ttl)
