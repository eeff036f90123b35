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

__all__ = ["REPO_INFO_KEY", "RepoInfo", "SnapshotRecord"]

REPO_INFO_KEY = "repo"


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """What the repo info keeps about every snapshot."""

    id: str
    parent_id: str | None
    written_at: datetime
    message: str
    metadata: dict[str, Any]


@dataclass(slots=True)
class RepoInfo:
    """Decoded repo info. Mutate a copy, then write it back with compare-and-swap."""

    spec_version: int
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    deleted_tags: set[str] = field(default_factory=set)
    snapshots: dict[str, SnapshotRecord] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> RepoInfo:
        return RepoInfo(
            self.spec_version,
            dict(self.branches),
            dict(self.tags),
            set(self.deleted_tags),
            dict(self.snapshots),
            dict(self.metadata),
        )

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
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FormatError(f"corrupt repo info: {exc!r}") from exc
        for name, target in [*info.branches.items(), *info.tags.items()]:
            if target not in info.snapshots:
                raise FormatError(f"corrupt repo info: ref {name!r} points to unknown {target}")
        return info
