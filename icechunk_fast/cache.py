"""Caches for immutable objects: a memory LRU bounded in bytes, and a disk tier."""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["ByteLRU", "DiskTier", "default_disk_cache_dir"]

V = TypeVar("V")


class ByteLRU(Generic[V]):
    """Least-recently-used cache whose capacity counts bytes, not entries.

    Only objects that never change once written (snapshots, manifests) go here, so
    entries are never invalidated, only evicted.
    """

    def __init__(self, capacity_bytes: int, sizeof: Callable[[V], int]) -> None:
        self.capacity = capacity_bytes
        self._sizeof = sizeof
        self._items: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()
        # lookups since creation or reset_counts(): read by the repository's statistics
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> V | None:
        """The value of ``key`` (now the most recently used), or None; counted."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def reset_counts(self) -> None:
        with self._lock:
            self.hits = self.misses = 0

    def peek(self, key: str) -> V | None:
        """The value of ``key`` without touching its recency, or None."""
        item = self._items.get(key)
        return None if item is None else item[0]

    def put(self, key: str, value: V) -> None:
        size = self._sizeof(value)
        if size > self.capacity:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._used -= old[1]
            self._items[key] = (value, size)
            self._used += size
            while self._used > self.capacity:
                _, (_, evicted) = self._items.popitem(last=False)
                self._used -= evicted

    def __len__(self) -> int:
        return len(self._items)


class DiskTier:
    """Raw bytes of immutable objects in a ``diskcache`` directory on local disk.

    Shared safely by the threads and processes of one node (diskcache uses SQLite).
    Keep the directory off network filesystems (NFS, Lustre, GPFS): SQLite locking
    is unreliable there. Entries are the exact stored objects, so a reader checks them
    like any other read (checksums) and a damaged entry is dropped and refetched.
    """

    def __init__(self, directory: str, size_limit: int, namespace: str) -> None:
        self.directory = directory
        self.size_limit = size_limit
        self.namespace = namespace
        self._cache: Any = None
        self._pid = -1
        self._lock = threading.Lock()

    def _open(self) -> Any:
        pid = os.getpid()
        if self._cache is None or self._pid != pid:  # a forked child opens its own
            with self._lock:
                if self._cache is None or self._pid != pid:
                    import diskcache  # only repositories with a disk tier pay for it

                    os.makedirs(self.directory, exist_ok=True)
                    self._cache = diskcache.Cache(
                        self.directory,
                        size_limit=self.size_limit,
                        eviction_policy="least-recently-used",
                    )
                    self._pid = pid
        return self._cache

    def _key(self, key: str) -> str:
        return f"{self.namespace}\n{key}"

    def get(self, key: str) -> bytes | None:
        value = self._open().get(self._key(key))
        return bytes(value) if value is not None else None

    def put(self, key: str, data: bytes) -> None:
        self._open().set(self._key(key), data)

    def delete(self, key: str) -> None:
        self._open().delete(self._key(key))

    def __getstate__(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "size_limit": self.size_limit,
            "namespace": self.namespace,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"], state["size_limit"], state["namespace"])  # type: ignore[misc]


def default_disk_cache_dir() -> str:
    """A per-user directory under the local temporary directory."""
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"icechunk_fast-cache-{user}")
