"""IcechunkStore: the Zarr v3 store that reads and writes through a session.

The store adapts zarr's ``Store`` interface to what it needs from a session, spelled
out as the :class:`StoreBackend` protocol, so this module knows nothing of sessions,
repositories or files.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

from .batching import CoalescePolicy
from .errors import ReadOnlyError
from .keys import validate_store_key

__all__ = ["IcechunkStore", "StoreBackend", "Window"]

Window = Callable[[int], tuple[int, int]]  # a value's length -> the byte range wanted

READ_ONLY_MESSAGE = "store was opened in read-only mode and does not support writing"


class StoreBackend(Protocol):
    """What :class:`IcechunkStore` needs from a session.

    Reads take a store key and an optional :data:`Window`; absent keys read as None,
    malformed ones raise ``InvalidInputError``.
    """

    @property
    def read_only(self) -> bool: ...

    @property
    def is_move_only(self) -> bool:
        """True for sessions that can only move nodes (their store is read-only)."""
        ...

    @property
    def coalescing(self) -> CoalescePolicy:
        """The default limits of batched reads."""
        ...

    def check_writable(self) -> None: ...

    def read(self, key: str, window: Window | None = None) -> bytes | None: ...

    async def read_async(self, key: str, window: Window | None = None) -> bytes | None: ...

    def read_many(
        self,
        requests: Iterable[tuple[str, Window | None]],
        *,
        coalescing: CoalescePolicy | None = None,
    ) -> list[bytes | None]: ...

    async def read_many_async(
        self,
        requests: Iterable[tuple[str, Window | None]],
        *,
        coalescing: CoalescePolicy | None = None,
    ) -> list[bytes | None]: ...

    def size_of(self, key: str) -> int | None: ...

    def write(self, key: str, data: bytes) -> None: ...

    async def write_async(self, key: str, data: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def list_keys(self, prefix: str = "") -> Iterator[str]: ...

    def list_dir(self, prefix: str) -> Iterator[str]: ...


def _window(byte_range: ByteRequest | None) -> Window | None:
    """Turn a Zarr byte request into a function of the value's length."""
    if byte_range is None:
        return None
    if isinstance(byte_range, RangeByteRequest):
        start, end = byte_range.start, byte_range.end
        return lambda n: (min(start, n), max(min(start, n), min(end, n)))
    if isinstance(byte_range, OffsetByteRequest):
        offset = byte_range.offset
        return lambda n: (min(offset, n), n)
    if isinstance(byte_range, SuffixByteRequest):
        suffix = byte_range.suffix
        return lambda n: (max(0, n - suffix), n)
    raise TypeError(f"Unexpected byte_range, got {byte_range!r}")


def _requests(
    key_ranges: Iterable[tuple[str, ByteRequest | None]],
) -> list[tuple[str, Window | None]]:
    out = []
    for key, byte_range in key_ranges:
        validate_store_key(key)
        out.append((key, _window(byte_range)))
    return out


def _buffers(values: list[bytes | None], prototype: BufferPrototype) -> list[Buffer | None]:
    from_bytes = prototype.buffer.from_bytes
    return [None if data is None else from_bytes(data) for data in values]


def _indexed(
    key: str, values: list[bytes | None], prototype: BufferPrototype
) -> list[tuple[int, Buffer | None]]:
    if any(data is None for data in values):
        raise BaseExceptionGroup("chunk read failed", [FileNotFoundError(key)])
    return list(enumerate(_buffers(values, prototype)))


