"""The Python face of the manifest kernels: lookups, ref resolution and merges.

Everything here works on whole columns; the only per-chunk work is resolving the one
ref a single ``get`` asks for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels
from .format.ids import chunk_object_name
from .format.manifest import INLINE, NATIVE, TOMBSTONE, VIRTUAL, ManifestData

__all__ = ["ChunkLocation", "chunk_key", "lookup_row", "merge_changes", "resolve"]


def chunk_key(prefix: int, seq: int) -> str:
    """Storage key of a native chunk object."""
    return f"chunks/{chunk_object_name(prefix, seq)}"


@dataclass(frozen=True, slots=True)
class ChunkLocation:
    """Where the bytes of one chunk are.

    ``kind`` is one of the manifest kinds; for INLINE ``data`` holds the bytes, for
    NATIVE ``key`` is the chunk object, for VIRTUAL ``key`` is the location URL.
    """

    kind: int
    key: str
    offset: int
    length: int
    data: bytes | None = None
    etag: str | None = None
    mtime: int | None = None


def lookup_row(manifest: ManifestData, coords: tuple[int, ...]) -> int:
    """Row of ``coords`` in ``manifest`` or -1."""
    if len(coords) != manifest.ndim or not len(manifest):
        return -1
    return kernels.lookup_one(manifest.coords, coords)


def resolve(manifest: ManifestData, row: int) -> ChunkLocation:
    """The location of the chunk in ``row``."""
    kind = int(manifest.kind[row])
    offset, length = int(manifest.offset[row]), int(manifest.length[row])
    if kind == INLINE:
        return ChunkLocation(kind, "", 0, length, manifest.inline[offset : offset + length])
    source = int(manifest.source[row])
    if kind == NATIVE:
        key = chunk_key(int(manifest.prefixes[source]), int(manifest.seq[row]))
        return ChunkLocation(kind, key, offset, length)
    etag = None
    if manifest.etag is not None and manifest.etag[row] >= 0:
        etag = manifest.etags[int(manifest.etag[row])]
    mtime = None
    if manifest.mtime is not None and manifest.mtime[row] >= 0:
        mtime = int(manifest.mtime[row])
    return ChunkLocation(VIRTUAL, manifest.locations[source], offset, length, None, etag, mtime)


def _gather_blob(blob: bytes, offsets: np.ndarray, lengths: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Pack the byte ranges ``(offsets, lengths)`` of ``blob`` into a new blob."""
    lengths = lengths.astype(np.int64)
    new_offsets = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        np.cumsum(lengths[:-1], out=new_offsets[1:])
    total = int(lengths.sum())
    if not total:
        return b"", new_offsets.astype(np.uint64)
    # index of every output byte in the source blob, without a Python loop
    starts = np.repeat(offsets.astype(np.int64) - new_offsets, lengths)
    index = starts + np.arange(total, dtype=np.int64)
    src = np.frombuffer(blob, dtype=np.uint8)
    return src[index].tobytes(), new_offsets.astype(np.uint64)


def _concat_optional(
    base: np.ndarray | None, change: np.ndarray | None, nb: int, nc: int, dtype: type, offset: int
) -> np.ndarray | None:
    if base is None and change is None:
        return None
    b = base if base is not None else np.full(nb, -1, dtype)
    c: np.ndarray = change.astype(dtype) if change is not None else np.full(nc, -1, dtype)
    if offset and change is not None:
        c = np.where(c >= 0, c + offset, c).astype(dtype)
    return np.concatenate([b, c])


def merge_changes(
    base: ManifestData | None, changes: ManifestData, deleted: np.ndarray
) -> ManifestData:
    """Apply sorted, unique ``changes`` (rows flagged in ``deleted`` are deletes) to ``base``.

    Tables (prefixes, locations, etags, inline bytes) of both sides are concatenated,
    the change side's indices shifted to match, then unused entries are dropped.
    """
    if base is None:
        base = ManifestData.empty(changes.ndim)
    nb, nc = len(base), len(changes)
    perm = kernels.merge_plan(base.coords, changes.coords, deleted)
    kind = np.concatenate([base.kind, changes.kind])[perm]
    source_shift = np.where(
        changes.kind == VIRTUAL, len(base.locations), len(base.prefixes)
    ).astype(np.uint32)
    source_change = np.where(changes.kind == INLINE, 0, changes.source + source_shift)
    source = np.concatenate([base.source, source_change.astype(np.uint32)])[perm]
    inline_shift = np.where(changes.kind == INLINE, len(base.inline), 0).astype(np.uint64)
    offset = np.concatenate([base.offset, changes.offset + inline_shift])[perm]
    merged = ManifestData(
        coords=np.concatenate([base.coords, changes.coords])[perm],
        kind=kind,
        source=source,
        seq=np.concatenate([base.seq, changes.seq])[perm],
        offset=offset,
        length=np.concatenate([base.length, changes.length])[perm],
        prefixes=np.concatenate([base.prefixes, changes.prefixes]),
        locations=base.locations + changes.locations,
        inline=base.inline + changes.inline,
        etag=_concat_optional(base.etag, changes.etag, nb, nc, np.int32, len(base.etags)),
        mtime=_concat_optional(base.mtime, changes.mtime, nb, nc, np.int64, 0),
        etags=base.etags + changes.etags,
    )
    return _compact_tables(merged)


