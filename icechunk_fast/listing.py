"""Listing a session's keys: every key under a prefix, and the names in a directory.

Metadata keys come from the node table; chunk keys from each array's committed refs
with the session's chunk changes laid over them.
"""

from __future__ import annotations

from collections.abc import Iterator

from .changeset import ChangeSet, LoadManifest
from .keys import METADATA_NAME, join_key, metadata_key
from .nodes import Node, NodeTable

__all__ = ["chunk_keys_under", "list_dir", "list_keys"]


def chunk_parts(node: Node, changes: ChangeSet, load: LoadManifest) -> list[str]:
    """The chunk part (``c/0/1``) of every chunk the array holds, as the session sees it."""
    fmt = node.array_layout().key_format
    array_changes = changes.chunks.get(node.id)
    base = changes.base_manifest(node, load)
    parts: list[str] = [] if base is None else fmt.format_many(base.coords)
    if array_changes is not None:
        touched = array_changes.index
        parts = [p for p in parts if p not in touched]
        parts.extend(array_changes.written_keys())
    return parts


def chunk_keys_under(
    nodes: NodeTable, changes: ChangeSet, load: LoadManifest, prefix: str
) -> Iterator[str]:
    """Every chunk key starting with ``prefix``."""
    for node in nodes:
        if not node.is_array:
            continue
        base = join_key(node.prefix, "")
        if not (base.startswith(prefix) or prefix.startswith(base)):
            continue
        for part in chunk_parts(node, changes, load):
            key = join_key(node.prefix, part)
            if key.startswith(prefix):
                yield key


def list_keys(
    nodes: NodeTable, changes: ChangeSet, load: LoadManifest, prefix: str = ""
) -> Iterator[str]:
    """Every key starting with ``prefix``: metadata documents, then chunks."""
    for node in nodes:
        key = metadata_key(node.prefix)
        if key.startswith(prefix):
            yield key
    yield from chunk_keys_under(nodes, changes, load, prefix)


def list_dir(
    nodes: NodeTable, changes: ChangeSet, load: LoadManifest, prefix: str
) -> Iterator[str]:
    """Names directly under directory ``prefix``, sorted."""
    prefix = prefix.rstrip("/")
    names: set[str] = set()
    for node in nodes:
        if node.prefix == prefix:
            names.add(METADATA_NAME)
            if node.is_array:
                fmt = node.array_layout().key_format
                if fmt.default:
                    if _has_chunks(node, changes, load):
                        names.add("c")
                else:
                    names.update(p.split("/")[0] for p in chunk_parts(node, changes, load))
        elif not prefix or node.prefix.startswith(prefix + "/"):
            rest = node.prefix[len(prefix) + 1 :] if prefix else node.prefix
            names.add(rest.split("/")[0])
    # a directory inside an array's chunk space, like "a/c" or "a/c/1"
    inside = prefix + "/"
    for node in nodes:
        if node.is_array and prefix != node.prefix and inside.startswith(join_key(node.prefix, "")):
            for part in chunk_parts(node, changes, load):
                key = join_key(node.prefix, part)
                if key.startswith(inside):
                    names.add(key[len(inside) :].split("/")[0])
    yield from sorted(names)


def _has_chunks(node: Node, changes: ChangeSet, load: LoadManifest) -> bool:
    array_changes = changes.chunks.get(node.id)
    if array_changes is None or not len(array_changes):
        return any(ref.num_refs for ref in node.manifests)
    if array_changes.override is not None and not array_changes.index:
        return len(array_changes.override) > 0
    if array_changes.written_keys():
        return True
    return bool(chunk_parts(node, changes, load))
