"""What a session has changed but not committed: the change set.

:class:`ChangeSet` records new, rewritten, deleted and moved nodes and, per array, an
:class:`ArrayChanges` of chunk writes and deletes. It edits the session's
:class:`~icechunk_fast.nodes.NodeTable` alongside its own records, so the two always
agree; flushing, rebasing and conflict detection read it, nothing else writes it.

Chunk refs are kept as append-only typed columns (``array.array``, turned into NumPy
without copying at commit) plus one dict from chunk key to the row of its latest write.
Coordinates are not parsed on the write path: the commit parses every live key at once
with the key-parsing kernel.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import kernels
from .format.ids import new_node_id
from .format.manifest import INLINE, NATIVE, TOMBSTONE, ManifestData
from .format.snapshot import NodeSnapshot
from .format.transaction_log import TransactionLog
from .keys import ChunkKeyFormat, node_path_of
from .manifest import concat_manifests, merge_changes, union_rows
from .nodes import Node, NodeTable, layout_of, parse_metadata

__all__ = ["ArrayChanges", "ChangeSet", "NodeChange"]

LoadManifest = Callable[[str], ManifestData]


@dataclass(slots=True)
class NodeChange:
    """A group or array created or whose metadata was rewritten in this session."""

    node_id: str
    node_type: str
    zarr_metadata: bytes
    is_new: bool


class ArrayChanges:
    """Chunk writes and deletes of one array during a session."""

    __slots__ = (
        "index",
        "inline",
        "keys",
        "kind",
        "length",
        "offset",
        "override",
        "seq",
        "source",
        "touched",
    )

    def __init__(self) -> None:
        # Whole-array rewrites (shift, reindex) replace the base manifest in memory;
        # keyed writes then apply on top of it.
        self.override: ManifestData | None = None
        self.touched: list[np.ndarray] = []  # coordinates the rewrites changed
        self._reset_keyed()

    def _reset_keyed(self) -> None:
        self.keys: list[str] = []
        self.index: dict[str, int] = {}
        self.kind = array("B")
        self.source = array("I")
        self.seq = array("I")
        self.offset = array("Q")
        self.length = array("Q")
        self.inline = bytearray()

    def __len__(self) -> int:
        """Number of keyed changes, plus one if the base was rewritten."""
        return len(self.index) + (self.override is not None)

    def replace_base(self, manifest: ManifestData, touched: np.ndarray) -> None:
        """Make ``manifest`` the array's refs from now on, dropping keyed changes."""
        self.override = manifest
        self.touched.append(touched)
        self._reset_keyed()

    def touched_coords(
        self, fmt: ChunkKeyFormat, keyed_coords: np.ndarray | None = None
    ) -> np.ndarray:
        """Sorted unique coordinates of every chunk this session wrote, deleted or moved.

        ``keyed_coords``: the sorted coordinates of the keyed changes, if the caller has
        them already (from :meth:`to_columns`), so they are not parsed twice.
        """
        if keyed_coords is None:
            keyed_coords = fmt.parse_many(list(self.index))
            if not self.touched:
                return union_rows([keyed_coords])
        if not self.touched:
            return keyed_coords  # already sorted and unique
        return union_rows([*self.touched, keyed_coords])

    def _append(self, key: str, kind: int, source: int, seq: int, offset: int, length: int) -> None:
        row = len(self.keys)
        self.keys.append(key)
        self.kind.append(kind)
        self.source.append(source)
        self.seq.append(seq)
        self.offset.append(offset)
        self.length.append(length)
        self.index[key] = row  # last: a lock-free reader never sees a half-written row

    def set_native(self, key: str, prefix_index: int, seq: int, offset: int, length: int) -> None:
        self._append(key, NATIVE, prefix_index, seq, offset, length)

    def set_inline(self, key: str, data: bytes) -> None:
        offset = len(self.inline)
        self.inline += data
        self._append(key, INLINE, 0, 0, offset, len(data))

    def delete(self, key: str) -> None:
        self._append(key, TOMBSTONE, 0, 0, 0, 0)

    def row(self, key: str) -> int | None:
        return self.index.get(key)

    def written_keys(self) -> list[str]:
        """Keys whose latest change is a write (not a delete)."""
        kind = self.kind
        return [k for k, r in self.index.items() if kind[r] != TOMBSTONE]

    def to_columns(
        self, fmt: ChunkKeyFormat, prefixes: np.ndarray
    ) -> tuple[ManifestData, np.ndarray]:
        """Sorted, unique change columns and their delete mask, ready to merge."""
        keys = list(self.index)
        rows = np.fromiter(self.index.values(), dtype=np.int64, count=len(keys))
        coords = fmt.parse_many(keys)
        order = kernels.sort_coords(coords)
        rows = rows[order]

        def col(values: array, dtype: type) -> np.ndarray:
            return np.frombuffer(values, dtype=dtype)[rows] if len(values) else np.zeros(0, dtype)

        kind = col(self.kind, np.uint8)
        changes = ManifestData(
            coords=np.ascontiguousarray(coords[order]),
            kind=kind,
            source=col(self.source, np.uint32),
            seq=col(self.seq, np.uint32),
            offset=col(self.offset, np.uint64),
            length=col(self.length, np.uint64),
            prefixes=prefixes,
            inline=bytes(self.inline),
        )
        return changes, kind == TOMBSTONE

    def reads(self, key: str) -> tuple[int, int, int, int, int] | None:
        """``(kind, source, seq, offset, length)`` of the latest change of ``key``."""
        r = self.index.get(key)
        if r is None:
            return None
        return self.kind[r], self.source[r], self.seq[r], self.offset[r], self.length[r]


