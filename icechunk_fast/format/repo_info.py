"""The repo info object: branches, tags, deleted tag names and the snapshot list.

It is the only mutable object of a repository, replaced by compare-and-swap, so that
listing branches, resolving a ref and walking the ancestry each cost one read.
"""

from __future__ import annotations

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
    """Decoded repo info. Mutate a copy, then write it back with compare-and-swap."""

    spec_version: int
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    deleted_tags: set[str] = field(default_factory=set)
    snapshots: dict[str, SnapshotRecord] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    ops: list[OpRecord] = field(default_factory=list)  # oldest first

    def copy(self) -> RepoInfo:
        return RepoInfo(
            self.spec_version,
            dict(self.branches),
            dict(self.tags),
            set(self.deleted_tags),
            dict(self.snapshots),
            dict(self.metadata),
            list(self.ops),
        )

    def record(self, kind: str, at: datetime, **fields: str | None) -> None:
        self.ops.append(OpRecord(kind, at, **fields))

    def encode(self, level: int = 3) -> bytes:
        doc = {
            "spec_version": self.spec_version,
            "branches": self.branches,
            "tags": self.tags,
            "deleted_tags": sorted(self.deleted_tags),
            "snapshots": [
                [s.id, s.parent_id, to_micros(s.written_at), s.message, s.metadata]
                for s in self.snapshots.values()
            ],
            "metadata": self.metadata,
            "ops": [
                [o.kind, to_micros(o.at), o.name, o.previous_snap_id, o.new_snap_id]
                for o in self.ops
            ],
        }
        return encode_object(ObjectType.REPO_INFO, dumps(doc), level=level)

    @classmethod
    def decode(cls, data: bytes) -> RepoInfo:
        doc = loads(decode_object(data, ObjectType.REPO_INFO, "repo info"), "repo info")
        try:
            snapshots = {
                row[0]: SnapshotRecord(row[0], row[1], from_micros(int(row[2])), row[3], row[4])
                for row in doc["snapshots"]
            }
            info = cls(
                int(doc["spec_version"]),
                dict(doc["branches"]),
                dict(doc["tags"]),
                set(doc["deleted_tags"]),
                snapshots,
                dict(doc.get("metadata", {})),
                [
                    OpRecord(op[0], from_micros(int(op[1])), op[2], op[3], op[4])
                    for op in doc.get("ops", [])
                ],
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FormatError(f"corrupt repo info: {exc!r}") from exc
        for name, target in [*info.branches.items(), *info.tags.items()]:
            if target not in info.snapshots:
                raise FormatError(f"corrupt repo info: ref {name!r} points to unknown {target}")
        return info
