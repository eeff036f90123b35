"""Chunk packing: a session appends the chunks it writes into a few large objects.

A pack is an ordinary chunk object holding many chunks back to back; refs point into it
by offset and length. One file or PUT per ~32 MiB instead of one per chunk is what makes
writing many small chunks fast on disks (a file create costs ~1 ms) and object stores
(a PUT costs ~10-50 ms). A pack belongs to one session (its id carries the session's
random prefix), so concurrent sessions never share one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["DEFAULT_PACK_TARGET_BYTES", "PackWriter"]

DEFAULT_PACK_TARGET_BYTES = 32 << 20

PackId = tuple[int, int]  # (prefix index, counter) of the pack's chunk object id


class PackWriter:
    """The pack being filled by one session, plus the full ones still uploading.

    Parameters
    ----------
    new_id
        Allocates the id of the next pack.
    key_of
        Storage key of a pack id.
    target_bytes
        A pack is handed out for upload as soon as it reaches this size.
    """

    def __init__(
        self, new_id: Callable[[], PackId], key_of: Callable[[PackId], str], target_bytes: int
    ) -> None:
        self._new_id = new_id
        self._key_of = key_of
        self.target_bytes = max(1, int(target_bytes))
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._current: PackId | None = None
        self._current_key = ""
        self._uploading: dict[str, bytes] = {}  # readable until their upload is done

    def append(self, data: bytes) -> tuple[PackId, int, tuple[str, bytes] | None]:
        """Add a chunk; returns its pack id, its offset, and a full pack to upload."""
        with self._lock:
            if self._current is None:
                self._current = self._new_id()
                self._current_key = self._key_of(self._current)
            pack, offset = self._current, len(self._buffer)
            self._buffer += data
            full = self._seal() if len(self._buffer) >= self.target_bytes else None
        return pack, offset, full

    def _seal(self) -> tuple[str, bytes] | None:
        """Hand out the current pack for upload (caller holds the lock)."""
        if self._current is None:
            return None
        key, data = self._current_key, bytes(self._buffer)
        self._uploading[key] = data
        self._buffer = bytearray()
        self._current, self._current_key = None, ""
        return key, data

    def seal(self) -> tuple[str, bytes] | None:
        """Hand out the partly filled pack, e.g. at commit; None if it is empty."""
        with self._lock:
            return self._seal()

    def uploaded(self, key: str) -> None:
        with self._lock:
            self._uploading.pop(key, None)

    def read(self, key: str, start: int, end: int) -> bytes | None:
        """Bytes of a pack not yet in storage, or None if ``key`` is not one of ours."""
        with self._lock:
            if key == self._current_key:
                return bytes(self._buffer[start:end])
            data = self._uploading.get(key)
        return None if data is None else data[start:end]

    def unstored(self) -> list[tuple[str, bytes]]:
        """Packs handed out for upload and not yet reported stored, for the commit to
        store before it publishes anything.

        That includes packs whose upload failed (a network error raised into the write
        that filled them, or into an earlier commit attempt), so a retried commit stores
        them instead of waiting for an upload nobody is running. A pack another thread is
        still uploading goes up twice: same key, same bytes, no harm.
        """
        with self._lock:
            return list(self._uploading.items())
