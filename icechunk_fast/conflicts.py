"""Conflict detection and resolution for rebasing a session over newer commits.

A rebase replays the session's changes over each commit made on its branch since the
session started, oldest first. For each one, the session's changes ("ours") are
compared with that commit's transaction log ("theirs"); a solver decides what to do
with every conflict, or gives up with :class:`RebaseFailedError`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import kernels
from .diff import union_rows
from .errors import RebaseFailedError
from .format.manifest import ManifestData
from .manifest import merge_changes, take_rows

if TYPE_CHECKING:
    from .changeset import ArrayChanges
    from .format.snapshot import Snapshot
    from .format.transaction_log import TransactionLog
    from .session import Session

__all__ = [
    "BasicConflictSolver",
    "Conflict",
    "ConflictDetector",
    "ConflictSolver",
    "ConflictType",
    "VersionSelection",
]


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


def _our_chunk_coords(session: Session, node_id: str) -> tuple[list[str], np.ndarray]:
    """Keys and coordinates of every chunk the session wrote or deleted in an array."""
    changes = session._chunks.get(node_id)
    if changes is None or not len(changes):
        return [], np.zeros((0, 0), np.int64)
    node = next(n for n in session._live.values() if n.id == node_id)
    return list(changes.index), changes.touched_coords(session._layout(node).key_format)


def _shared_rows(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``ours`` that also occur in ``theirs``."""
    if not len(ours) or not len(theirs) or ours.shape[1] != theirs.shape[1]:
        return np.zeros(len(ours), dtype=bool)
    their_sorted = theirs[kernels.sort_coords(theirs)]
    return kernels.lookup_coords(their_sorted, ours) >= 0


def rebase_rewrite(changes: ArrayChanges, theirs: ManifestData | None) -> ManifestData:
    """The refs of a session's whole-array rewrite (``shift_array``, ``reindex_array``)
    carried over onto their newer refs ``theirs``: ours at the coordinates the rewrites
    touched, theirs everywhere else."""
    override = changes.override
    assert override is not None
    if theirs is None:
        theirs = ManifestData.empty(override.ndim)
    if not changes.touched:
        return theirs
    touched = union_rows(changes.touched)
    touched = touched[kernels.sort_coords(touched)]
    kept = take_rows(theirs, kernels.lookup_coords(touched, theirs.coords) < 0)
    ours = take_rows(override, kernels.lookup_coords(touched, override.coords) >= 0)
    return merge_changes(kept, ours, np.zeros(len(ours), dtype=bool))


def find_conflicts(
    session: Session, theirs: TransactionLog, their_snapshot: Snapshot
) -> list[Conflict]:
    """Every conflict between the session's changes and one newer commit."""
    conflicts: list[Conflict] = []
    if theirs.moved_nodes or session._moves:
        return [Conflict(ConflictType.MoveOperationCannotBeRebased, "/")]
    their_nodes = {n.id: n for n in their_snapshot.nodes.values()}
    their_paths = their_snapshot.nodes
    their_deleted = {**theirs.deleted_groups, **theirs.deleted_arrays}
    their_updated_meta = {**theirs.updated_groups, **theirs.updated_arrays}

    # A node we deleted (and maybe replaced with a new one at the same path) is not an
    # obstacle in their snapshot: deleting it conflicts only if they updated it, which
    # the delete checks below report.
    our_deleted = {base.id for base in session._deleted.values()}
    their_deleted_paths = set(their_deleted.values())
    for prefix, change in session._changed.items():
        path = "/" + prefix
        if change.is_new:
            existing = their_paths.get(path)
            if existing is not None and existing.id not in our_deleted:
                conflicts.append(Conflict(ConflictType.NewNodeConflictsWithExistingNode, path))
                continue
            if path == "/":
                continue
            parent_prefix = prefix.rpartition("/")[0]
            our_parent = session._changed.get(parent_prefix)
            if our_parent is not None and our_parent.is_new:
                continue  # under a node we created: checked on its own
            parent = "/" + parent_prefix
            their_parent = their_paths.get(parent)
            parent_gone = their_parent is None and parent in their_deleted_paths
            # they replaced the group with an array of their own
            parent_is_array = (
                their_parent is not None
                and their_parent.node_type == "array"
                and their_parent.id not in session._base_ids
            )
            if parent_gone or parent_is_array:
                conflicts.append(Conflict(ConflictType.NewNodeInInvalidGroup, path))
            continue
        if change.node_id not in their_nodes:
            kind = (
                ConflictType.ZarrMetadataUpdateOfDeletedGroup
                if change.node_type == "group"
                else ConflictType.ZarrMetadataUpdateOfDeletedArray
            )
            conflicts.append(Conflict(kind, path, node_id=change.node_id))
        elif change.node_id in their_updated_meta:
            conflicts.append(
                Conflict(ConflictType.ZarrMetadataDoubleUpdate, path, node_id=change.node_id)
            )

    for node_id, changes in session._chunks.items():
        if not len(changes):
            continue
        node = next((n for n in session._live.values() if n.id == node_id), None)
        if node is None or node_id not in session._base_ids:
            continue  # a new array: nobody else can have touched it
        path = "/" + node.prefix
        if node_id not in their_nodes:
            conflicts.append(
                Conflict(ConflictType.ChunksUpdatedInDeletedArray, path, node_id=node_id)
            )
            continue
        if node_id in theirs.updated_arrays:
            conflicts.append(
                Conflict(ConflictType.ChunksUpdatedInUpdatedArray, path, node_id=node_id)
            )
        their_chunks = theirs.updated_chunks.get(node_id)
        if their_chunks is not None and len(their_chunks):
            _, ours = _our_chunk_coords(session, node_id)
            shared = _shared_rows(ours, their_chunks)
            if shared.any():
                conflicts.append(
                    Conflict(
                        ConflictType.ChunkDoubleUpdate,
                        path,
                        ours[shared].tolist(),
                        node_id=node_id,
                    )
                )

    for prefix, base in session._deleted.items():
        if base.id not in their_nodes:
            continue  # deleted on both sides
        touched = base.id in their_updated_meta or (
            base.id in theirs.updated_chunks and len(theirs.updated_chunks[base.id])
        )
        if touched:
            kind = (
                ConflictType.DeleteOfUpdatedGroup
                if base.node_type == "group"
                else ConflictType.DeleteOfUpdatedArray
            )
            conflicts.append(Conflict(kind, "/" + prefix, node_id=base.id))
    return conflicts


