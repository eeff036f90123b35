"""Moves and metadata-only array rewrites: move, shift_array, reindex_array, chunk queries.

The :class:`~icechunk_fast.session.Session` methods of the same names call these.
Nothing here copies chunk data: moves rename nodes (manifests are keyed by node id),
rewrites move the coordinate column of the array's refs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .diff import union_rows
from .errors import AlreadyExistsError, InvalidInputError, NodeNotFoundError, SessionStateError
from .format.manifest import VIRTUAL
from .keys import node_path_of, validate_store_key
from .manifest import remap_rows, take_rows
from .records import ChunkType

if TYPE_CHECKING:
    from .session import Session, _ArrayLayout, _Node

__all__ = ["chunk_coordinates", "chunk_type", "move", "reindex_array", "shift_array"]


def _join(prefix: str, part: str) -> str:
    return f"{prefix}/{part}" if prefix else part


def _node_at(session: Session, path: str, what: str = "node") -> _Node:
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidInputError(f"{what} path must be absolute, like '/group/array': {path!r}")
    prefix = path.strip("/")
    if prefix:
        validate_store_key(prefix)
    node = session._live.get(prefix)
    if node is None:
        raise NodeNotFoundError(f"no {what} at {path!r}", kind="node-not-found")
    return node


def _array_at(session: Session, path: str) -> tuple[_Node, _ArrayLayout]:
    node = _node_at(session, path, "array")
    if node.node_type != "array":
        raise InvalidInputError(f"{path!r} is a group, not an array")
    return node, session._layout(node)


def move(session: Session, from_path: str, to_path: str) -> None:
    """The work of :meth:`Session.move`."""
    session._check_writable()
    session._check_acknowledged()
    if not session._rearrange:
        raise SessionStateError(
            "moves need a rearrange session: repo.rearrange_session(branch)",
            kind="move-needs-rearrange-session",
        )
    session._repo._require_spec(2, "moving nodes")
    with session._lock:
        node = _node_at(session, from_path)
        if not isinstance(to_path, str) or not to_path.startswith("/") or to_path == "/":
            raise InvalidInputError(f"invalid destination path {to_path!r}")
        source, target = node.prefix, to_path.strip("/")
        validate_store_key(target)
        if target in session._live:
            raise AlreadyExistsError(f"{to_path!r} already exists", kind="node-already-exists")
        if target == source or target.startswith(source + "/"):
            raise InvalidInputError(f"cannot move {from_path!r} inside itself")
        owner = session._live.get(target.rpartition("/")[0])
        if owner is None or owner.node_type != "group":
            raise InvalidInputError(
                f"the parent of {to_path!r} must be an existing group", kind="invalid-move"
            )
        for prefix in [p for p in session._live if p == source or p.startswith(source + "/")]:
            moved = session._live.pop(prefix)
            moved.prefix = target + prefix[len(source) :]
            session._live[moved.prefix] = moved
            change = session._changed.pop(prefix, None)
            if change is not None:
                session._changed[moved.prefix] = change
        session._moves.append((node_path_of(source), node_path_of(target)))


def shift_array(session: Session, array_path: str, chunk_offset: Sequence[int]) -> None:
    """The work of :meth:`Session.shift_array`."""
    session._check_data_writable()
    with session._lock:
        node, layout = _array_at(session, array_path)
        grid = _regular_grid(layout, array_path)
        offset = np.asarray(list(chunk_offset), dtype=np.int64)
        if offset.shape != (len(grid),):
            raise InvalidInputError(
                f"chunk_offset needs {len(grid)} values for array {array_path}, got {offset}"
            )
        current = session._effective_manifest(node)
        moved = current.coords + offset
        inside = np.all((moved >= 0) & (moved < np.asarray(grid, dtype=np.int64)), axis=1)
        # adding a constant keeps rows sorted and unique: no merge needed
        shifted = take_rows(current, inside, moved[inside])
        touched = union_rows([current.coords, moved[inside]])
        session._changes_of(node).replace_base(shifted, touched)


def reindex_array(
    session: Session,
    array_path: str,
    forward: Callable[[list[int]], Sequence[int] | None],
    backward: Callable[[list[int]], Sequence[int] | None] | None = None,
) -> None:
    """The work of :meth:`Session.reindex_array`."""
    session._check_data_writable()
    with session._lock:
        node, layout = _array_at(session, array_path)
        grid = _regular_grid(layout, array_path)
        current = session._effective_manifest(node)
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
        session._changes_of(node).replace_base(result, union_rows([dst_arr, clear_arr]))


def _regular_grid(layout: _ArrayLayout, path: str) -> tuple[int, ...]:
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


def chunk_type(session: Session, array_path: str, chunk_coordinates: Sequence[int]) -> ChunkType:
    """The work of :meth:`Session.chunk_type`."""
    node, layout = _array_at(session, array_path)
    coords = np.asarray(list(chunk_coordinates), dtype=np.int64).reshape(1, -1)
    if coords.shape[1] != layout.key_format.ndim:
        raise InvalidInputError(
            f"{array_path!r} has {layout.key_format.ndim} dimensions, "
            f"got coordinates {list(chunk_coordinates)}"
        )
    loc = session._locate(_join(node.prefix, layout.key_format.format_many(coords)[0]))
    if loc is None:
        return ChunkType.UNINITIALIZED
    if isinstance(loc, bytes):
        return ChunkType.INLINE
    return ChunkType.VIRTUAL if loc.kind == VIRTUAL else ChunkType.NATIVE


async def chunk_coordinates(
    session: Session, array_path: str, batch_size: int = 1000
) -> AsyncIterator[tuple[int, ...]]:
    """The work of :meth:`Session.chunk_coordinates`."""
    node, _ = _array_at(session, array_path)
    coords = session._effective_manifest(node).coords
    step = max(1, int(batch_size))
    for start in range(0, len(coords), step):
        for row in coords[start : start + step].tolist():
            yield tuple(row)
