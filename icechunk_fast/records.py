"""Plain value objects returned by the public API."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import InvalidInputError

__all__ = ["ChunkType", "SessionMode", "SnapshotInfo", "SpecVersion", "Update"]


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
    """What a session may do: read, write, or only move nodes (a rearrange session).

    The lower-case names are Icechunk's; the upper-case ones are aliases of them.
    """

    readonly = "readonly"
    writable = "writable"
    rearrange = "rearrange"
    READONLY = "readonly"
    WRITABLE = "writable"
    REARRANGE = "rearrange"


class ChunkType(enum.Enum):
    """Where a chunk's bytes are (:meth:`Session.chunk_type`).

    The lower-case names are Icechunk's; the upper-case ones are aliases of them.
    """

    uninitialized = "uninitialized"
    native = "native"
    virtual = "virtual"
    inline = "inline"
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

    @staticmethod
    def require(have: int, need: int, what: str) -> None:
        """Refuse ``what`` on a repository of spec version ``have`` if it needs ``need``.

        Raises
        ------
        InvalidInputError
            ``have < need`` (kind ``unsupported-spec-version``).
        """
        if have < need:
            raise InvalidInputError(
                f"{what} needs a spec version {need} repository; this one is version {have}",
                kind="unsupported-spec-version",
            )


@dataclass(frozen=True, slots=True)
class Update:
    """One entry of :meth:`Repository.ops_log`: a mutation of the repository.

    ``kind`` is one of ``repo_initialized``, ``new_commit``, ``commit_amended``,
    ``new_detached_snapshot``, ``branch_created``, ``branch_reset``, ``branch_deleted``,
    ``tag_created``, ``tag_deleted``, ``metadata_changed``. ``name`` is the branch or
    tag involved, if any.
    """

    kind: str
    updated_at: datetime
    name: str | None = None
    previous_snap_id: str | None = None
    new_snap_id: str | None = None
