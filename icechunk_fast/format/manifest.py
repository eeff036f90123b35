"""Chunk manifests: the refs of one array as sorted NumPy columns.

Columns (all of length ``n``, rows sorted lexicographically by coordinates, unique):

``coords``   int64 (n, ndim)   chunk-grid coordinates
``kind``     uint8             NATIVE, INLINE or VIRTUAL
``source``   uint32            NATIVE: index into ``prefixes``; VIRTUAL: into ``locations``
``seq``      uint32            NATIVE: counter part of the chunk object id
``offset``   uint64            byte offset in the chunk object / inline blob / virtual file
``length``   uint64            byte length
``etag``     int32             VIRTUAL: index into ``etags`` or -1 (only when any is set)
``mtime``    int64             VIRTUAL: last-modified seconds or -1 (only when any is set)

Plus tables: ``prefixes`` (uint64, the 8-byte writer prefixes of native chunk ids),
``locations`` and ``etags`` (strings), and ``inline`` (the bytes of inline chunks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FormatError
from .columns import decode_columns, encode_columns
from .envelope import ObjectType, decode_object, encode_object

__all__ = ["INLINE", "NATIVE", "TOMBSTONE", "VIRTUAL", "ManifestData", "manifest_key"]

NATIVE = 0
INLINE = 1
VIRTUAL = 2
TOMBSTONE = 255  # only in change sets: "this chunk was deleted"


def manifest_key(manifest_id: str) -> str:
    return f"manifests/{manifest_id}"


def _empty(dtype: type, n: int = 0) -> np.ndarray:
    return np.zeros(n, dtype=dtype)


@dataclass(slots=True)
class ManifestData:
    """The columns of a manifest (see the module docstring)."""

    coords: np.ndarray
    kind: np.ndarray
    source: np.ndarray
    seq: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    prefixes: np.ndarray = field(default_factory=lambda: _empty(np.uint64))
    locations: list[str] = field(default_factory=list)
    inline: bytes = b""
    etag: np.ndarray | None = None
    mtime: np.ndarray | None = None
    etags: list[str] = field(default_factory=list)

    @property
    def ndim(self) -> int:
        return int(self.coords.shape[1])

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    @classmethod
    def empty(cls, ndim: int) -> ManifestData:
        return cls(
            np.zeros((0, ndim), np.int64),
            _empty(np.uint8),
            _empty(np.uint32),
            _empty(np.uint32),
            _empty(np.uint64),
            _empty(np.uint64),
        )

    def extent(self) -> tuple[tuple[int, int], ...]:
        """Per dimension ``(lo, hi)`` with ``hi`` exclusive; empty manifest -> zeros."""
        if not len(self):
            return tuple((0, 0) for _ in range(self.ndim))
        lo = self.coords.min(axis=0)
        hi = self.coords.max(axis=0) + 1
        return tuple((int(a), int(b)) for a, b in zip(lo, hi, strict=True))

    def nbytes(self) -> int:
        """Approximate in-memory size (for cache accounting)."""
        cols = (self.coords, self.kind, self.source, self.seq, self.offset, self.length)
        return sum(c.nbytes for c in cols) + len(self.inline) + 64 * len(self.locations)

    def encode(self, level: int = 3) -> bytes:
        columns: dict[str, np.ndarray | bytes] = {
            # one contiguous run per dimension compresses far better than interleaved
            "coords": np.ascontiguousarray(self.coords.T),
            "kind": self.kind,
            "source": self.source,
            "seq": self.seq,
            "offset": self.offset,
            "length": self.length,
            "prefixes": self.prefixes.view(np.int64),
            "inline": self.inline,
        }
        if self.etag is not None:
            columns["etag"] = self.etag
        if self.mtime is not None:
            columns["mtime"] = self.mtime
        header = {
            "n": len(self),
            "ndim": self.ndim,
            "locations": self.locations,
            "etags": self.etags,
        }
        payload = encode_columns(header, columns, level)
        return encode_object(ObjectType.MANIFEST, payload, compressed=False)

    @classmethod
    def decode(cls, data: bytes, name: str = "") -> ManifestData:
        payload = decode_object(data, ObjectType.MANIFEST, name)
        header, cols = decode_columns(payload)
        try:
            n, ndim = int(header["n"]), int(header["ndim"])
            coords = cols["coords"]
            if coords.shape != (ndim, n):
                raise ValueError(f"coords of shape {coords.shape}, expected {(ndim, n)}")
            m = cls(
                np.ascontiguousarray(coords.T),
                cols["kind"],
                cols["source"],
                cols["seq"],
                cols["offset"],
                cols["length"],
                cols["prefixes"].view(np.uint64),
                list(header["locations"]),
                cols["inline"],
                cols.get("etag"),
                cols.get("mtime"),
                list(header["etags"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"corrupt manifest {name}: {exc}") from exc
        m.validate(name)
        return m

    def validate(self, name: str = "") -> None:
        """Check the structural invariants a reader relies on."""
        n = len(self)
        problems = []
        for col in ("kind", "source", "seq", "offset", "length"):
            if getattr(self, col).shape != (n,):
                problems.append(f"column {col} has the wrong length")
        if not problems and n:
            kinds = self.kind
            native, inline, virtual = kinds == NATIVE, kinds == INLINE, kinds == VIRTUAL
            if not np.all(native | inline | virtual):
                problems.append("unknown chunk kind")
            if native.any() and int(self.source[native].max()) >= len(self.prefixes):
                problems.append("native ref points past the prefix table")
            if virtual.any() and int(self.source[virtual].max()) >= len(self.locations):
                problems.append("virtual ref points past the location table")
            if inline.any():
                ends = self.offset[inline] + self.length[inline]
                if int(ends.max()) > len(self.inline):
                    problems.append("inline ref points past the inline blob")
            if self.coords.size and int(self.coords.min()) < 0:
                problems.append("negative chunk coordinates")
        if problems:
            raise FormatError(f"corrupt manifest {name}: {'; '.join(problems)}")
