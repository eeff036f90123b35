"""The vocabulary of rebasing: conflict kinds, conflicts, and the solver interface."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

__all__ = ["Conflict", "ConflictSolver", "ConflictType", "RebasingSession", "VersionSelection"]


class ConflictType(enum.Enum):
    """What kind of clash a rebase found."""

    NewNodeConflictsWithExistingNode = 1
    NewNodeInInvalidGroup = 2
    ZarrMetadataDoubleUpdate = 3
    ZarrMetadataUpdateOfDeletedArray = 4
    ZarrMetadataUpdateOfDeletedGroup = 5
    ChunkDoubleUpdate = 6
    ChunksUpdatedInDeletedArray = 7
    ChunksUpdatedInUpdatedArray = 8
    DeleteOfUpdatedArray = 9
    DeleteOfUpdatedGroup = 10
    MoveOperationCannotBeRebased = 11


class VersionSelection(enum.Enum):
    """Which side wins a chunk written by both."""

    Fail = 0
    UseOurs = 1
    UseTheirs = 2


@dataclass(frozen=True, slots=True)
class Conflict:
    """One conflict: its type, the node path, and for chunk conflicts the chunks."""

    conflict_type: ConflictType
    path: str
    conflicted_chunks: list[list[int]] | None = field(default=None, compare=False)
    node_id: str | None = field(default=None, compare=False, repr=False)

    def __repr__(self) -> str:
        extra = ""
        if self.conflicted_chunks is not None:
            extra = f", {len(self.conflicted_chunks)} chunks"
        return f"Conflict({self.conflict_type.name}, {self.path!r}{extra})"


class RebasingSession(Protocol):
    """What a solver may do to the session being rebased."""

    def drop_chunk_changes(self, node_id: str, coords: np.ndarray) -> None:
        """Forget the session's writes of these chunks of an array (theirs win)."""


class ConflictSolver(ABC):
    """Decides what a rebase does about the conflicts with one newer commit."""

    @abstractmethod
    def solve(
        self,
        session: RebasingSession,
        conflicts: list[Conflict],
        their_snapshot_id: str,
    ) -> None:
        """Adjust the session's changes, or raise :class:`RebaseFailedError`."""
