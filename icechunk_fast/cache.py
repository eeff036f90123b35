"""An in-memory LRU for immutable objects, bounded in bytes, safe across threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ByteLRU"]

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
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

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

    @property
    def used_bytes(self) -> int:
        return self._used
