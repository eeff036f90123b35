"""Plain value objects returned by the public API."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ChunkType", "SessionMode", "SnapshotInfo", "SpecVersion"]


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One commit as seen by ``ancestry`` and ``lookup_snapshot``.

    Attributes
    ----------
    id
        The snapshot id (20 characters).
    parent_id
        The previous snapshot on its branch, ``None`` for the repository's first one.
    written_at
        When it was committed (timezone-aware, UTC).
    message, metadata
        As given to ``commit``.
    """

    id: str
    parent_id: str | None
    written_at: datetime
    message: str
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


class SessionMode(enum.Enum):
    READONLY = "readonly"
    WRITABLE = "writable"


class ChunkType(enum.Enum):
    UNINITIALIZED = "uninitialized"
    NATIVE = "native"
    VIRTUAL = "virtual"
    INLINE = "inline"


class SpecVersion(enum.IntEnum):
    """Format generations of Icechunk that code may ask for; we write our own format."""

    v1 = 1
    v2 = 2

    @classmethod
    def current(cls) -> SpecVersion:
        return cls.v2
