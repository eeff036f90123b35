"""The Python face of the manifest kernels: lookups, ref resolution and merges.

Everything here works on whole columns; the only per-chunk work is resolving the one
ref a single ``get`` asks for.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import kernels
from .format.ids import chunk_object_name
from .format.manifest import INLINE, NATIVE, TOMBSTONE, VIRTUAL, ManifestData

__all__ = [
    "TOMBSTONE",
    "ChunkLocation",
    "cell_groups",
    "cell_of",
    "chunk_key",
    "concat_manifests",
    "merge_changes",
    "remap_rows",
    "resolve",
    "split_manifest",
    "take_rows",
    "union_rows",
]


@functools.lru_cache(maxsize=1 << 16)
def chunk_key(prefix: int, seq: int) -> str:
    """Storage key of a native chunk object (cached: a pack's chunks share one)."""
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


def _stack_optional(
    parts: Sequence[ManifestData], name: str, dtype: type, shifts: Sequence[int]
) -> np.ndarray | None:
    """An optional per-row column of all parts (-1 where a part lacks it), shifted."""
    if all(getattr(p, name) is None for p in parts):
        return None
    pieces: list[np.ndarray] = []
    for p, shift in zip(parts, shifts, strict=True):
        col = getattr(p, name)
        if col is None:
            pieces.append(np.full(len(p), -1, dtype))
        else:
            col = col.astype(dtype)
            pieces.append(np.where(col >= 0, col + shift, col).astype(dtype) if shift else col)
    return np.concatenate(pieces)


def _stack(parts: Sequence[ManifestData]) -> ManifestData:
    """The rows of ``parts`` one after another, their tables concatenated and the
    rows' table indices shifted to match (not sorted, tables not compacted)."""
    sources, offsets = [], []
    n_prefixes = n_locations = n_inline = 0
    etag_shifts = []
    n_etags = 0
    for p in parts:
        shift = np.where(p.kind == VIRTUAL, n_locations, n_prefixes).astype(np.uint32)
        sources.append(np.where(p.kind == INLINE, 0, p.source + shift).astype(np.uint32))
        offsets.append(p.offset + np.where(p.kind == INLINE, n_inline, 0).astype(np.uint64))
        etag_shifts.append(n_etags)
        n_prefixes += len(p.prefixes)
        n_locations += len(p.locations)
        n_inline += len(p.inline)
        n_etags += len(p.etags)
    return ManifestData(
        coords=np.concatenate([p.coords for p in parts]),
        kind=np.concatenate([p.kind for p in parts]),
        source=np.concatenate(sources),
        seq=np.concatenate([p.seq for p in parts]),
        offset=np.concatenate(offsets),
        length=np.concatenate([p.length for p in parts]),
        prefixes=np.concatenate([p.prefixes for p in parts]),
        locations=[loc for p in parts for loc in p.locations],
        inline=b"".join(p.inline for p in parts),
        etag=_stack_optional(parts, "etag", np.int32, etag_shifts),
        mtime=_stack_optional(parts, "mtime", np.int64, [0] * len(parts)),
        etags=[e for p in parts for e in p.etags],
    )


def merge_changes(
    base: ManifestData | None, changes: ManifestData, deleted: np.ndarray
) -> ManifestData:
    """Apply sorted, unique ``changes`` (rows flagged in ``deleted`` are deletes) to ``base``.

    Tables (prefixes, locations, etags, inline bytes) of both sides are concatenated,
    the change side's indices shifted to match, then unused entries are dropped.
    """
    if base is None:
        base = ManifestData.empty(changes.ndim)
    perm = kernels.merge_plan(base.coords, changes.coords, deleted)
    return _compact_tables(take_rows(_stack([base, changes]), perm))


def union_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Sorted unique rows of the concatenation of ``parts`` (all of one width)."""
    rows = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if len(rows) <= 1 or rows.shape[1] == 0:
        return rows[:1] if len(rows) else rows
    rows = rows[kernels.sort_coords(rows)]
    keep = np.ones(len(rows), dtype=bool)
    np.any(rows[1:] != rows[:-1], axis=1, out=keep[1:])
    return rows[keep]


def concat_manifests(parts: Sequence[ManifestData]) -> ManifestData:
    """One sorted manifest of manifests covering disjoint coordinates (the splits)."""
    if len(parts) == 1:
        return parts[0]
    stacked = _stack(parts)
    return _compact_tables(take_rows(stacked, kernels.sort_coords(stacked.coords)))


def cell_groups(
    coords: np.ndarray, split: Sequence[int]
) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """Rows of ``coords`` grouped by the split box holding them, boxes in order.

    ``split`` gives chunks per box along each dimension (0: not split). Row indices
    within a group keep their order, so groups of sorted coordinates stay sorted.
    """
    if not len(coords):
        return []
    divisor = np.array([s if s > 0 else np.iinfo(np.int64).max for s in split], dtype=np.int64)
    cells = coords // divisor
    order = np.lexsort(cells.T[::-1])  # stable: rows within a box keep their order
    ordered = cells[order]
    starts = np.flatnonzero(np.any(ordered[1:] != ordered[:-1], axis=1)) + 1
    bounds = [0, *starts.tolist(), len(order)]
    return [(tuple(int(c) for c in ordered[a]), order[a:b]) for a, b in itertools.pairwise(bounds)]


def split_manifest(
    m: ManifestData, split: Sequence[int]
) -> list[tuple[tuple[int, ...], ManifestData]]:
    """``m`` cut into one manifest per split box (boxes without refs left out)."""
    return [
        (cell, _compact_tables(take_rows(m, rows))) for cell, rows in cell_groups(m.coords, split)
    ]


def cell_of(extent: Sequence[tuple[int, int]], split: Sequence[int]) -> tuple[int, ...] | None:
    """The split box holding all of ``extent``, or None if it spans several."""
    cell = []
    for (lo, hi), s in zip(extent, split, strict=True):
        if s <= 0:
            cell.append(0)
        elif lo // s != (hi - 1) // s:
            return None
        else:
            cell.append(lo // s)
    return tuple(cell)


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
