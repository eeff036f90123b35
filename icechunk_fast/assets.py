"""The object layer: typed, cached I/O of every object of one repository.

Sits between sessions and repositories above and the storage below. Everything a
repository stores goes through an :class:`AssetManager`: the repo info (read fresh,
swapped by compare-and-swap), snapshots, manifests and transaction logs (immutable:
cached by id, in memory and optionally on local disk), and chunk bytes (through the
:class:`~icechunk_fast.reads.ChunkReader` and its caches). Caches are filled here and
only here, and every request is counted in one :class:`RepositoryStats`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .batching import CoalescePolicy
from .cache import ByteLRU, DiskTier
from .config import RepositoryConfig
from .errors import FormatError, RepositoryNotFoundError, SnapshotNotFoundError
from .format.ids import new_snapshot_id
from .format.manifest import ManifestData, manifest_key
from .format.repo_info import REPO_INFO_KEY, RepoInfo
from .format.snapshot import Snapshot, snapshot_key
from .format.transaction_log import TransactionLog, transaction_log_key
from .reads import ChunkReader
from .storage import CountingStorage, ObjectNotFoundError, RepositoryStats, Storage

__all__ = ["AssetManager"]

T = TypeVar("T")


class _FetchAbandoned(Exception):
    """The reader fetching a manifest for others was cancelled; they fetch it again."""


class AssetManager:
    """Typed, cached reads and writes of one repository's objects.

    Parameters
    ----------
    storage
        Where the repository lives (wrapped here in a counting storage).
    config
        The repository's effective config: cache sizes, disk tier, compression level,
        read coalescing.
    """

    def __init__(self, storage: Storage, config: RepositoryConfig) -> None:
        self.user_storage = storage
        self.storage = CountingStorage(storage)
        self.config = config
        self.compression_level = config.compression_level
        self._info_cache: tuple[str, RepoInfo] | None = None
        self._manifests: ByteLRU[ManifestData] = ByteLRU(
            config.manifest_cache_bytes, lambda m: m.nbytes()
        )
        self._snapshots: ByteLRU[Snapshot] = ByteLRU(256 << 20, lambda s: 512 * len(s.nodes) + 512)
        chunks = ByteLRU[bytes](config.chunk_cache_bytes, len) if config.chunk_cache_bytes else None
        self._disk: DiskTier | None = None
        self._disk_metadata = disk_chunks = False
        tier = config.disk_tier_settings(remote=storage.is_remote)
        if tier is not None:
            directory, size, self._disk_metadata, disk_chunks = tier
            self._disk = DiskTier(directory, size, namespace=repr(storage))
        self.reader = ChunkReader(
            self.storage,
            chunks,
            self._disk if disk_chunks else None,
            config.read_coalescing(remote=storage.is_remote),
        )
        # without chunk caches a chunk read is one ranged GET: bind it directly
        self.read_chunk = self.reader.read if self.reader.caches else self.storage.get_range
        self.read_chunks = self.reader.read_many
        self.read_chunks_async = self.reader.read_many_async
        # manifest fetches in flight, so concurrent readers of one array share a GET
        self._inflight: dict[tuple[int, str], asyncio.Future[ManifestData]] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        # caches and counters are per process: an unpickled copy starts empty
        return (AssetManager, (self.user_storage, self.config))

    def __repr__(self) -> str:
        return f"<AssetManager {self.user_storage!r}>"

    # -- statistics ------------------------------------------------------------------
    def _memory_caches(self) -> list[ByteLRU[Any]]:
        lrus: list[ByteLRU[Any]] = [self._manifests, self._snapshots]
        if self.reader.memory is not None:
            lrus.append(self.reader.memory)
        return lrus

    def stats(self) -> RepositoryStats:
        """A copy of the counters: requests from the storage wrapper, memory-cache
        lookups from the caches themselves (which count them under their own lock)."""
        stats = dataclasses.replace(self.storage.stats)
        lrus = self._memory_caches()
        stats.memory_hits = sum(lru.hits for lru in lrus)
        stats.memory_misses = sum(lru.misses for lru in lrus)
        return stats

    def reset_stats(self) -> None:
        self.storage.reset()
        for lru in self._memory_caches():
            lru.reset_counts()

    @property
    def coalescing(self) -> CoalescePolicy:
        """How batched chunk reads are coalesced and split by default."""
        return self.reader.policy

    # -- the repo info (mutable: never cached by content, only its parse) --------------
    def read_repo_info(self) -> RepoInfo:
        """The current repo info: always read from storage, decoded only if it changed.

        The returned object may be shared: do not mutate it (``update_repo_info`` copies).
        """
        try:
            data, version = self.storage.get_with_version(REPO_INFO_KEY)
        except ObjectNotFoundError:
            raise RepositoryNotFoundError(
                f"the repository in {self.user_storage!r} is gone", kind="repository-not-found"
            ) from None
        return self._decoded_info(data, version)

    def _decoded_info(self, data: bytes, version: str) -> RepoInfo:
        # Same version means same bytes, so reusing the parse is never stale; it saves
        # the decode of a long history on every commit.
        cached = self._info_cache
        if cached is not None and cached[0] == version:
            return cached[1]
        info = RepoInfo.decode(data)
        self._info_cache = (version, info)
        return info

    def update_repo_info(self, mutate: Callable[[RepoInfo], T]) -> T:
        """Apply ``mutate`` to a fresh copy of the repo info and swap it in.

        ``mutate`` may raise to abort. When another writer got in first, the repo info
        is read again and ``mutate`` re-applied, so updates that do not conflict (another
        branch moved, a tag was added) never surface as errors.
        """
        delay = 0.001
        while True:
            data, version = self.storage.get_with_version(REPO_INFO_KEY)
            info = self._decoded_info(data, version).copy()
            result = mutate(info)
            encoded = info.encode(self.compression_level)
            new_version = self.storage.put_if_match(REPO_INFO_KEY, encoded, version)
            if new_version is not None:
                self._info_cache = (new_version, info)
                return result
            time.sleep(delay * random.random())
            delay = min(delay * 2, 0.1)

    def has_snapshot(self, snapshot_id: str) -> bool:
        """Whether ``snapshot_id`` is part of the history (fresh read of the repo info)."""
        return snapshot_id in self.read_repo_info().snapshots

    # -- immutable objects ------------------------------------------------------------
    def _disk_for(self, chunk: bool) -> DiskTier | None:
        return self._disk if (self._disk_chunks if chunk else self._disk_metadata) else None

    @property
    def _disk_chunks(self) -> bool:
        return self.reader.disk is not None

    def _from_disk(self, key: str, decode: Callable[[bytes], T]) -> T | None:
        """A sound copy from the disk tier (which must be on), or None."""
        disk = self._disk
        assert disk is not None
        cached = disk.get(key)
        if cached is not None:
            try:
                value = decode(cached)
            except FormatError:
                disk.delete(key)  # damaged on local disk: fetch it again
                self.storage.bump("disk_corrupt")
            else:
                self.storage.bump("disk_hits")
                return value
        self.storage.bump("disk_misses")
        return None

    def _fetch(self, key: str, decode: Callable[[bytes], T]) -> T:
        """Decode an immutable object, from the disk tier if it holds a sound copy."""
        disk = self._disk_for(chunk=False)
        if disk is not None:
            value = self._from_disk(key, decode)
            if value is not None:
                return value
        data = self.storage.get(key)
        value = decode(data)
        if disk is not None:
            disk.put(key, data)
        return value

    async def _fetch_async(self, key: str, decode: Callable[[bytes], T]) -> T:
        """:meth:`_fetch` that awaits the storage and keeps disk I/O off the loop."""
        disk = self._disk_for(chunk=False)
        if disk is not None:
            value = await asyncio.to_thread(self._from_disk, key, decode)
            if value is not None:
                return value
        data = await self.storage.get_async(key)
        value = decode(data)
        if disk is not None:
            await asyncio.to_thread(disk.put, key, data)
        return value

    def load_snapshot(self, snapshot_id: str) -> Snapshot:
        """The snapshot ``snapshot_id``.

        Raises
        ------
        SnapshotNotFoundError
            No such snapshot object.
        """
        cached = self._snapshots.get(snapshot_id)
        if cached is not None:
            return cached
        try:
            snapshot = self._fetch(
                snapshot_key(snapshot_id), lambda d: Snapshot.decode(d, snapshot_id)
            )
        except ObjectNotFoundError:
            raise SnapshotNotFoundError(
                f"snapshot {snapshot_id} not found", kind="snapshot-not-found"
            ) from None
        self._snapshots.put(snapshot_id, snapshot)
        return snapshot

    def manifest_is_cached(self, manifest_id: str) -> bool:
        """True if the manifest is in the memory cache (not counted as a lookup)."""
        return self._manifests.peek(manifest_id) is not None

    def load_manifest(self, manifest_id: str) -> ManifestData:
        """The manifest ``manifest_id``, from the caches or the storage."""
        cached = self._manifests.get(manifest_id)  # the hot path: one call, one lock
        if cached is not None:
            return cached
        manifest = self._fetch(
            manifest_key(manifest_id), lambda d: ManifestData.decode(d, manifest_id)
        )
        self._manifests.put(manifest_id, manifest)
        return manifest

    async def load_manifest_async(self, manifest_id: str) -> ManifestData:
        """Async twin of :meth:`load_manifest`: a miss is awaited, never blocks the loop.

        Concurrent misses of one manifest on one event loop share a single fetch: the
        first reader fetches, the others wait for its result.
        """
        while True:
            cached = self._manifests.get(manifest_id)
            if cached is not None:
                return cached
            loop = asyncio.get_running_loop()
            slot = (id(loop), manifest_id)
            shared = self._inflight.get(slot)
            if shared is None:
                return await self._fetch_manifest_shared(slot, manifest_id, loop)
            try:
                # shielded: a waiter that is cancelled must not cancel the shared result
                return await asyncio.shield(shared)
            except _FetchAbandoned:
                continue  # its fetcher was cancelled: fetch it here instead

    async def _fetch_manifest_shared(
        self, slot: tuple[int, str], manifest_id: str, loop: asyncio.AbstractEventLoop
    ) -> ManifestData:
        shared: asyncio.Future[ManifestData] = loop.create_future()
        self._inflight[slot] = shared
        try:
            manifest = await self._fetch_async(
                manifest_key(manifest_id), lambda d: ManifestData.decode(d, manifest_id)
            )
        except BaseException as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            shared.set_exception(_FetchAbandoned() if cancelled else exc)
            shared.exception()  # retrieved: no warning when nobody else was waiting
            raise
        finally:
            del self._inflight[slot]
        self._manifests.put(manifest_id, manifest)
        shared.set_result(manifest)
        return manifest

    def load_transaction_log(self, snapshot_id: str) -> TransactionLog:
        """The transaction log of snapshot ``snapshot_id``.

        Raises
        ------
        SnapshotNotFoundError
            The log is missing.
        """
        try:
            return self._fetch(
                transaction_log_key(snapshot_id), lambda d: TransactionLog.decode(d, snapshot_id)
            )
        except ObjectNotFoundError:
            raise SnapshotNotFoundError(
                f"the transaction log of snapshot {snapshot_id} is missing",
                kind="snapshot-not-found",
            ) from None

    def write_snapshot(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` (not yet part of any history) and cache it."""
        self.storage.put(snapshot_key(snapshot.id), snapshot.encode(self.compression_level))
        self._snapshots.put(snapshot.id, snapshot)

    def write_transaction_log(self, snapshot_id: str, log: TransactionLog) -> None:
        self.storage.put(transaction_log_key(snapshot_id), log.encode(self.compression_level))

    def write_manifest(self, manifest: ManifestData) -> str:
        """Store ``manifest`` under a new id, cache it, and return the id."""
        manifest_id = new_snapshot_id()
        self.storage.put(manifest_key(manifest_id), manifest.encode(self.compression_level))
        self._manifests.put(manifest_id, manifest)
        return manifest_id

    # -- chunks -------------------------------------------------------------------------
    def put_chunk(self, key: str, data: bytes) -> None:
        """Store a chunk object (a single chunk or a pack)."""
        self.storage.put(key, data)

    async def put_chunk_async(self, key: str, data: bytes) -> None:
        await self.storage.put_async(key, data)

    read_chunk: Callable[[str, int, int], bytes]
    """Bytes ``[start, end)`` of chunk object ``key``, through the chunk caches."""

    read_chunks: Callable[..., list[bytes]]
    """Many chunk byte ranges in one batch (:meth:`ChunkReader.read_many`)."""

    read_chunks_async: Callable[..., Coroutine[Any, Any, list[bytes]]]
    """Async twin of :attr:`read_chunks` (:meth:`ChunkReader.read_many_async`)."""

    async def read_chunk_async(self, key: str, start: int, end: int) -> bytes:
        """Async twin of :meth:`read_chunk`; misses are awaited."""
        return await self.reader.read_async(key, start, end)
