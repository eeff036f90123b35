"""Where a session's chunk bytes go: one object per chunk, or packs of many.

A :class:`ChunkWriter` allocates chunk object ids under the session's own random
prefixes (so concurrent writers never collide), appends chunks to a pack and stores it
when full, or stores each chunk on its own when packing is off. It tells the caller
where each chunk went, ``(prefix index, counter, offset)``, for the change set to record;
``prefixes`` maps the indices to the prefixes themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from .assets import AssetManager
from .format.ids import ChunkIdAllocator
from .manifest import chunk_key
from .packs import PackWriter

__all__ = ["ChunkWriter"]

# record(prefix index, counter, offset in the object) of a chunk just placed
Record = Callable[[int, int, int], None]


class ChunkWriter:
    """The chunk objects of one session.

    Parameters
    ----------
    assets
        Where the objects are stored.
    pack_target
        Pack size in bytes; 0 stores every chunk as an object of its own.
    """

    def __init__(self, assets: AssetManager, pack_target: int) -> None:
        self._assets = assets
        self._pack_target = pack_target
        self._lock = threading.Lock()
        self._allocator: ChunkIdAllocator | None = None
        self.prefixes: list[int] = []  # chunk id prefixes; placements index into it
        self._packer: PackWriter | None = None
        # True once chunks may sit in memory (a pack being filled or uploaded); a plain
        # attribute because every read asks
        self.has_pending = False

    def prefix_table(self) -> np.ndarray:
        """``prefixes`` as the manifest column type."""
        return np.array(self.prefixes, dtype=np.uint64)

    def _new_id(self) -> tuple[int, int]:
        with self._lock:
            if self._allocator is None:
                self._allocator = ChunkIdAllocator()
            prefix, seq = self._allocator.allocate()
            if not self.prefixes or self.prefixes[-1] != prefix:
                self.prefixes.append(prefix)
            return len(self.prefixes) - 1, seq

    def _pack_writer(self) -> PackWriter:
        packer = self._packer
        if packer is None:
            with self._lock:
                if self._packer is None:
                    self._packer = PackWriter(
                        self._new_id,
                        lambda pack: chunk_key(self.prefixes[pack[0]], pack[1]),
                        self._pack_target,
                    )
                    self.has_pending = True
                packer = self._packer
        return packer

    def write(self, data: bytes, record: Record) -> None:
        """Store ``data`` (or add it to the pack being filled), calling ``record`` with
        where it went.

        With packing, ``record`` runs before a full pack is uploaded: if that upload
        fails, the chunk is still part of the session and :meth:`flush` stores the pack
        at commit.
        """
        if self._pack_target:
            packer = self._pack_writer()
            (prefix_index, seq), offset, full = packer.append(data)
            record(prefix_index, seq, offset)
            if full is not None:
                self._assets.put_chunk(*full)
                packer.uploaded(full[0])
            return
        prefix_index, seq = self._new_id()
        self._assets.put_chunk(chunk_key(self.prefixes[prefix_index], seq), data)
        record(prefix_index, seq, 0)

    async def write_async(self, data: bytes, record: Record) -> None:
        """Async twin of :meth:`write`; the upload is awaited."""
        if self._pack_target:
            packer = self._pack_writer()
            (prefix_index, seq), offset, full = packer.append(data)
            record(prefix_index, seq, offset)
            if full is not None:
                await self._assets.put_chunk_async(*full)
                packer.uploaded(full[0])
            return
        prefix_index, seq = self._new_id()
        await self._assets.put_chunk_async(chunk_key(self.prefixes[prefix_index], seq), data)
        record(prefix_index, seq, 0)

    def pending(self, key: str, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` of a pack not stored yet, or None."""
        packer = self._packer
        return None if packer is None else packer.read(key, start, end)

    def flush(self) -> None:
        """Store the pack being filled and any whose upload failed or is still running."""
        packer = self._packer
        if packer is None:
            return
        packer.seal()
        for key, data in packer.unstored():
            self._assets.put_chunk(key, data)
            packer.uploaded(key)

    def forget_pending(self) -> None:
        """Drop the packs in memory (their chunks were never referenced by a commit)."""
        self._packer = None
        self.has_pending = False
