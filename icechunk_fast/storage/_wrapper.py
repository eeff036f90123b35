"""A storage that hands every call to another one: the base of storage wrappers.

Subclasses override only what they add to (see :mod:`._counting`), the way zarr's
``LoggingStore`` builds on its ``WrapperStore``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from ._base import Storage

__all__ = ["WrapperStorage"]


class WrapperStorage(Storage):
    """Delegates every :class:`Storage` call to ``inner``.

    The capability flags are the inner storage's, read when the wrapper is made. A
    wrapper shows and compares as its inner storage.
    """

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.supports_conditional_writes = inner.supports_conditional_writes
        self.read_only = inner.read_only
        self.is_remote = inner.is_remote

    def __repr__(self) -> str:
        return repr(self.inner)

    def __eq__(self, other: object) -> bool:
        inner = other.inner if isinstance(other, WrapperStorage) else other
        return bool(self.inner == inner)

    def __hash__(self) -> int:
        return hash(self.inner)

    # -- reads ------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def get_range(self, key: str, start: int, end: int | None) -> bytes:
        return self.inner.get_range(key, start, end)

    def get_ranges(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        return self.inner.get_ranges(requests)

    def get_with_version(self, key: str) -> tuple[bytes, str]:
        return self.inner.get_with_version(key)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        return self.inner.list(prefix)

    # -- writes -----------------------------------------------------------------
    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.inner.put_if_absent(key, data)

    def put_if_match(self, key: str, data: bytes, expected_version: str | None) -> str | None:
        return self.inner.put_if_match(key, data, expected_version)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        self.inner.delete_many(keys)

    # -- async twins --------------------------------------------------------------
    async def get_async(self, key: str) -> bytes:
        return await self.inner.get_async(key)

    async def get_range_async(self, key: str, start: int, end: int | None) -> bytes:
        return await self.inner.get_range_async(key, start, end)

    async def get_ranges_async(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        return await self.inner.get_ranges_async(requests)

    async def put_async(self, key: str, data: bytes) -> None:
        await self.inner.put_async(key, data)
