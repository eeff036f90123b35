"""The node table: a snapshot's groups and arrays as a session sees them.

A :class:`NodeTable` starts as a copy of a snapshot's nodes, keyed by store prefix
(``""`` for the root, ``"a/b"`` for ``/a/b``), and follows the session's edits: new and
deleted nodes, rewritten metadata, moves. It resolves Zarr keys to nodes and chunk
coordinates; it records nothing about what changed (that is the change set's job).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInputError
from .format.snapshot import ManifestRef, Snapshot
from .keys import ChunkKeyFormat, store_prefix_of
from .manifest import cell_of

__all__ = ["ArrayLayout", "Node", "NodeTable", "layout_of", "parse_metadata"]


@dataclass(slots=True)
class ArrayLayout:
    """What the read and write paths need from an array's ``zarr.json``."""

    key_format: ChunkKeyFormat
    grid_shape: tuple[int, ...] | None  # None: not a regular grid, bounds unchecked
    dimension_names: tuple[str | None, ...] | None = None
    grammar: re.Pattern[str] = field(init=False)  # the key format's, at hand

    def __post_init__(self) -> None:
        self.grammar = self.key_format.grammar


@dataclass(slots=True)
class Node:
    """One group or array: its id, where it is, its metadata and its manifests."""

    id: str
    prefix: str
    node_type: str
    zarr_metadata: bytes
    manifests: tuple[ManifestRef, ...]
    layout: ArrayLayout | None = None
    split: tuple[int, ...] | None = None  # chunks per manifest box, if split
    by_cell: dict[tuple[int, ...], ManifestRef] | None = None

    @property
    def is_array(self) -> bool:
        return self.node_type == "array"

    def array_layout(self) -> ArrayLayout:
        """The layout of this array, parsed from its metadata once."""
        layout = self.layout
        if layout is None:
            layout = self.layout = layout_of(self.zarr_metadata)
        return layout

    def set_metadata(self, data: bytes) -> None:
        self.zarr_metadata = data
        self.layout = None

    def manifests_by_cell(self) -> dict[tuple[int, ...], ManifestRef] | None:
        """The manifests keyed by split box; None unless each box has at most one."""
        if self.split is None:
            return None
        if self.by_cell is None:
            by_cell = {cell_of(ref.extent, self.split): ref for ref in self.manifests}
            if None in by_cell or len(by_cell) != len(self.manifests):
                self.split = None  # not laid out as its split says: treat as unsplit
                return None
            self.by_cell = by_cell  # type: ignore[assignment]
        return self.by_cell

    def manifests_for(self, coords: tuple[int, ...]) -> Sequence[ManifestRef]:
        """The manifests that may hold the chunk at ``coords`` (at most one if split).

        Only a box lookup or an extent filter: whether the chunk is really there is the
        manifest's own (binary-search) answer.
        """
        manifests = self.manifests
        if len(manifests) <= 1 and self.split is None:
            return manifests
        by_cell = self.by_cell if self.by_cell is not None else self.manifests_by_cell()
        if by_cell is None:
            return [
                ref
                for ref in manifests
                if all(lo <= c < hi for c, (lo, hi) in zip(coords, ref.extent, strict=True))
            ]
        split = self.split or ()
        if len(coords) == 1:
            ref = by_cell.get((coords[0] // split[0] if split[0] > 0 else 0,))
        else:
            ref = by_cell.get(
                tuple(c // s if s > 0 else 0 for c, s in zip(coords, split, strict=True))
            )
        return () if ref is None else (ref,)


def parse_metadata(data: bytes) -> dict[str, Any]:
    """The JSON document of a ``zarr.json`` write, checked to be Zarr v3 metadata."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"zarr.json must hold a Zarr v3 JSON document: {exc}", kind="invalid-metadata"
        ) from exc
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3:
        raise InvalidInputError(
            "zarr.json must be a Zarr v3 document (zarr_format 3); "
            "icechunk_fast stores Zarr v3 only",
            kind="invalid-metadata",
        )
    if doc.get("node_type") not in ("group", "array"):
        raise InvalidInputError(
            "zarr.json must have node_type 'group' or 'array'", kind="invalid-metadata"
        )
    return doc


def layout_of(data: bytes) -> ArrayLayout:
    """The chunk key format, chunk grid and dimension names of array metadata."""
    doc = json.loads(data)
    shape = tuple(int(s) for s in doc.get("shape", ()))
    encoding = doc.get("chunk_key_encoding") or {"name": "default"}
    name = encoding.get("name", "default")
    config = encoding.get("configuration") or {}
    if name == "default":
        fmt = ChunkKeyFormat(len(shape), config.get("separator", "/"), True)
    elif name == "v2":
        fmt = ChunkKeyFormat(len(shape), config.get("separator", "."), False)
    else:
        raise InvalidInputError(f"unsupported chunk_key_encoding {name!r}")
    grid = doc.get("chunk_grid") or {}
    grid_shape = None
    if grid.get("name") == "regular":
        chunks = tuple(int(c) for c in grid["configuration"]["chunk_shape"])
        if len(chunks) == len(shape) and all(c > 0 for c in chunks):
            grid_shape = tuple(-(-s // c) for s, c in zip(shape, chunks, strict=True))
    names = doc.get("dimension_names")
    dimension_names = tuple(names) if isinstance(names, list) else None
    return ArrayLayout(fmt, grid_shape, dimension_names)


ChunkTarget = tuple[Node, str, "tuple[int, ...] | None"]


class NodeTable:
    """The live nodes of a session, by store prefix, starting from ``snapshot``."""

    __slots__ = ("base_ids", "live", "snapshot")

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.base_ids = {n.id for n in snapshot.nodes.values()}
        self.live: dict[str, Node] = {
            store_prefix_of(n.path): Node(
                n.id,
                store_prefix_of(n.path),
                n.node_type,
                n.zarr_metadata,
                n.manifests,
                split=n.split,
            )
            for n in snapshot.nodes.values()
        }

    def __len__(self) -> int:
        return len(self.live)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self.live.values()))

    def get(self, prefix: str) -> Node | None:
        return self.live.get(prefix)

    def by_id(self, node_id: str) -> Node | None:
        """The live node with id ``node_id`` (a scan: not for hot paths)."""
        return next((n for n in self.live.values() if n.id == node_id), None)

    def find_chunk(self, key: str) -> ChunkTarget | None:
        """The array owning chunk key ``key``, the chunk part and its coordinates.

        The owner is an array whose chunk key encoding accepts the rest of the key (so
        ``foo/c/0.0`` belongs to an array ``foo/c`` with v2 encoding even if ``foo`` is an
        array too); failing that, the deepest array above the key, with coordinates
        ``None`` so that writes can report the malformed chunk key.
        """
        live = self.live
        fallback: ChunkTarget | None = None
        # Fast path for the default encoding: the chunk part starts at the last "/c/".
        cut = key.rfind("/c/")
        if cut >= 0 or key == "c" or key.startswith("c/"):
            head, part = (key[:cut], key[cut + 1 :]) if cut >= 0 else ("", key)
            node = live.get(head)
            if node is not None and node.node_type == "array":
                match = (node.layout or node.array_layout()).grammar.fullmatch(part)
                if match is not None:
                    return node, part, tuple(map(int, match.groups()))
                fallback = node, part, None
        # General case (v2 encoding, 0-d arrays): try every split point, longest first.
        pos = len(key)
        while pos > 0:
            pos = key.rfind("/", 0, pos)
            node = live.get(key[:pos] if pos > 0 else "")
            if node is not None and node.node_type == "array":
                part = key[pos + 1 :] if pos >= 0 else key
                coords = node.array_layout().key_format.parse_one(part)
                if coords is not None:
                    return node, part, coords
                if fallback is None:
                    fallback = node, part, None
            if pos <= 0:
                break
        return fallback
