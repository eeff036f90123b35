"""Carrying a change set over a newer snapshot once its conflicts are settled."""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..changeset import ArrayChanges, ChangeSet, LoadManifest
from ..format.manifest import ManifestData
from ..format.snapshot import Snapshot
from ..manifest import merge_changes, take_rows, union_rows
from ..nodes import Node, NodeTable

__all__ = ["rebase_onto", "rebase_rewrite"]


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


def rebase_onto(
    nodes: NodeTable, changes: ChangeSet, snapshot: Snapshot, load_manifest: LoadManifest
) -> tuple[NodeTable, ChangeSet]:
    """Every change of ``changes``, now on top of ``snapshot`` (a descendant of the base).

    Returns the node table of ``snapshot`` with the changes applied, and the carried
    change set. Moves are not carried (a rebase over or with moves is a conflict).
    """
    old_manifests = {node.id: node.manifests for node in nodes}
    new_nodes = NodeTable(snapshot)
    carried = ChangeSet()
    by_id = {node.id: prefix for prefix, node in new_nodes.live.items()}
    for base in changes.deleted.values():
        prefix = by_id.get(base.id)
        if prefix is not None:
            carried.delete_node(new_nodes, prefix)
    for prefix, change in changes.changed.items():
        if change.is_new:
            new_nodes.live[prefix] = Node(
                change.node_id, prefix, change.node_type, change.zarr_metadata, ()
            )
        else:
            node = new_nodes.live.get(by_id.get(change.node_id, prefix))
            if node is None:
                continue  # deleted by them and the solver let it go
            node.set_metadata(change.zarr_metadata)
        carried.changed[prefix] = change
    live = {node.id: node for node in new_nodes}
    for node_id, array_changes in changes.chunks.items():
        node = live.get(node_id)
        if (
            array_changes.override is not None
            and node is not None
            and node.manifests != old_manifests.get(node_id, node.manifests)
        ):  # they changed the array's refs; carried.chunks is still empty, so
            # base_manifest gives theirs
            theirs = carried.base_manifest(node, load_manifest)
            array_changes.override = rebase_rewrite(array_changes, theirs)
    carried.chunks = {nid: c for nid, c in changes.chunks.items() if nid in live}
    return new_nodes, carried
