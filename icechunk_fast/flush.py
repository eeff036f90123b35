"""Turning a session's changes into new manifests, a transaction log and a snapshot.

:func:`build_snapshot` is the whole commit except its two ends: the session stores
chunk packs before it, and :func:`~icechunk_fast.history.publish` swaps the snapshot
into the history after it. Manifests are written (and cached) through the object layer;
the snapshot and the log are returned for the caller to store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from .assets import AssetManager
from .changeset import ArrayChanges, ChangeSet
from .format.ids import new_snapshot_id
from .format.manifest import ManifestData
from .format.snapshot import ManifestRef, NodeSnapshot, NodeType, Snapshot
from .format.transaction_log import TransactionLog
from .keys import node_path_of
from .manifest import cell_groups, merge_changes, split_manifest, take_rows
from .manifest_policy import ManifestSplittingConfig, default_split_sizes
from .nodes import Node, NodeTable

__all__ = ["build_snapshot", "split_of"]


def split_of(node: Node, splitting: ManifestSplittingConfig | None) -> tuple[int, ...] | None:
    """Chunks per manifest box the policy asks for this array (None: one manifest)."""
    layout = node.array_layout()
    if splitting is None:
        return default_split_sizes(layout.grid_shape)
    return splitting.split_sizes_for(
        "/" + node.prefix, layout.dimension_names, layout.key_format.ndim
    )


def build_snapshot(
    nodes: NodeTable,
    changes: ChangeSet,
    assets: AssetManager,
    *,
    prefixes: np.ndarray,
    splitting: ManifestSplittingConfig | None,
    message: str,
    metadata: dict[str, Any],
    parent_id: str | None,
) -> tuple[Snapshot, TransactionLog]:
    """The new snapshot of ``nodes`` with ``changes``, and its transaction log.

    Manifests of every array with chunk changes are merged and written; unchanged
    arrays keep their manifests.
    """
    log = changes.node_log()
    out: dict[str, NodeSnapshot] = {}
    for node in nodes:
        path = node_path_of(node.prefix)
        manifests, split = node.manifests, node.split
        array_changes = changes.array_changes(node.id)
        if node.is_array and array_changes is not None and len(array_changes):
            fmt = node.array_layout().key_format
            # parsed and sorted once, for the manifests and the log alike
            columns = array_changes.to_columns(fmt, prefixes)
            manifests, split = _write_manifests(
                node, array_changes, columns, changes, assets, prefixes, split_of(node, splitting)
            )
            log.updated_chunks[node.id] = array_changes.touched_coords(fmt, columns[0].coords)
        node_type: NodeType = "array" if node.is_array else "group"
        out[path] = NodeSnapshot(node.id, path, node_type, node.zarr_metadata, manifests, split)
    snapshot = Snapshot(new_snapshot_id(), parent_id, datetime.now(UTC), message, metadata, out)
    return snapshot, log


def _write_manifests(
    node: Node,
    array_changes: ArrayChanges,
    columns: tuple[ManifestData, np.ndarray],
    changes: ChangeSet,
    assets: AssetManager,
    prefixes: np.ndarray,
    split: tuple[int, ...] | None,
) -> tuple[tuple[ManifestRef, ...], tuple[int, ...] | None]:
    """New manifests of an array with changes, and the split they follow.

    With a split that the array's manifests already follow, only the boxes holding
    changed chunks are merged and rewritten; other boxes keep their manifests.
    Otherwise (first split, a changed policy, a shift or reindex) the array's refs
    are rewritten whole.
    """
    load = assets.load_manifest
    if split is None:
        merged = changes.effective_manifest(node, load, prefixes, columns)
        return _put_manifests(assets, [merged]), None
    by_cell = node.manifests_by_cell() if node.split == split else None
    if by_cell is None or array_changes.override is not None:
        whole = changes.effective_manifest(node, load, prefixes, columns)
        return _put_manifests(assets, [m for _, m in split_manifest(whole, split)]), split
    remaining = dict(by_cell)
    changed, deleted = columns
    merged_cells = []
    for cell, rows in cell_groups(changed.coords, split):
        old = remaining.pop(cell, None)
        base = None if old is None else load(old.id)
        merged_cells.append(merge_changes(base, take_rows(changed, rows), deleted[rows]))
    new = _put_manifests(assets, merged_cells)
    return tuple(sorted((*new, *remaining.values()), key=lambda r: r.extent)), split


def _put_manifests(
    assets: AssetManager, manifests: Sequence[ManifestData]
) -> tuple[ManifestRef, ...]:
    """Write the non-empty ``manifests``; their refs, in order."""
    return tuple(
        ManifestRef(assets.write_manifest(m), m.extent(), len(m)) for m in manifests if len(m)
    )