class IcechunkStore(Store):
    """A Zarr store over an icechunk_fast :class:`~icechunk_fast.Session`.

    Obtain it as ``session.store``. Reads see the session's snapshot plus its
    uncommitted changes; writes go into the session until ``session.commit``.
    Only keys that Zarr v3 produces are accepted: ``zarr.json`` documents and chunk
    keys of arrays that exist. A malformed key raises ``InvalidInputError``; a key
    that is well formed but absent reads as ``None``.
    """

    supports_writes: bool = True
    supports_deletes: bool = True
    supports_listing: bool = True
    supports_partial_writes = False
    supports_consolidated_metadata = False

    def __init__(self, session: StoreBackend, *, read_only: bool | None = None) -> None:
        if read_only is None:
            read_only = session.read_only
        elif not read_only and session.read_only:
            raise ReadOnlyError("cannot make a writable store over a read-only session")
        super().__init__(read_only=read_only)
        self._session = session

    @property
    def session(self) -> Any:
        """The session this store reads and writes through."""
        return self._session

    @property
    def read_only(self) -> bool:
        # a rearrange session commits, but only moves nodes: its store is read-only
        return self._read_only or self._session.read_only or self._session.is_move_only

    def __repr__(self) -> str:
        return f"IcechunkStore({self._session!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IcechunkStore) and other._session == self._session

    def __hash__(self) -> int:
        return hash(id(self._session))

    def __reduce__(self) -> tuple[Any, ...]:
        return (IcechunkStore, (self._session,), {"_read_only": self._read_only})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._read_only = state["_read_only"]

    def with_read_only(self, read_only: bool = False) -> IcechunkStore:
        return IcechunkStore(self._session, read_only=read_only)

    # -- reads --------------------------------------------------------------------
    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        validate_store_key(key)
        data = await self._session.read_async(key, _window(byte_range))
        if data is None:
            return None
        return (prototype or default_buffer_prototype()).buffer.from_bytes(data)

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        validate_store_key(key)
        data = self._session.read(key, None if byte_range is None else _window(byte_range))
        if data is None:
            return None
        return (prototype or default_buffer_prototype()).buffer.from_bytes(data)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """Many (partial) values in one batch: ranges of one storage object that lie
        close together are fetched with one request (see :meth:`Session.read_many`)."""
        values = await self._session.read_many_async(_requests(key_ranges))
        return _buffers(values, prototype)

    def get_partial_values_sync(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """Blocking twin of :meth:`get_partial_values` (no event loop involved)."""
        return _buffers(self._session.read_many(_requests(key_ranges)), prototype)

    async def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
    ) -> AsyncGenerator[tuple[str, Buffer | None], None]:
        """zarr's bulk read (``Store._get_many``, zarr 3.1 and later), as one batch."""
        batch = list(requests)
        values = await self._session.read_many_async(_requests((k, r) for k, _, r in batch))
        for (key, prototype, _), data in zip(batch, values, strict=True):
            yield key, None if data is None else prototype.buffer.from_bytes(data)

    async def get_ranges(
        self,
        key: str,
        byte_ranges: Sequence[ByteRequest | None],
        *,
        prototype: BufferPrototype,
        max_concurrency: int = 10,
        max_gap_bytes: int = 1 << 20,
        max_coalesced_bytes: int = 16 << 20,
    ) -> AsyncIterator[Sequence[tuple[int, Buffer | None]]]:
        """Many byte ranges of one value (zarr 3.4's sharding reads), as one batch.

        The gap and size limits are the caller's; concurrency is bounded by the
        storage's own request limit, so ``max_concurrency`` is not used. Yields one
        sequence of ``(index, buffer)`` for all ranges. An absent key raises a
        ``BaseExceptionGroup`` holding a ``FileNotFoundError``, as zarr's does.
        """
        policy = self._ranges_policy(max_gap_bytes, max_coalesced_bytes)
        requests = _requests((key, r) for r in byte_ranges)
        values = await self._session.read_many_async(requests, coalescing=policy)
        yield _indexed(key, values, prototype)

    def get_ranges_sync(
        self,
        key: str,
        byte_ranges: Sequence[ByteRequest | None],
        *,
        prototype: BufferPrototype,
        max_gap_bytes: int = 1 << 20,
        max_coalesced_bytes: int = 16 << 20,
    ) -> Sequence[tuple[int, Buffer | None]]:
        """Blocking twin of :meth:`get_ranges` (zarr 3.4's synchronous sharding reads)."""
        policy = self._ranges_policy(max_gap_bytes, max_coalesced_bytes)
        requests = _requests((key, r) for r in byte_ranges)
        return _indexed(key, self._session.read_many(requests, coalescing=policy), prototype)

    def _ranges_policy(self, max_gap_bytes: int, max_coalesced_bytes: int) -> CoalescePolicy:
        split = self._session.coalescing.split_bytes
        return CoalescePolicy(max_gap_bytes, max_coalesced_bytes, split)

    async def exists(self, key: str) -> bool:
        validate_store_key(key)
        return self._session.size_of(key) is not None

    async def getsize(self, key: str) -> int:
        validate_store_key(key)
        size = self._session.size_of(key)
        if size is None:
            raise FileNotFoundError(key)
        return size

    # -- writes -------------------------------------------------------------------
    def _check_store_writable(self) -> None:
        if self.read_only:
            # zarr's message and a ValueError, as zarr's stores raise; also ReadOnlyError
            raise ReadOnlyError(READ_ONLY_MESSAGE, kind="read-only-store")
        self._session.check_writable()

    async def set(self, key: str, value: Buffer) -> None:
        self._check_store_writable()
        validate_store_key(key)
        if not isinstance(value, Buffer):
            raise TypeError(f"IcechunkStore.set(): expected a zarr Buffer, got {type(value)}")
        await self._session.write_async(key, value.to_bytes())

    def set_sync(self, key: str, value: Buffer) -> None:
        self._check_store_writable()
        validate_store_key(key)
        self._session.write(key, value.to_bytes())

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        if not await self.exists(key):
            await self.set(key, value)

    async def delete(self, key: str) -> None:
        self._check_store_writable()
        validate_store_key(key)
        self._session.delete(key)

    def delete_sync(self, key: str) -> None:
        self._check_store_writable()
        validate_store_key(key)
        self._session.delete(key)

    async def delete_dir(self, prefix: str) -> None:
        self._check_store_writable()
        validate_store_key(prefix.rstrip("/"), allow_empty=True)
        self._session.delete_prefix(prefix)

    async def clear(self) -> None:
        await self.delete_dir("")

    async def set_partial_values(
        self, key_start_values: Iterable[tuple[str, int, bytes | bytearray | memoryview]]
    ) -> None:
        raise NotImplementedError("IcechunkStore does not support partial writes")

    # -- listing ------------------------------------------------------------------
    async def list(self) -> AsyncIterator[str]:
        for key in self._session.list_keys(""):
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in self._session.list_keys(prefix):
            yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        for name in self._session.list_dir(prefix):
            yield name

    async def getsize_prefix(self, prefix: str) -> int:
        """Total size of the values under directory ``prefix`` (``"c"`` excludes ``"cc/0"``)."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        session = self._session
        return sum(session.size_of(key) or 0 for key in session.list_keys(prefix))

    async def is_empty(self, prefix: str) -> bool:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        for _ in self._session.list_keys(prefix):
            return False
        return True
