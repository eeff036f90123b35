"""The async read path never blocks the event loop.

A storage wrapper delays every GET (``asyncio.sleep`` in the async calls, ``time.sleep``
in the blocking ones) and records how many GETs are in flight at once. If a coroutine
made a blocking call, the event loop would serve one request at a time and the peak
would stay at 1; awaited misses overlap, so concurrent reads of N different objects
reach a peak of N. The checks count overlap, not time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

import icechunk_fast as ic
from icechunk_fast import IcechunkStore
from icechunk_fast.storage import Storage, WrapperStorage

DELAY = 0.05


class DelayedStorage(WrapperStorage):
    """Delegates to ``inner``; every GET waits ``DELAY`` and is counted while in flight."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.delaying = False
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.blocking_gets = 0
        self.async_gets = 0

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _blocking(self) -> None:
        if self.delaying:
            self.blocking_gets += 1
            self._enter()
            time.sleep(DELAY)
            self._leave()

    async def _waiting(self) -> None:
        if self.delaying:
            self.async_gets += 1
            self._enter()
            await asyncio.sleep(DELAY)
            self._leave()

    def get(self, key: str) -> bytes:
        self._blocking()
        return self.inner.get(key)

    def get_range(self, key: str, start: int, end: int | None) -> bytes:
        self._blocking()
        return self.inner.get_range(key, start, end)

    def get_ranges(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        self._blocking()
        return self.inner.get_ranges(requests)

    async def get_async(self, key: str) -> bytes:
        await self._waiting()
        return self.inner.get(key)

    async def get_range_async(self, key: str, start: int, end: int | None) -> bytes:
        await self._waiting()
        return self.inner.get_range(key, start, end)

    async def get_ranges_async(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        await self._waiting()
        return self.inner.get_ranges(requests)


def _write(storage: Storage, arrays: int, chunks: int, config: ic.RepositoryConfig) -> None:
    """``arrays`` arrays of ``chunks`` native (not inline, not packed) chunks each."""
    repo = ic.Repository.create(storage, config)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    for i in range(arrays):
        arr = root.create_array(
            f"a{i}", shape=(chunks * 64,), chunks=(64,), dtype="f8", compressors=None
        )
        arr[:] = np.arange(chunks * 64, dtype="f8") + i
    session.commit("data")


CONFIG = ic.RepositoryConfig(
    inline_chunk_threshold_bytes=0,
    chunk_pack_target_bytes=0,  # one object per chunk: each read is its own GET
)
NO_PRELOAD = ic.RepositoryConfig(
    manifest=ic.ManifestConfig(preload=ic.ManifestPreloadConfig(max_total_refs=0))
)


def _delayed_store(arrays: int, chunks: int) -> tuple[DelayedStorage, IcechunkStore]:
    """A read-only store over freshly written data whose manifests are not loaded yet
    (no preloading), and its storage, delaying from now on."""
    storage = DelayedStorage(ic.in_memory_storage())
    _write(storage, arrays=arrays, chunks=chunks, config=CONFIG)
    repo = ic.Repository.open(storage, NO_PRELOAD)
    store = repo.readonly_session(branch="main").store
    storage.delaying = True
    return storage, store


@pytest.mark.parametrize("chunk_cache", [False, True], ids=["no-chunk-cache", "chunk-cache"])
async def test_concurrent_chunk_misses_overlap(chunk_cache: bool) -> None:
    storage = DelayedStorage(ic.in_memory_storage())
    _write(storage, arrays=1, chunks=20, config=CONFIG)
    caching = ic.CachingConfig(num_bytes_chunks=1 << 20) if chunk_cache else None
    repo = ic.Repository.open(storage, ic.RepositoryConfig(caching=caching))
    store = repo.readonly_session(branch="main").store
    proto = default_buffer_prototype()
    assert await store.get("a0/c/0", proto) is not None  # the manifest is now cached
    storage.delaying = True
    values = await asyncio.gather(*(store.get(f"a0/c/{i}", proto) for i in range(20)))
    assert all(v is not None for v in values)
    assert storage.blocking_gets == 0
    # every miss in flight at once (with the cache, chunk 0 is a hit)
    assert storage.peak == (19 if chunk_cache else 20)
    assert storage.async_gets == storage.peak
    # read again: with the cache on, nothing goes to storage
    storage.async_gets = 0
    again = await asyncio.gather(*(store.get(f"a0/c/{i}", proto) for i in range(20)))
    assert [v.to_bytes() for v in again] == [v.to_bytes() for v in values]
    assert storage.async_gets == (0 if chunk_cache else 20)


async def test_concurrent_manifest_misses_overlap() -> None:
    storage, store = _delayed_store(arrays=10, chunks=1)
    proto = default_buffer_prototype()
    values = await asyncio.gather(*(store.get(f"a{i}/c/0", proto) for i in range(10)))
    assert [np.frombuffer(v.to_bytes(), "f8")[0] for v in values] == list(range(10))
    assert storage.blocking_gets == 0
    assert storage.peak == 10  # ten manifest GETs at once, then ten chunk GETs at once
    assert storage.async_gets == 20


async def test_concurrent_readers_of_one_manifest_share_its_fetch() -> None:
    storage, store = _delayed_store(arrays=1, chunks=8)
    proto = default_buffer_prototype()
    values = await asyncio.gather(*(store.get(f"a0/c/{i}", proto) for i in range(8)))
    assert all(v is not None for v in values)
    assert storage.blocking_gets == 0
    assert storage.async_gets == 1 + 8  # one manifest GET, shared; eight chunk GETs


async def test_batched_async_reads_fetch_manifests_concurrently() -> None:
    storage, store = _delayed_store(arrays=6, chunks=2)
    proto = default_buffer_prototype()
    keys = [(f"a{i}/c/{j}", None) for i in range(6) for j in range(2)]
    values = await store.get_partial_values(proto, keys)
    assert all(v is not None for v in values)
    assert storage.blocking_gets == 0
    assert storage.peak == 6  # the six manifests at once; the chunks in one batch


async def test_a_cancelled_first_reader_does_not_fail_the_others() -> None:
    storage, store = _delayed_store(arrays=1, chunks=4)
    proto = default_buffer_prototype()
    first = asyncio.ensure_future(store.get("a0/c/0", proto))  # fetches the manifest
    await asyncio.sleep(DELAY / 5)  # its manifest GET is in flight
    others = [asyncio.ensure_future(store.get(f"a0/c/{i}", proto)) for i in range(1, 4)]
    await asyncio.sleep(DELAY / 5)  # the others wait for that GET
    first.cancel()
    values = await asyncio.gather(*others)
    assert all(v is not None for v in values)
    with pytest.raises(asyncio.CancelledError):
        await first
    # one reader took over the fetch; one manifest GET for the three, plus three chunks
    assert storage.async_gets == 1 + 1 + 3


async def test_a_failed_shared_fetch_reaches_every_reader() -> None:
    storage, store = _delayed_store(arrays=1, chunks=4)
    for key in list(storage.inner.list("manifests/")):
        storage.inner.put(key, b"not a manifest")
    proto = default_buffer_prototype()
    results = await asyncio.gather(
        *(store.get(f"a0/c/{i}", proto) for i in range(4)), return_exceptions=True
    )
    assert all(isinstance(r, ic.FormatError) for r in results)
    assert storage.async_gets == 1  # one fetch, its failure shared
