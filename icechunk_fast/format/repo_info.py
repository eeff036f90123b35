"""The repo info object: branches, tags, deleted tag names and the snapshot list.

It is the only mutable object of a repository, replaced by compare-and-swap, so that
listing branches, resolving a ref and walking the ancestry each cost one read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import FormatError
from ._json import dumps, from_micros, loads, to_micros
from .envelope import ObjectType, decode_object, encode_object

__all__ = ["REPO_INFO_KEY", "OpRecord", "RepoInfo", "SnapshotRecord"]

REPO_INFO_KEY = "repo"


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """What the repo info keeps about every snapshot."""

    id: str
    parent_id: str | None
    written_at: datetime
    message: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One mutation of the repository, for the ops log."""

    kind: str
    at: datetime
    name: str | None = None
    previous_snap_id: str | None = None
    new_snap_id: str | None = None


@dataclass(slots=True)
class RepoInfo:
    """Decoded repo info. Mutate a copy, then write it back with compare-and-swap.

    Snapshot records and ops are kept as the raw rows they are stored as and turned
    into records only when asked for: a long history then decodes and re-encodes in
    the time of the JSON parser alone.
    """

    spec_version: int
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    deleted_tags: set[str] = field(default_factory=set)
    # id -> [id, parent id, written_at in microseconds, message, metadata]
    snapshots: dict[str, list[Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    # oldest first: [kind, at in microseconds, name, previous snapshot, new snapshot]
    ops: list[list[Any]] = field(default_factory=list)
    # JSON text of rows already encoded once, shared by copies: rows never change once
    # added, and re-serializing a long history was most of the cost of every commit
    _row_json: dict[Any, str] = field(default_factory=dict, repr=False, compare=False)

    def copy(self) -> RepoInfo:
        return RepoInfo(
            self.spec_version,
            dict(self.branches),
            dict(self.tags),
            set(self.deleted_tags),
            dict(self.snapshots),
            dict(self.metadata),
            list(self.ops),
            self._row_json,
        )

    def _rows_json(self, keyed_rows: Iterable[tuple[Any, list[Any]]]) -> str:
        cache = self._row_json
        parts = []
        for key, row in keyed_rows:
            text = cache.get(key)
            if text is None:
                text = cache[key] = dumps(row).decode()
            parts.append(text)
        return ",".join(parts)

    def add_snapshot(self, record: SnapshotRecord) -> None:
        self.snapshots[record.id] = [
            record.id,
            record.parent_id,
            to_micros(record.written_at),
            record.message,
            record.metadata,
        ]

    def snapshot(self, snapshot_id: str) -> SnapshotRecord:
        """The record of ``snapshot_id`` (KeyError if unknown)."""
        sid, parent, micros, message, metadata = self.snapshots[snapshot_id]
        return SnapshotRecord(sid, parent, from_micros(int(micros)), message, metadata)

    def parent_of(self, snapshot_id: str) -> str | None:
        parent: str | None = self.snapshots[snapshot_id][1]
        return parent

    def record(self, kind: str, at: datetime, **fields: str | None) -> None:
        self.ops.append(
            [
                kind,
                to_micros(at),
                fields.get("name"),
                fields.get("previous_snap_id"),
                fields.get("new_snap_id"),
            ]
        )

    def op_records(self) -> list[OpRecord]:
        """The ops log, oldest first."""
        return [OpRecord(k, from_micros(int(t)), n, p, s) for k, t, n, p, s in self.ops]

    def encode(self, level: int = 3) -> bytes:
        head = {
            "spec_version": self.spec_version,
            "branches": self.branches,
            "tags": self.tags,
            "deleted_tags": sorted(self.deleted_tags),
            "metadata": self.metadata,
        }
        snapshots = self._rows_json(self.snapshots.items())
        ops = self._rows_json((("op", *row), row) for row in self.ops)
        text = f'{dumps(head).decode()[:-1]},"snapshots":[{snapshots}],"ops":[{ops}]}}'
        return encode_object(ObjectType.REPO_INFO, text.encode(), level=level)

    @classmethod
    def decode(cls, data: bytes) -> RepoInfo:
        doc = loads(decode_object(data, ObjectType.REPO_INFO, "repo info"), "repo info")
        try:
            info = cls(
                int(doc["spec_version"]),
                dict(doc["branches"]),
                dict(doc["tags"]),
                set(doc["deleted_tags"]),
                {row[0]: row for row in doc["snapshots"]},
                dict(doc.get("metadata", {})),
                list(doc.get("ops", [])),
            )
            for row in doc["snapshots"]:
                if len(row) != 5 or not isinstance(row[2], int):
                    raise ValueError(f"bad snapshot record {row!r:.200}")
            for op in info.ops:
                if len(op) != 5 or not isinstance(op[1], int):
                    raise ValueError(f"bad ops record {op!r:.200}")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FormatError(f"corrupt repo info: {exc!r}") from exc
        for name, target in [*info.branches.items(), *info.tags.items()]:
            if target not in info.snapshots:
                raise FormatError(f"corrupt repo info: ref {name!r} points to unknown {target}")
        return info
