"""What a session has written but not committed.

Chunk refs are kept as append-only typed columns (``array.array``, turned into NumPy
without copying at commit) plus one dict from chunk key to the row of its latest write.
Coordinates are not parsed on the write path: the commit parses every live key at once
with the key-parsing kernel.
"""

from __future__ import annotations

import functools
import re
from array import array
from dataclasses import dataclass

import numpy as np

from . import kernels
from .format.manifest import INLINE, NATIVE, TOMBSTONE, ManifestData

__all__ = ["ArrayChanges", "ChunkKeyFormat", "NodeChange"]


_NUMBER = "(0|[1-9][0-9]*)"  # no leading zeros: one spelling per chunk


@functools.lru_cache(maxsize=256)
def _grammar(ndim: int, separator: str, default: bool) -> re.Pattern[str]:
    sep = re.escape(separator)
    body = sep.join([_NUMBER] * ndim)
    pattern = ("c" + sep + body if ndim else "c") if default else (body if ndim else "0")
    return re.compile(pattern, re.ASCII)


@dataclass(frozen=True, slots=True)
class ChunkKeyFormat:
    """How an array spells its chunk keys: ``c/1/2`` (default) or ``1.2`` (v2)."""

    ndim: int
    separator: str
    default: bool  # True: "c" prefix encoding, False: v2 encoding

    @property
    def skip(self) -> int:
        """Characters before the first coordinate."""
        if not self.default:
            return 0
        return 2 if self.ndim else 1

    def prefix(self) -> str:
        if not self.default:
            return "" if self.ndim else "0"
        return "c" + self.separator if self.ndim else "c"

    def parse_one(self, part: str) -> tuple[int, ...] | None:
        """Coordinates of one chunk key, or None if ``part`` is not a valid key."""
        match = _grammar(self.ndim, self.separator, self.default).fullmatch(part)
        if match is None:
            return None
        return tuple(map(int, match.groups()))

    def parse_many(self, parts: list[str]) -> np.ndarray:
        if not self.default and self.ndim == 0:
            return np.zeros((len(parts), 0), dtype=np.int64)
        joined = "\n".join(parts).encode("ascii")
        sep = self.separator.encode("ascii")
        return kernels.parse_chunk_keys(joined, len(parts), self.ndim, sep, self.skip)

    def format_many(self, coords: np.ndarray) -> list[str]:
        if not self.default and self.ndim == 0:
            return ["0"] * len(coords)
        return kernels.format_chunk_keys(coords, self.prefix(), self.separator)


@dataclass(slots=True)
class NodeChange:
    """A group or array created or whose metadata was rewritten in this session."""

    node_id: str
    node_type: str
    zarr_metadata: bytes
    is_new: bool


class ArrayChanges:
    """Chunk writes and deletes of one array during a session."""

    __slots__ = (
        "index",
        "inline",
        "keys",
        "kind",
        "length",
        "offset",
        "override",
        "seq",
        "source",
        "touched",
    )

    def __init__(self) -> None:
        # Whole-array rewrites (shift, reindex) replace the base manifest in memory;
        # keyed writes then apply on top of it.
        self.override: ManifestData | None = None
        self.touched: list[np.ndarray] = []  # coordinates the rewrites changed
        self._reset_keyed()

    def _reset_keyed(self) -> None:
        self.keys: list[str] = []
        self.index: dict[str, int] = {}
        self.kind = array("B")
        self.source = array("I")
        self.seq = array("I")
        self.offset = array("Q")
        self.length = array("Q")
        self.inline = bytearray()

    def __len__(self) -> int:
        """Number of keyed changes, plus one if the base was rewritten."""
        return len(self.index) + (self.override is not None)

    def replace_base(self, manifest: ManifestData, touched: np.ndarray) -> None:
        """Make ``manifest`` the array's refs from now on, dropping keyed changes."""
        self.override = manifest
        self.touched.append(touched)
        self._reset_keyed()

    def touched_coords(self, fmt: ChunkKeyFormat) -> np.ndarray:
        """Sorted unique coordinates of every chunk this session wrote, deleted or moved."""
        from .diff import union_rows

        parts = [*self.touched, fmt.parse_many(list(self.index))]
        return union_rows(parts)

    def _append(self, key: str, kind: int, source: int, seq: int, offset: int, length: int) -> None:
        row = len(self.keys)
        self.keys.append(key)
        self.kind.append(kind)
        self.source.append(source)
        self.seq.append(seq)
        self.offset.append(offset)
        self.length.append(length)
        self.index[key] = row  # last: a lock-free reader never sees a half-written row

    def set_native(self, key: str, prefix_index: int, seq: int, offset: int, length: int) -> None:
        self._append(key, NATIVE, prefix_index, seq, offset, length)

    def set_inline(self, key: str, data: bytes) -> None:
        offset = len(self.inline)
        self.inline += data
        self._append(key, INLINE, 0, 0, offset, len(data))

    def delete(self, key: str) -> None:
        self._append(key, TOMBSTONE, 0, 0, 0, 0)

    def row(self, key: str) -> int | None:
        return self.index.get(key)

    def written_keys(self) -> list[str]:
        """Keys whose latest change is a write (not a delete)."""
        kind = self.kind
        return [k for k, r in self.index.items() if kind[r] != TOMBSTONE]

    def to_columns(
        self, fmt: ChunkKeyFormat, prefixes: np.ndarray
    ) -> tuple[ManifestData, np.ndarray]:
        """Sorted, unique change columns and their delete mask, ready to merge."""
        keys = list(self.index)
        rows = np.fromiter(self.index.values(), dtype=np.int64, count=len(keys))
        coords = fmt.parse_many(keys)
        order = kernels.sort_coords(coords)
        rows = rows[order]

        def col(values: array, dtype: type) -> np.ndarray:
            return np.frombuffer(values, dtype=dtype)[rows] if len(values) else np.zeros(0, dtype)

        kind = col(self.kind, np.uint8)
        changes = ManifestData(
            coords=np.ascontiguousarray(coords[order]),
            kind=kind,
            source=col(self.source, np.uint32),
            seq=col(self.seq, np.uint32),
            offset=col(self.offset, np.uint64),
            length=col(self.length, np.uint64),
            prefixes=prefixes,
            inline=bytes(self.inline),
        )
        return changes, kind == TOMBSTONE

    def reads(self, key: str) -> tuple[int, int, int, int, int] | None:
        """``(kind, source, seq, offset, length)`` of the latest change of ``key``."""
        r = self.index.get(key)
        if r is None:
            return None
        return self.kind[r], self.source[r], self.seq[r], self.offset[r], self.length[r]
