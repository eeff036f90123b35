"""Moves and metadata-only array rewrites: move, shift_array, reindex_array.

The :class:`~icechunk_fast.session.Session` methods of the same names check the
session's state, then call these with its node table and change set. Nothing here
copies chunk data: moves rename nodes (manifests are keyed by node id), rewrites move
the coordinate column of the array's refs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .changeset import ChangeSet
from .errors import AlreadyExistsError, InvalidInputError, NodeNotFoundError
from .format.manifest import ManifestData
from .keys import validate_store_key
from .manifest import remap_rows, take_rows, union_rows
from .nodes import ArrayLayout, Node, NodeTable

__all__ = ["array_at", "move", "node_at", "reindex_array", "shift_array"]

Effective = Callable[[Node], ManifestData]  # all refs of an array as the session sees them


def node_at(nodes: NodeTable, path: str, what: str = "node") -> Node:
    """The live node at absolute ``path``, or :class:`NodeNotFoundError`."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidInputError(f"{what} path must be absolute, like '/group/array': {path!r}")
    prefix = path.strip("/")
    if prefix:
        validate_store_key(prefix)
    node = nodes.get(prefix)
    if node is None:
        raise NodeNotFoundError(f"no {what} at {path!r}", kind="node-not-found")
    return node


def array_at(nodes: NodeTable, path: str) -> tuple[Node, ArrayLayout]:
    """The live array at absolute ``path`` and its layout."""
    node = node_at(nodes, path, "array")
    if not node.is_array:
        raise InvalidInputError(f"{path!r} is a group, not an array")
    return node, node.array_layout()


def move(nodes: NodeTable, changes: ChangeSet, from_path: str, to_path: str) -> None:
    """Rename the node at ``from_path`` (and everything under it) to ``to_path``."""
    node = node_at(nodes, from_path)
    if not isinstance(to_path, str) or not to_path.startswith("/") or to_path == "/":
        raise InvalidInputError(f"invalid destination path {to_path!r}")
    source, target = node.prefix, to_path.strip("/")
    validate_store_key(target)
    if nodes.get(target) is not None:
        raise AlreadyExistsError(f"{to_path!r} already exists", kind="node-already-exists")
    if target == source or target.startswith(source + "/"):
        raise InvalidInputError(f"cannot move {from_path!r} inside itself")
    owner = nodes.get(target.rpartition("/")[0])
    if owner is None or owner.node_type != "group":
        raise InvalidInputError(
            f"the parent of {to_path!r} must be an existing group", kind="invalid-move"
        )
    changes.move(nodes, source, target)


def shift_array(
    nodes: NodeTable,
    changes: ChangeSet,
    effective: Effective,
    array_path: str,
    chunk_offset: Sequence[int],
) -> None:
    """Move every chunk of an array by ``chunk_offset`` chunks, metadata only."""
    node, layout = array_at(nodes, array_path)
    grid = _regular_grid(layout, array_path)
    offset = np.asarray(list(chunk_offset), dtype=np.int64)
    if offset.shape != (len(grid),):
        raise InvalidInputError(
            f"chunk_offset needs {len(grid)} values for array {array_path}, got {offset}"
        )
    current = effective(node)
    moved = current.coords + offset
    inside = np.all((moved >= 0) & (moved < np.asarray(grid, dtype=np.int64)), axis=1)
    # adding a constant keeps rows sorted and unique: no merge needed
    shifted = take_rows(current, inside, moved[inside])
    touched = union_rows([current.coords, moved[inside]])
    changes.changes_of(node).replace_base(shifted, touched)


def reindex_array(
    nodes: NodeTable,
    changes: ChangeSet,
    effective: Effective,
    array_path: str,
    forward: Callable[[list[int]], Sequence[int] | None],
    backward: Callable[[list[int]], Sequence[int] | None] | None = None,
) -> None:
    """Move chunks to new positions given by ``forward(old_coords)``, metadata only."""
    node, layout = array_at(nodes, array_path)
    grid = _regular_grid(layout, array_path)
    current = effective(node)
    coords = current.coords.tolist()
    src: list[int] = []
    dst: list[list[int]] = []
    for row, c in enumerate(coords):
        target = forward(list(c))
        if target is not None:
            src.append(row)
            dst.append(_checked_coords(target, grid, array_path))
    clear: list[list[int]] = []
    if backward is not None:
        existing = set(map(tuple, coords))
        for c in coords:
            origin = backward(list(c))
            if origin is None or tuple(origin) not in existing:
                clear.append(c)
    ndim = len(grid)
    dst_arr = np.asarray(dst, dtype=np.int64).reshape(-1, ndim)
    clear_arr = np.asarray(clear, dtype=np.int64).reshape(-1, ndim)
    try:
        result = remap_rows(current, np.asarray(src, dtype=np.int64), dst_arr, clear_arr)
    except ValueError as exc:
        raise InvalidInputError(f"reindex_array({array_path!r}): {exc}") from None
    changes.changes_of(node).replace_base(result, union_rows([dst_arr, clear_arr]))


def _regular_grid(layout: ArrayLayout, path: str) -> tuple[int, ...]:
    if layout.grid_shape is None:
        raise InvalidInputError(
            f"array {path!r} does not have a regular chunk grid; only those can be "
            "shifted or reindexed"
        )
    return layout.grid_shape


def _checked_coords(coords: Sequence[int], grid: tuple[int, ...], path: str) -> list[int]:
    out = [int(c) for c in coords]
    if len(out) != len(grid) or any(not 0 <= c < g for c, g in zip(out, grid, strict=True)):
        raise InvalidInputError(
            f"chunk coordinates {list(coords)} are outside the chunk grid {grid} of {path!r}"
        )
    return out