class ConflictSolver(ABC):
    """Decides what a rebase does about the conflicts with one newer commit."""

    @abstractmethod
    def solve(
        self,
        session: Session,
        conflicts: list[Conflict],
        their_snapshot_id: str,
    ) -> None:
        """Adjust the session's changes, or raise :class:`RebaseFailedError`."""


class ConflictDetector(ConflictSolver):
    """Rebases only when the changes do not overlap at all; otherwise fails with all
    conflicts listed."""

    def solve(self, session: Session, conflicts: list[Conflict], their_snapshot_id: str) -> None:
        if conflicts:
            raise RebaseFailedError(
                _failure_message(their_snapshot_id, conflicts),
                snapshot=their_snapshot_id,
                conflicts=conflicts,
            )


class BasicConflictSolver(ConflictSolver):
    """Solves chunk double writes and deletes of updated nodes by policy.

    Parameters
    ----------
    on_chunk_conflict
        A chunk written on both sides: keep ours (default), keep theirs, or fail.
    fail_on_delete_of_updated_array, fail_on_delete_of_updated_group
        We deleted a node the other commit updated: fail if True, else our delete
        wins (default).

    Every other conflict fails the rebase.
    """

    def __init__(
        self,
        *,
        on_chunk_conflict: VersionSelection = VersionSelection.UseOurs,
        fail_on_delete_of_updated_array: bool = False,
        fail_on_delete_of_updated_group: bool = False,
    ) -> None:
        self.on_chunk_conflict = on_chunk_conflict
        self.fail_on_delete_of_updated_array = fail_on_delete_of_updated_array
        self.fail_on_delete_of_updated_group = fail_on_delete_of_updated_group

    def __repr__(self) -> str:
        return (
            f"BasicConflictSolver(on_chunk_conflict={self.on_chunk_conflict}, "
            f"fail_on_delete_of_updated_array={self.fail_on_delete_of_updated_array}, "
            f"fail_on_delete_of_updated_group={self.fail_on_delete_of_updated_group})"
        )

    def solve(self, session: Session, conflicts: list[Conflict], their_snapshot_id: str) -> None:
        unsolved: list[Conflict] = []
        take_theirs: list[Conflict] = []
        for c in conflicts:
            kind = c.conflict_type
            if kind is ConflictType.ChunkDoubleUpdate:
                if self.on_chunk_conflict is VersionSelection.Fail:
                    unsolved.append(c)
                elif self.on_chunk_conflict is VersionSelection.UseTheirs:
                    take_theirs.append(c)
            elif kind is ConflictType.DeleteOfUpdatedArray:
                if self.fail_on_delete_of_updated_array:
                    unsolved.append(c)
            elif kind is ConflictType.DeleteOfUpdatedGroup:
                if self.fail_on_delete_of_updated_group:
                    unsolved.append(c)
            else:
                unsolved.append(c)
        if unsolved:
            raise RebaseFailedError(
                _failure_message(their_snapshot_id, unsolved),
                snapshot=their_snapshot_id,
                conflicts=unsolved,
            )
        for c in take_theirs:
            assert c.node_id is not None and c.conflicted_chunks is not None
            session._drop_chunk_changes(c.node_id, np.asarray(c.conflicted_chunks, np.int64))


def _failure_message(snapshot_id: str, conflicts: list[Conflict]) -> str:
    shown = ", ".join(f"{c.conflict_type.name} at {c.path}" for c in conflicts[:5])
    more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
    return (
        f"rebase over snapshot {snapshot_id} failed with {len(conflicts)} conflict"
        f"{'s' if len(conflicts) != 1 else ''}: {shown}{more}"
    )
