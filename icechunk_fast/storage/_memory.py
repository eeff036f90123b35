"""In-memory storage: a dict behind a lock. For tests, examples and scratch work."""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from ._base import ObjectNotFoundError, Storage, validate_key, validate_prefix

__all__ = ["InMemoryStorage", "in_memory_storage"]

_REGISTRY: weakref.WeakValueDictionary[str, InMemoryStorage] = weakref.WeakValueDictionary()


class InMemoryStorage(Storage):
    """Objects held in a dict of this process.

    Pickling within the process hands back the same storage (so a repository pickled to
    a thread pool sees one set of objects); in another process it becomes a copy of the
    contents at pickling time.
    """

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, int]] = {}
        self._lock = threading.Lock()
        self._versions = itertools.count(1)
        self._id = os.urandom(8).hex()  # unique across processes, for unpickling
        _REGISTRY[self._id] = self

    def __repr__(self) -> str:
        return f"InMemoryStorage(id={self._id!r}, objects={len(self._objects)})"

    def __reduce__(self) -> tuple[Any, ...]:
        with self._lock:
            snapshot = {k: v for k, (v, _) in self._objects.items()}
        return (_restore, (self._id, snapshot))

    def _lookup(self, key: str) -> tuple[bytes, int]:
        try:
            return self._objects[validate_key(key)]
        except KeyError:
            raise ObjectNotFoundError(f"object {key!r} not found") from None

    def get(self, key: str) -> bytes:
        return self._lookup(key)[0]

    def get_range(self, key: str, start: int, end: int | None) -> bytes:
        return self._lookup(key)[0][start:end]

    def get_with_version(self, key: str) -> tuple[bytes, str]:
        data, version = self._lookup(key)
        return data, str(version)

    def size(self, key: str) -> int:
        return len(self._lookup(key)[0])

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        with self._lock:
            keys = [k for k in self._objects if k.startswith(prefix)]
        return iter(keys)

    def put(self, key: str, data: bytes) -> None:
        validate_key(key)
        self._check_writable()
        with self._lock:
            self._objects[key] = (bytes(data), next(self._versions))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        validate_key(key)
        self._check_writable()
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = (bytes(data), next(self._versions))
            return True

    def put_if_match(self, key: str, data: bytes, expected_version: str | None) -> str | None:
        validate_key(key)
        self._check_writable()
        with self._lock:
            current = self._objects.get(key)
            if (current is None) != (expected_version is None):
                return None
            if current is not None and str(current[1]) != expected_version:
                return None
            version = next(self._versions)
            self._objects[key] = (bytes(data), version)
            return str(version)

    def delete(self, key: str) -> None:
        validate_key(key)
        self._check_writable()
        with self._lock:
            self._objects.pop(key, None)

    # Memory I/O never blocks: skip the thread hop of the default async twins.
    async def get_async(self, key: str) -> bytes:
        return self.get(key)

    async def get_range_async(self, key: str, start: int, end: int | None) -> bytes:
        return self.get_range(key, start, end)

    async def get_ranges_async(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        return self.get_ranges(requests)

    async def put_async(self, key: str, data: bytes) -> None:
        self.put(key, data)


def _restore(storage_id: str, objects: dict[str, bytes]) -> InMemoryStorage:
    live = _REGISTRY.get(storage_id)
    if live is not None:
        return live
    fresh = InMemoryStorage()
    for key, value in objects.items():
        fresh.put(key, value)
    return fresh


def in_memory_storage() -> InMemoryStorage:
    """A new, empty in-memory storage."""
    return InMemoryStorage()
