"""Chunk reads through the chunk caches: one byte range, or a batch in few requests.

A read of chunk bytes ``[start, end)`` of object ``key`` looks in the memory cache,
then in the disk tier (both keyed by ``key@start-end``, and only when the repository
caches chunks), then asks the storage. A batch does the same for every range, plans the
misses with :func:`~icechunk_fast.batching.plan_reads` (coalesced and split requests),
fetches them in one :meth:`Storage.get_ranges` call and slices the results; fetched
ranges go into the caches exactly as single reads do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from .batching import CoalescePolicy, ReadPlan, plan_reads
from .cache import ByteLRU, DiskTier
from .errors import FormatError
from .storage import CountingStorage

__all__ = ["ChunkReader", "check_length"]


def _cache_key(key: str, start: int, end: int) -> str:
    return f"{key}@{start}-{end}"


def _truncated(key: str, want: int, got: int) -> FormatError:
    return FormatError(f"chunk object {key} is truncated: expected {want} bytes, read {got}")


def check_length(data: bytes, want: int, key: str) -> bytes:
    """``data`` if it holds the ``want`` bytes asked of chunk object ``key``."""
    if len(data) != want:
        raise _truncated(key, want, len(data))
    return data


@dataclass(slots=True)
class _Batch:
    """A batch being read: the values known so far and the requests for the rest."""

    values: list[bytes]
    missing: list[int] | None  # input index of every planned range (None: all of them)
    keys: Sequence[str]  # object key of every planned range
    plan: ReadPlan
    requests: list[tuple[str, int, int]]
    cache_keys: list[str] | None


class ChunkReader:
    """Reads chunk bytes for one repository, through its chunk caches.

    Parameters
    ----------
    io
        The repository's counting storage wrapper.
    memory
        Memory cache of chunk bytes, or None.
    disk
        Disk tier that keeps chunk bytes, or None.
    policy
        How batched reads are coalesced and split.
    """

    def __init__(
        self,
        io: CountingStorage,
        memory: ByteLRU[bytes] | None,
        disk: DiskTier | None,
        policy: CoalescePolicy,
    ) -> None:
        self._io = io
        self.memory = memory
        self.disk = disk
        self.policy = policy
        self.caches = memory is not None or disk is not None

    # -- one range -------------------------------------------------------------------
    def read(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of chunk object ``key``, through the caches."""
        if not self.caches:
            return self._io.get_range(key, start, end)
        cache_key = _cache_key(key, start, end)
        hit = self._cached(cache_key, end - start)
        if hit is not None:
            return hit
        data = self._io.get_range(key, start, end)
        self._remember(cache_key, data, end - start)
        return data

    async def read_async(self, key: str, start: int, end: int) -> bytes:
        """Async twin of :meth:`read`: the storage read (and disk tier I/O) is awaited."""
        if not self.caches:
            return await self._io.get_range_async(key, start, end)
        cache_key = _cache_key(key, start, end)
        hit = self._in_memory(cache_key)
        if hit is None and self.disk is not None:
            hit = await asyncio.to_thread(self._on_disk, cache_key, end - start)
        if hit is not None:
            return hit
        data = await self._io.get_range_async(key, start, end)
        if self.disk is not None:
            await asyncio.to_thread(self._remember, cache_key, data, end - start)
        else:
            self._remember(cache_key, data, end - start)
        return data

    def _cached(self, cache_key: str, want: int) -> bytes | None:
        hit = self._in_memory(cache_key)
        if hit is None and self.disk is not None:
            hit = self._on_disk(cache_key, want)
        return hit

    def _in_memory(self, cache_key: str) -> bytes | None:
        memory = self.memory
        return None if memory is None else memory.get(cache_key)  # the cache counts it

    def _on_disk(self, cache_key: str, want: int) -> bytes | None:
        memory = self.memory
        disk = self.disk
        if disk is not None:
            stored = disk.get(cache_key)
            if stored is not None and len(stored) == want:
                self._io.bump("disk_hits")
                if memory is not None:
                    memory.put(cache_key, stored)
                return stored
            self._io.bump("disk_misses")
        return None

    def _remember(self, cache_key: str, data: bytes, want: int) -> None:
        if self.disk is not None and len(data) == want:
            self.disk.put(cache_key, data)
        if self.memory is not None:
            self.memory.put(cache_key, data)

    # -- batches ---------------------------------------------------------------------
    def read_many(
        self,
        keys: Sequence[str],
        starts: Sequence[int],
        ends: Sequence[int],
        policy: CoalescePolicy | None = None,
    ) -> list[bytes]:
        """Bytes ``[starts[i], ends[i])`` of chunk object ``keys[i]`` for every ``i``.

        Ranges must be non-empty. Ranges not in the caches are fetched with one
        :meth:`Storage.get_ranges` call, coalesced and split by ``policy`` (default:
        the repository's).

        Raises
        ------
        FormatError
            An object is shorter than a range in it.
        ObjectNotFoundError
            An object is missing.
        """
        batch = self._prepare(keys, starts, ends, policy)
        if batch.requests:
            self._finish(batch, self._io.get_ranges(batch.requests))
        return batch.values

    async def read_many_async(
        self,
        keys: Sequence[str],
        starts: Sequence[int],
        ends: Sequence[int],
        policy: CoalescePolicy | None = None,
    ) -> list[bytes]:
        """Async twin of :meth:`read_many`; the fetch (and disk tier I/O) is awaited."""
        on_disk = self.disk is not None
        if on_disk:
            batch = await asyncio.to_thread(self._prepare, keys, starts, ends, policy)
        else:
            batch = self._prepare(keys, starts, ends, policy)
        if batch.requests:
            parts = await self._io.get_ranges_async(batch.requests)
            if on_disk:
                await asyncio.to_thread(self._finish, batch, parts)
            else:
                self._finish(batch, parts)
        return batch.values

    def _prepare(
        self,
        keys: Sequence[str],
        starts: Sequence[int],
        ends: Sequence[int],
        policy: CoalescePolicy | None,
    ) -> _Batch:
        values: list[bytes] = [b""] * len(keys)
        missing: list[int] | None = None
        cache_keys: list[str] | None = None
        if self.caches:
            missing, cache_keys = [], []
            for i, (key, start, end) in enumerate(zip(keys, starts, ends, strict=True)):
                cache_key = _cache_key(key, start, end)
                hit = self._cached(cache_key, end - start)
                if hit is None:
                    missing.append(i)
                    cache_keys.append(cache_key)
                else:
                    values[i] = hit
            keys = [keys[i] for i in missing]
            starts = [starts[i] for i in missing]
            ends = [ends[i] for i in missing]
        ids: dict[str, int] = {}
        objects = [ids.setdefault(key, len(ids)) for key in keys]
        plan = plan_reads(objects, starts, ends, policy or self.policy)
        names = list(ids)
        requests = list(
            zip(
                [names[o] for o in plan.part_object.tolist()],
                plan.part_start.tolist(),
                plan.part_end.tolist(),
                strict=True,
            )
        )
        return _Batch(values, missing, keys, plan, requests, cache_keys)

    def _finish(self, batch: _Batch, parts: Sequence[bytes]) -> None:
        plan = batch.plan
        fetched = plan.serve(parts)
        if not plan.complete(parts):
            short = plan.short_members(fetched)
            if len(short):
                i = int(short[0])
                want = int(plan.member_length[i])
                raise _truncated(batch.keys[i], want, len(fetched[i]))
        values = batch.values
        if batch.missing is None:
            values[:] = fetched
            return
        assert batch.cache_keys is not None
        for i, cache_key, data in zip(batch.missing, batch.cache_keys, fetched, strict=True):
            values[i] = data
            self._remember(cache_key, data, len(data))
