"""Object ids: 12 random bytes written as 20 Crockford base32 characters."""

from __future__ import annotations

import os
import re
import threading

__all__ = [
    "ChunkIdAllocator",
    "decode_id",
    "encode_id",
    "is_valid_id",
    "new_node_id",
    "new_snapshot_id",
]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{20}$")
_NODE_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{13}$")


def encode_id(raw: bytes) -> str:
    """Crockford base32 of ``raw`` (12 bytes -> 20 characters, 8 bytes -> 13)."""
    nbits = len(raw) * 8
    nchars = -(-nbits // 5)
    value = int.from_bytes(raw, "big") << (nchars * 5 - nbits)
    out = []
    for _ in range(nchars):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def decode_id(text: str, nbytes: int = 12) -> bytes:
    """Inverse of :func:`encode_id`."""
    nbits = nbytes * 8
    value = 0
    for c in text:
        value = (value << 5) | _DECODE[c]
    return (value >> (len(text) * 5 - nbits)).to_bytes(nbytes, "big")


def is_valid_id(text: object) -> bool:
    """True if ``text`` looks like a snapshot / object id."""
    return isinstance(text, str) and _ID_RE.match(text) is not None


def new_snapshot_id() -> str:
    """A fresh random snapshot (or manifest, transaction log) id."""
    return encode_id(os.urandom(12))


def new_node_id() -> str:
    """A fresh random node id (8 bytes, 13 characters)."""
    return encode_id(os.urandom(8))


class ChunkIdAllocator:
    """Hands out chunk object ids: one random 8-byte prefix per writer plus a counter.

    A manifest stores a chunk id as (index of its prefix in a small table, counter), so
    refs written by one session cost almost nothing after delta compression, while the
    prefix keeps writers that never coordinate from colliding.
    """

    __slots__ = ("_lock", "_next", "prefix")

    def __init__(self) -> None:
        self.prefix = int.from_bytes(os.urandom(8), "big")
        self._next = 0
        self._lock = threading.Lock()

    def allocate(self) -> tuple[int, int]:
        """Return ``(prefix, sequence)`` of a new chunk id."""
        with self._lock:
            seq = self._next
            if seq >= 2**32:
                self.prefix = int.from_bytes(os.urandom(8), "big")
                self._next = seq = 0
            self._next = seq + 1
        return self.prefix, seq


def chunk_object_name(prefix: int, seq: int) -> str:
    """The 20-character id of chunk object ``(prefix, seq)``."""
    return encode_id(prefix.to_bytes(8, "big") + seq.to_bytes(4, "big"))


__all__ += ["chunk_object_name"]
