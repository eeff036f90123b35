"""Resolving a Zarr store key to what a session holds for it.

A key names a node's ``zarr.json`` (answered from the node table), a chunk written in
this session (answered from the change set: inline bytes, a tombstone, or a location in
a chunk object), or a committed chunk, which is in one of the array's manifests. This
module answers everything memory can answer and, for committed chunks, names the
manifests to look in; the caller loads them, blocking or awaited, and finishes with
:func:`locate_in`.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import kernels
from .changeset import ChangeSet
from .errors import InvalidInputError
from .format.manifest import INLINE, NATIVE, TOMBSTONE, ManifestData
from .format.snapshot import ManifestRef
from .keys import METADATA_NAME, metadata_prefix
from .manifest import ChunkLocation, chunk_key, resolve
from .nodes import NodeTable

__all__ = ["Located", "check_absent_key", "locate_in", "resolve_key"]

Located = bytes | ChunkLocation | None  # metadata or inline bytes, a location, or absent
Resolved = tuple[Located, Sequence[ManifestRef], tuple[int, ...]]

# zarr probes these when it guesses a hierarchy's format; they are absent, not invalid
_V2_METADATA_NAMES = frozenset({".zarray", ".zgroup", ".zattrs", ".zmetadata"})
_IN_MEMORY: tuple[ManifestRef, ...] = ()


def resolve_key(nodes: NodeTable, changes: ChangeSet, prefixes: list[int], key: str) -> Resolved:
    """What ``key`` holds as far as memory knows: ``(value, manifests, coords)``.

    ``value`` is final when ``manifests`` is empty; otherwise the chunk at ``coords`` is
    in one of ``manifests`` (see :func:`locate_in`) or absent. ``prefixes`` are the
    session's chunk id prefixes, which its change set's refs index.
    """
    if key.endswith(METADATA_NAME):  # checked first: chunk keys skip a call
        prefix = metadata_prefix(key)
        if prefix is not None:
            node = nodes.live.get(prefix)
            return (None if node is None else node.zarr_metadata), _IN_MEMORY, ()
    found = nodes.find_chunk(key)
    if found is None:
        return None, _IN_MEMORY, ()
    node, part, coords = found
    if coords is None:
        return None, _IN_MEMORY, ()
    array_changes = changes.chunks.get(node.id)
    if array_changes is not None:
        change = array_changes.reads(part)
        if change is not None:
            kind, source, seq, offset, length = change
            if kind == TOMBSTONE:
                return None, _IN_MEMORY, ()
            if kind == INLINE:
                return bytes(array_changes.inline[offset : offset + length]), _IN_MEMORY, ()
            loc = ChunkLocation(NATIVE, chunk_key(prefixes[source], seq), offset, length)
            return loc, _IN_MEMORY, ()
        if array_changes.override is not None:
            return locate_in(array_changes.override, coords), _IN_MEMORY, ()
    return None, node.manifests_for(coords), coords


def locate_in(manifest: ManifestData, coords: tuple[int, ...]) -> Located:
    """The chunk at ``coords`` in ``manifest``: inline bytes, a location, or None."""
    table = manifest.coords
    if table.shape[0] == 0 or table.shape[1] != len(coords):
        return None
    row = kernels.lookup_one(table, coords)
    if row < 0:
        return None
    if manifest.kind[row] == NATIVE:  # the common case, inline
        key = chunk_key(int(manifest.prefixes[manifest.source[row]]), int(manifest.seq[row]))
        return ChunkLocation(NATIVE, key, int(manifest.offset[row]), int(manifest.length[row]))
    loc = resolve(manifest, row)
    return loc.data if loc.kind == INLINE else loc


def check_absent_key(nodes: NodeTable, key: str) -> None:
    """Refuse an absent key that could never hold anything.

    Raises
    ------
    InvalidInputError
        ``key`` is neither a ``zarr.json`` nor a chunk key of an existing array, and does
        not look like the chunk key of an array that does not exist yet (``x/c/0``).
    """
    if metadata_prefix(key) is not None or key.rpartition("/")[2] in _V2_METADATA_NAMES:
        return
    found = nodes.find_chunk(key)
    if found is not None:
        if found[2] is None:
            raise InvalidInputError(
                f"invalid chunk key {key!r} for array /{found[0].prefix}", kind="invalid-key"
            )
        return
    if key == "c" or key.startswith("c/") or key.endswith("/c") or "/c/" in key:
        return  # a chunk key of an array that does not exist (yet): absent
    raise InvalidInputError(
        f"invalid key {key!r}: neither a zarr.json document nor a chunk key of an array",
        kind="invalid-key",
    )
