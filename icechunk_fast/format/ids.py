"""Object ids: 12 random bytes written as 20 Crockford base32 characters."""

from __future__ import annotations

import base64
import os
import re
import threading

__all__ = [
    "ChunkIdAllocator",
    "chunk_object_name",
    "decode_id",
    "encode_id",
    "is_valid_id",
    "new_node_id",
    "new_snapshot_id",
]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)
_ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{20}$")
_NODE_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{13}$")


def encode_id(raw: bytes) -> str:
    """Crockford base32 of ``raw`` (12 bytes -> 20 characters, 8 bytes -> 13)."""
    # RFC 4648 base32 has the same bit layout; only the alphabet differs.
    return base64.b32encode(raw).decode("ascii").rstrip("=").translate(_FROM_RFC4648)


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


_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> 2 characters
_PREFIX_NAMES: dict[int, str] = {}


def chunk_object_name(prefix: int, seq: int) -> str:
    """The 20-character name of chunk object ``(prefix, seq)``.

    13 characters spell the writer's 8-byte prefix, 7 the counter (35 bits, enough for
    the 32-bit counter), so names of one writer sort in write order.
    """
    head = _PREFIX_NAMES.get(prefix)
    if head is None:
        head = encode_id(prefix.to_bytes(8, "big"))
        if len(_PREFIX_NAMES) > 4096:
            _PREFIX_NAMES.clear()
        _PREFIX_NAMES[prefix] = head
    pairs = _PAIRS
    return (
        head
        + pairs[(seq >> 25) & 1023]
        + pairs[(seq >> 15) & 1023]
        + pairs[(seq >> 5) & 1023]
        + _ALPHABET[seq & 31]
    )