def _renumber(indices: np.ndarray, table_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Entries of a table that ``indices`` use, and ``indices`` renumbered to them.

    Linear in the rows (a mark and a cumulative sum), not a sort: tables are tiny and
    manifests are large.
    """
    used = np.zeros(table_len, dtype=bool)
    used[indices] = True
    new_index = np.cumsum(used) - 1
    return np.flatnonzero(used), new_index[indices]


def _compact_tables(m: ManifestData) -> ManifestData:
    """Drop table entries no row refers to any more and renumber the rest."""
    native, virtual, inline = m.kind == NATIVE, m.kind == VIRTUAL, m.kind == INLINE
    source = m.source.copy()
    if native.any():
        used, renumbered = _renumber(m.source[native], len(m.prefixes))
        m.prefixes = m.prefixes[used]
        source[native] = renumbered.astype(np.uint32)
    else:
        m.prefixes = m.prefixes[:0]
    if virtual.any():
        used, renumbered = _renumber(m.source[virtual], len(m.locations))
        m.locations = [m.locations[int(i)] for i in used]
        source[virtual] = renumbered.astype(np.uint32)
    else:
        m.locations = []
    m.source = source
    if inline.any():
        blob, new_offsets = _gather_blob(m.inline, m.offset[inline], m.length[inline])
        m.inline = blob
        offset = m.offset.copy()
        offset[inline] = new_offsets
        m.offset = offset
    else:
        m.inline = b""
    if m.etag is not None:
        if not virtual.any() or not (m.etag >= 0).any():
            m.etag = None
            m.etags = []
        else:
            has = m.etag >= 0
            used, renumbered = _renumber(m.etag[has], len(m.etags))
            m.etags = [m.etags[int(i)] for i in used]
            etag = m.etag.copy()
            etag[has] = renumbered.astype(np.int32)
            m.etag = etag
    if m.mtime is not None and not (m.mtime >= 0).any():
        m.mtime = None
    return m


def take_rows(m: ManifestData, rows: np.ndarray, coords: np.ndarray | None = None) -> ManifestData:
    """The rows ``rows`` (mask or indices) of ``m``, tables kept; optionally new coords."""
    return ManifestData(
        coords=np.ascontiguousarray(m.coords[rows] if coords is None else coords),
        kind=m.kind[rows],
        source=m.source[rows],
        seq=m.seq[rows],
        offset=m.offset[rows],
        length=m.length[rows],
        prefixes=m.prefixes,
        locations=m.locations,
        inline=m.inline,
        etag=None if m.etag is None else m.etag[rows],
        mtime=None if m.mtime is None else m.mtime[rows],
        etags=m.etags,
    )


def remap_rows(
    m: ManifestData, src: np.ndarray, dst: np.ndarray, clear: np.ndarray
) -> ManifestData:
    """Copy the refs of rows ``src`` to coordinates ``dst`` after dropping ``clear``.

    All reads see ``m`` as it was: a ref copied to a position also listed in ``clear``
    lands there; two sources for one destination are an error (ValueError).
    """
    ndim = m.ndim
    dst = np.asarray(dst, dtype=np.int64).reshape(-1, ndim)
    keep = np.ones(len(m), dtype=bool)
    if len(clear):
        clear = np.asarray(clear, dtype=np.int64).reshape(-1, ndim)
        clear = clear[kernels.sort_coords(clear)]
        keep = kernels.lookup_coords(clear, m.coords) < 0
    order = kernels.sort_coords(dst)
    dst, src = dst[order], np.asarray(src, dtype=np.int64)[order]
    if len(dst) > 1 and np.any(np.all(dst[1:] == dst[:-1], axis=1)):
        raise ValueError("two chunks map to the same destination")
    moved = take_rows(m, src, dst)
    return merge_changes(take_rows(m, keep), moved, np.zeros(len(moved), dtype=bool))


__all__ += ["TOMBSTONE", "remap_rows", "take_rows"]