class ChangeSet:
    """Every uncommitted change of a session.

    Attributes
    ----------
    changed
        Nodes created or whose metadata was rewritten, by current store prefix.
    deleted
        Nodes of the base snapshot that were deleted, by their prefix at deletion.
    chunks
        Chunk writes and deletes (and whole-array rewrites), by node id.
    moves
        ``(from_path, to_path)`` of every move, in order.
    """

    __slots__ = ("changed", "chunks", "deleted", "moves")

    def __init__(self) -> None:
        self.changed: dict[str, NodeChange] = {}
        self.deleted: dict[str, NodeSnapshot] = {}
        self.chunks: dict[str, ArrayChanges] = {}
        self.moves: list[tuple[str, str]] = []

    def is_empty(self) -> bool:
        return not (
            self.changed or self.deleted or self.moves or any(len(c) for c in self.chunks.values())
        )

    def array_changes(self, node_id: str) -> ArrayChanges | None:
        return self.chunks.get(node_id)

    def changes_of(self, node: Node) -> ArrayChanges:
        """The chunk changes of ``node``, created empty on first use."""
        changes = self.chunks.get(node.id)
        if changes is None:
            changes = self.chunks[node.id] = ArrayChanges()
        return changes

    # -- node edits (applied to the node table too) --------------------------------
    def set_metadata(self, nodes: NodeTable, prefix: str, data: bytes) -> None:
        """Create the node at ``prefix`` or rewrite its ``zarr.json``.

        A node of the other type at ``prefix`` is deleted and replaced.
        """
        doc = parse_metadata(data)
        node_type = doc["node_type"]
        data = bytes(data)
        if node_type == "array":
            layout_of(data)  # refuse unusable array metadata now, not at first chunk
        node = nodes.live.get(prefix)
        if node is not None and node.node_type == node_type:
            if node.zarr_metadata == data:
                return
            node.set_metadata(data)
            is_new = node.id not in nodes.base_ids
            self.changed[prefix] = NodeChange(node.id, node_type, data, is_new)
            return
        if node is not None:
            self.delete_node(nodes, prefix)
        node = Node(new_node_id(), prefix, node_type, data, ())
        nodes.live[prefix] = node
        self.changed[prefix] = NodeChange(node.id, node_type, data, True)

    def delete_node(self, nodes: NodeTable, prefix: str) -> None:
        """Delete the node at ``prefix`` (not its descendants); absent is fine."""
        node = nodes.live.pop(prefix, None)
        if node is None:
            return
        self.changed.pop(prefix, None)
        self.chunks.pop(node.id, None)
        if node.id in nodes.base_ids:
            self.deleted[prefix] = nodes.snapshot.nodes[node_path_of(prefix)]

    def move(self, nodes: NodeTable, source: str, target: str) -> None:
        """Rename the node at prefix ``source``, and everything under it, to ``target``."""
        live = nodes.live
        for prefix in [p for p in live if p == source or p.startswith(source + "/")]:
            moved = live.pop(prefix)
            moved.prefix = target + prefix[len(source) :]
            live[moved.prefix] = moved
            change = self.changed.pop(prefix, None)
            if change is not None:
                self.changed[moved.prefix] = change
        self.moves.append((node_path_of(source), node_path_of(target)))

    def drop_chunks(self, nodes: NodeTable, node_id: str, coords: np.ndarray) -> None:
        """Forget our writes of the chunks at ``coords`` of an array (theirs win)."""
        changes = self.chunks.get(node_id)
        node = nodes.by_id(node_id)
        if changes is None or node is None or not len(coords):
            return
        fmt = node.array_layout().key_format
        for key in fmt.format_many(coords):
            changes.index.pop(key, None)
        if changes.touched:  # a shift or reindex: their refs win at these coordinates
            touched = union_rows(changes.touched)
            dropped = coords[kernels.sort_coords(coords)]
            changes.touched = [touched[kernels.lookup_coords(dropped, touched) < 0]]

    # -- what the changes amount to -------------------------------------------------
    def node_log(self) -> TransactionLog:
        """The node-level part of the transaction log (no chunks yet)."""
        log = TransactionLog()
        for prefix, change in self.changed.items():
            group = change.node_type == "group"
            if change.is_new:
                target = log.new_groups if group else log.new_arrays
            else:
                target = log.updated_groups if group else log.updated_arrays
            target[change.node_id] = node_path_of(prefix)
        for prefix, base in self.deleted.items():
            target = log.deleted_groups if base.node_type == "group" else log.deleted_arrays
            target[base.id] = node_path_of(prefix)
        log.moved_nodes = list(self.moves)
        return log

    def base_manifest(self, node: Node, load_manifest: LoadManifest) -> ManifestData | None:
        """The refs the array starts from: a rewrite of this session, or its manifests."""
        changes = self.chunks.get(node.id)
        if changes is not None and changes.override is not None:
            return changes.override
        if not node.manifests:
            return None
        return concat_manifests([load_manifest(ref.id) for ref in node.manifests])

    def effective_manifest(
        self,
        node: Node,
        load_manifest: LoadManifest,
        prefixes: np.ndarray,
        columns: tuple[ManifestData, np.ndarray] | None = None,
    ) -> ManifestData:
        """All refs of the array as the session sees them, as one manifest.

        ``columns``: the array's :meth:`ArrayChanges.to_columns`, if already built.
        """
        base = self.base_manifest(node, load_manifest)
        changes = self.chunks.get(node.id)
        if changes is None or not changes.index:
            if base is not None:
                return base
            return ManifestData.empty(node.array_layout().key_format.ndim)
        if columns is None:
            columns = changes.to_columns(node.array_layout().key_format, prefixes)
        return merge_changes(base, *columns)
