"""Diffs: what changed between two snapshots, or in a session, as one record.

A repository diff is composed from the transaction logs of the commits in between,
oldest first; chunk coordinates are combined per array with vectorized set unions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .format.transaction_log import TransactionLog
from .manifest import union_rows

__all__ = ["Diff", "combine_logs", "compose_logs", "diff_of"]

_SHOWN_CHUNKS = 10  # per array in the repr


@dataclass(slots=True)
class Diff:
    """Groups and arrays created, deleted and updated, and chunks written, by path.

    ``updated_chunks`` maps an array path to the sorted chunk coordinates written (or
    deleted); ``moved_nodes`` lists ``(from_path, to_path)`` pairs.
    """

    new_groups: set[str] = field(default_factory=set)
    new_arrays: set[str] = field(default_factory=set)
    deleted_groups: set[str] = field(default_factory=set)
    deleted_arrays: set[str] = field(default_factory=set)
    updated_groups: set[str] = field(default_factory=set)
    updated_arrays: set[str] = field(default_factory=set)
    updated_chunks: dict[str, list[list[int]]] = field(default_factory=dict)
    moved_nodes: list[tuple[str, str]] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when nothing changed."""
        return not (
            self.new_groups
            or self.new_arrays
            or self.deleted_groups
            or self.deleted_arrays
            or self.updated_groups
            or self.updated_arrays
            or self.updated_chunks
            or self.moved_nodes
        )

    def __repr__(self) -> str:
        if self.is_empty():
            return "Diff: no changes"
        lines: list[str] = []

        def section(title: str, paths: Iterable[str], ordered: bool = False) -> None:
            items = list(paths) if ordered else sorted(paths)
            if items:
                lines.append(f"{title}:")
                lines.extend(f"    {p}" for p in items)
                lines.append("")

        section("Groups created", self.new_groups)
        section("Arrays created", self.new_arrays)
        section("Groups deleted", self.deleted_groups)
        section("Arrays deleted", self.deleted_arrays)
        section("Group metadata updated", self.updated_groups)
        section("Array metadata updated", self.updated_arrays)
        section("Nodes moved", (f"{a} -> {b}" for a, b in self.moved_nodes), ordered=True)
        if self.updated_chunks:
            lines.append("Chunks updated:")
            for path in sorted(self.updated_chunks):
                coords = self.updated_chunks[path]
                lines.append(f"    {path}: {len(coords)} chunk{'s' if len(coords) != 1 else ''}")
                lines.extend(f"        {c}" for c in coords[:_SHOWN_CHUNKS])
                if len(coords) > _SHOWN_CHUNKS:
                    lines.append(f"        ... and {len(coords) - _SHOWN_CHUNKS} more")
            lines.append("")
        return "\n".join(lines).rstrip()


def combine_logs(logs: list[TransactionLog]) -> TransactionLog:
    """One transaction log with the net effect of ``logs`` (oldest first).

    A node created and deleted within the range appears nowhere; a node updated and
    then deleted appears only as deleted; chunk coordinates are unioned per array.
    """
    created: dict[str, tuple[str, str]] = {}  # node id -> (kind, path)
    deleted: dict[str, tuple[str, str]] = {}
    updated: dict[str, tuple[str, str]] = {}
    chunks: dict[str, list[np.ndarray]] = {}
    moves: list[tuple[str, str]] = []
    for log in logs:
        moves.extend(log.moved_nodes)
        for kind, mapping in (("group", log.new_groups), ("array", log.new_arrays)):
            for node_id, path in mapping.items():
                created[node_id] = (kind, path)
        for kind, mapping in (("group", log.updated_groups), ("array", log.updated_arrays)):
            for node_id, path in mapping.items():
                if node_id not in created:
                    updated[node_id] = (kind, path)
        for kind, mapping in (("group", log.deleted_groups), ("array", log.deleted_arrays)):
            for node_id, path in mapping.items():
                if created.pop(node_id, None) is None:
                    deleted[node_id] = (kind, path)
                updated.pop(node_id, None)
                chunks.pop(node_id, None)
        for node_id, coords in log.updated_chunks.items():
            if len(coords):
                chunks.setdefault(node_id, []).append(coords)
    out = TransactionLog()
    for source, (groups, arrays) in (
        (created, (out.new_groups, out.new_arrays)),
        (updated, (out.updated_groups, out.updated_arrays)),
        (deleted, (out.deleted_groups, out.deleted_arrays)),
    ):
        for node_id, (kind, path) in source.items():
            (groups if kind == "group" else arrays)[node_id] = path
    out.updated_chunks = {node_id: union_rows(parts) for node_id, parts in chunks.items()}
    out.moved_nodes = moves
    return out


def diff_of(log: TransactionLog, final_paths: dict[str, str]) -> Diff:
    """The :class:`Diff` of one (possibly combined) transaction log.

    ``final_paths`` maps node id to path for every node that exists afterwards.
    """

    def paths(mapping: dict[str, str]) -> set[str]:
        return {final_paths.get(node_id, path) for node_id, path in mapping.items()}

    def existing(mapping: dict[str, str]) -> set[str]:
        return {final_paths[node_id] for node_id in mapping if node_id in final_paths}

    return Diff(
        new_groups=paths(log.new_groups),
        new_arrays=paths(log.new_arrays),
        deleted_groups=set(log.deleted_groups.values()),
        deleted_arrays=set(log.deleted_arrays.values()),
        updated_groups=existing(log.updated_groups),
        updated_arrays=existing(log.updated_arrays),
        updated_chunks={
            final_paths[node_id]: coords.tolist()
            for node_id, coords in log.updated_chunks.items()
            if node_id in final_paths and len(coords)
        },
        moved_nodes=list(log.moved_nodes),
    )


def compose_logs(logs: list[TransactionLog], final_paths: dict[str, str]) -> Diff:
    """The :class:`Diff` of several transaction logs applied oldest first."""
    return diff_of(combine_logs(logs), final_paths)
