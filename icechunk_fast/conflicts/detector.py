"""Finding the conflicts between a session's change set and one newer commit.

Three passes, one per kind of change on our side: node changes (new nodes and
metadata rewrites), chunk changes, and node deletes. Each compares with their
transaction log and the snapshot their commit produced.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..changeset import ChangeSet
from ..format.snapshot import Snapshot
from ..format.transaction_log import TransactionLog
from ..nodes import NodeTable
from ._types import Conflict, ConflictType

__all__ = ["find_conflicts"]


def find_conflicts(
    changes: ChangeSet, nodes: NodeTable, theirs: TransactionLog, their_snapshot: Snapshot
) -> list[Conflict]:
    """Every conflict between our ``changes`` (over ``nodes``) and one newer commit."""
    if theirs.moved_nodes or changes.moves:
        return [Conflict(ConflictType.MoveOperationCannotBeRebased, "/")]
    return [
        *_node_conflicts(changes, nodes, theirs, their_snapshot),
        *_chunk_conflicts(changes, nodes, theirs, their_snapshot),
        *_delete_conflicts(changes, theirs, their_snapshot),
    ]


def _node_conflicts(
    changes: ChangeSet, nodes: NodeTable, theirs: TransactionLog, their_snapshot: Snapshot
) -> list[Conflict]:
    """Our new nodes and metadata rewrites against their nodes."""
    conflicts: list[Conflict] = []
    their_ids = {n.id for n in their_snapshot.nodes.values()}
    their_paths = their_snapshot.nodes
    their_deleted_paths = {*theirs.deleted_groups.values(), *theirs.deleted_arrays.values()}
    their_updated_meta = {*theirs.updated_groups, *theirs.updated_arrays}
    # A node we deleted (and maybe replaced with a new one at the same path) is not an
    # obstacle in their snapshot: deleting it conflicts only if they updated it, which
    # the delete pass reports.
    our_deleted = {base.id for base in changes.deleted.values()}
    for prefix, change in changes.changed.items():
        path = "/" + prefix
        if change.is_new:
            existing = their_paths.get(path)
            if existing is not None and existing.id not in our_deleted:
                conflicts.append(Conflict(ConflictType.NewNodeConflictsWithExistingNode, path))
                continue
            if path == "/":
                continue
            parent_prefix = prefix.rpartition("/")[0]
            our_parent = changes.changed.get(parent_prefix)
            if our_parent is not None and our_parent.is_new:
                continue  # under a node we created: checked on its own
            parent = "/" + parent_prefix
            their_parent = their_paths.get(parent)
            parent_gone = their_parent is None and parent in their_deleted_paths
            # they replaced the group with an array of their own
            parent_is_array = (
                their_parent is not None
                and their_parent.node_type == "array"
                and their_parent.id not in nodes.base_ids
            )
            if parent_gone or parent_is_array:
                conflicts.append(Conflict(ConflictType.NewNodeInInvalidGroup, path))
            continue
        if change.node_id not in their_ids:
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
    return conflicts


def _chunk_conflicts(
    changes: ChangeSet, nodes: NodeTable, theirs: TransactionLog, their_snapshot: Snapshot
) -> list[Conflict]:
    """Our chunk writes and deletes against their array changes."""
    conflicts: list[Conflict] = []
    their_ids = {n.id for n in their_snapshot.nodes.values()}
    by_id = {n.id: n for n in nodes}
    for node_id, array_changes in changes.chunks.items():
        if not len(array_changes):
            continue
        node = by_id.get(node_id)
        if node is None or node_id not in nodes.base_ids:
            continue  # a new array: nobody else can have touched it
        path = "/" + node.prefix
        if node_id not in their_ids:
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
            ours = array_changes.touched_coords(node.array_layout().key_format)
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
    return conflicts


def _delete_conflicts(
    changes: ChangeSet, theirs: TransactionLog, their_snapshot: Snapshot
) -> list[Conflict]:
    """Our node deletes against their updates of the same nodes."""
    conflicts: list[Conflict] = []
    their_ids = {n.id for n in their_snapshot.nodes.values()}
    their_updated_meta = {*theirs.updated_groups, *theirs.updated_arrays}
    for prefix, base in changes.deleted.items():
        if base.id not in their_ids:
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


def _shared_rows(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``ours`` that also occur in ``theirs``."""
    if not len(ours) or not len(theirs) or ours.shape[1] != theirs.shape[1]:
        return np.zeros(len(ours), dtype=bool)
    their_sorted = theirs[kernels.sort_coords(theirs)]
    return kernels.lookup_coords(their_sorted, ours) >= 0
