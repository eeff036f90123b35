"""Per-repository I/O statistics, counted by a thin wrapper around the storage."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ._base import Storage
from ._wrapper import WrapperStorage

__all__ = ["CountingStorage", "RepositoryStats"]


@dataclass(slots=True)
class RepositoryStats:
    """Counters since the repository object was made (or since ``reset_stats``).

    Attributes
    ----------
    requests, bytes_read, bytes_written, seconds
        Storage requests made, payload bytes moved each way, and wall time spent in
        them (summed over threads).
    memory_hits, memory_misses
        Lookups of immutable objects (snapshots, manifests) in the memory cache.
    disk_hits, disk_misses, disk_corrupt
        The same for the disk cache; ``disk_corrupt`` counts entries that failed their
        checksum and were fetched again.
    """

    requests: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    memory_hits: int = 0
    memory_misses: int = 0
    disk_hits: int = 0
    disk_misses: int = 0
    disk_corrupt: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class CountingStorage(WrapperStorage):
    """Delegates every call to ``inner`` and counts it in ``stats``."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.stats = RepositoryStats()
        self._lock = threading.Lock()

    def count(self, started: float, read: int = 0, written: int = 0) -> None:
        elapsed = time.perf_counter() - started
        with self._lock:
            s = self.stats
            s.requests += 1
            s.bytes_read += read
            s.bytes_written += written
            s.seconds += elapsed

    def count_batch(self, started: float, requests: int, read: int) -> None:
        """A batch of ``requests`` run at once: its wall time is counted once."""
        elapsed = time.perf_counter() - started
        with self._lock:
            s = self.stats
            s.requests += requests
            s.bytes_read += read
            s.seconds += elapsed

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def reset(self) -> None:
        with self._lock:
            self.stats = RepositoryStats()

    # -- delegation, counted ----------------------------------------------------------
    def get(self, key: str) -> bytes:
        t = time.perf_counter()
        data = self.inner.get(key)
        self.count(t, read=len(data))
        return data

    def get_range(self, key: str, start: int, end: int | None) -> bytes:
        # the single-chunk read path: counted inline, one call fewer than count()
        t = time.perf_counter()
        data = self.inner.get_range(key, start, end)
        elapsed = time.perf_counter() - t
        with self._lock:
            s = self.stats
            s.requests += 1
            s.bytes_read += len(data)
            s.seconds += elapsed
        return data

    def get_ranges(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        t = time.perf_counter()
        parts = self.inner.get_ranges(requests)
        self.count_batch(t, len(requests), sum(map(len, parts)))
        return parts

    def get_with_version(self, key: str) -> tuple[bytes, str]:
        t = time.perf_counter()
        data, version = self.inner.get_with_version(key)
        self.count(t, read=len(data))
        return data, version

    def size(self, key: str) -> int:
        t = time.perf_counter()
        size = self.inner.size(key)
        self.count(t)
        return size

    def exists(self, key: str) -> bool:
        t = time.perf_counter()
        found = self.inner.exists(key)
        self.count(t)
        return found

    def list(self, prefix: str = "") -> Iterator[str]:
        t = time.perf_counter()
        keys = list(self.inner.list(prefix))
        self.count(t)
        return iter(keys)

    def put(self, key: str, data: bytes) -> None:
        t = time.perf_counter()
        self.inner.put(key, data)
        self.count(t, written=len(data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        t = time.perf_counter()
        done = self.inner.put_if_absent(key, data)
        self.count(t, written=len(data))
        return done

    def put_if_match(self, key: str, data: bytes, expected_version: str | None) -> str | None:
        t = time.perf_counter()
        version = self.inner.put_if_match(key, data, expected_version)
        self.count(t, written=len(data))
        return version

    def delete(self, key: str) -> None:
        t = time.perf_counter()
        self.inner.delete(key)
        self.count(t)

    def delete_many(self, keys: Iterable[str]) -> None:
        t = time.perf_counter()
        self.inner.delete_many(keys)
        self.count(t)

    async def get_async(self, key: str) -> bytes:
        t = time.perf_counter()
        data = await self.inner.get_async(key)
        self.count(t, read=len(data))
        return data

    async def get_range_async(self, key: str, start: int, end: int | None) -> bytes:
        t = time.perf_counter()
        data = await self.inner.get_range_async(key, start, end)
        self.count(t, read=len(data))
        return data

    async def get_ranges_async(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        t = time.perf_counter()
        parts = await self.inner.get_ranges_async(requests)
        self.count_batch(t, len(requests), sum(map(len, parts)))
        return parts

    async def put_async(self, key: str, data: bytes) -> None:
        t = time.perf_counter()
        await self.inner.put_async(key, data)
        self.count(t, written=len(data))
