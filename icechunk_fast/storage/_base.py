"""The object-store interface every backend implements.

A storage is a flat namespace of keys (``"snapshots/0ABC..."``) holding immutable
bytes, plus a few mutable keys updated only by compare-and-swap. It knows nothing of
Zarr. Keys are produced by icechunk_fast itself, never by users; backends still check
them so that a bug can never turn into a path outside the repository.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence

from ..errors import ErrorKind, InvalidInputError, NotFoundError, ReadOnlyError

__all__ = ["ObjectNotFoundError", "Storage", "validate_key"]

_SEG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}"
_KEY = re.compile(rf"{_SEG}(?:/{_SEG})*")
MAX_KEY_LENGTH = 1024


class ObjectNotFoundError(NotFoundError):
    """No object under that key in the storage."""

    default_kind = ErrorKind.OBJECT_NOT_FOUND


def validate_key(key: object) -> str:
    """Return ``key`` if it is a safe storage key, else raise ``InvalidInputError``.

    Safe means: ``/``-separated segments of letters, digits, ``_ . -``, none empty, none
    starting with a dot (so no ``..``, no hidden temp-file names), not absolute, no NUL,
    at most 1024 characters.
    """
    if not isinstance(key, str):
        raise InvalidInputError(
            f"storage key must be a str, got {type(key).__name__}", kind="invalid-key"
        )
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(f"storage key of invalid length: {key[:80]!r}", kind="invalid-key")
    if _KEY.fullmatch(key) is None:
        raise InvalidInputError(f"unsafe storage key {key[:200]!r}", kind="invalid-key")
    return key


def validate_prefix(prefix: str) -> str:
    """Prefixes for listing: empty, or a valid key optionally ending in ``/``."""
    if prefix:
        validate_key(prefix.rstrip("/"))
    return prefix


class Storage(ABC):
    """Abstract object storage.

    Capability flags are class attributes: callers ask, they do not guess.
    ``supports_conditional_writes`` means :meth:`put_if_absent` and :meth:`put_if_match`
    are atomic against other writers, including other processes and machines.
    """

    supports_conditional_writes: bool = True
    read_only: bool = False
    # remote storages (object stores, HTTP) get a disk cache tier by default
    is_remote: bool = False

    # -- reads ------------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> bytes:
        """Whole object. Raises :class:`ObjectNotFoundError` if absent."""

    @abstractmethod
    def get_range(self, key: str, start: int, end: int | None) -> bytes:
        """Bytes ``[start, end)`` of an object (``end=None``: to its end)."""

    def get_ranges(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        """Bytes ``[start, end)`` of each ``(key, start, end)``, in order.

        One call for a batch of ranged reads, so that backends can run them at once
        (object stores) or pick the cheapest way (local files). The default reads them
        one after another. Raises like :meth:`get_range` for the first failing one.
        """
        return [self.get_range(key, start, end) for key, start, end in requests]

    @abstractmethod
    def get_with_version(self, key: str) -> tuple[bytes, str]:
        """Object and an opaque version token to pass to :meth:`put_if_match`."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes of an object."""

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFoundError:
            return False
        return True

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix`` (full keys, any order)."""

    # -- writes -----------------------------------------------------------------
    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write an object; readers see either nothing or all of it."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if it does not exist; False if it already did."""

    @abstractmethod
    def put_if_match(self, key: str, data: bytes, expected_version: str | None) -> str | None:
        """Compare-and-swap.

        Replace ``key`` only if its current version is ``expected_version`` (``None``:
        only if it does not exist). Returns the new version token, or ``None`` if the
        precondition failed and nothing was written.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; a missing key is not an error."""

    def delete_many(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.delete(key)

    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(f"{self!r} is read-only", kind="read-only-storage")

    # -- async twins: backends with native async I/O override these ----------------
    async def get_async(self, key: str) -> bytes:
        return await asyncio.to_thread(self.get, key)

    async def get_range_async(self, key: str, start: int, end: int | None) -> bytes:
        return await asyncio.to_thread(self.get_range, key, start, end)

    async def get_ranges_async(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        return await asyncio.to_thread(self.get_ranges, requests)

    async def put_async(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self.put, key, data)
