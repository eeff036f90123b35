"""Snapshots: the node table (groups, arrays and their manifests) of one commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..errors import FormatError
from ._json import dumps, from_micros, loads, to_micros
from .envelope import ObjectType, decode_object, encode_object

__all__ = ["ManifestRef", "NodeSnapshot", "NodeType", "Snapshot", "snapshot_key"]

NodeType = Literal["group", "array"]


def snapshot_key(snapshot_id: str) -> str:
    return f"snapshots/{snapshot_id}"


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """A manifest of an array and the chunk-coordinate box ``[lo, hi)`` it covers."""

    id: str
    extent: tuple[tuple[int, int], ...]
    num_refs: int


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """A group or an array as committed.

    ``zarr_metadata`` holds the exact bytes of its ``zarr.json`` document. ``split``
    is set when the array's manifests are split: chunks per split along each dimension
    (0: that dimension is not split), every manifest covering at most one such box.
    """

    id: str
    path: str
    node_type: NodeType
    zarr_metadata: bytes
    manifests: tuple[ManifestRef, ...] = ()
    split: tuple[int, ...] | None = None


@dataclass(slots=True)
class Snapshot:
    id: str
    parent_id: str | None
    written_at: datetime
    message: str
    metadata: dict[str, Any]
    nodes: dict[str, NodeSnapshot] = field(default_factory=dict)

    def encode(self, level: int = 3) -> bytes:
        doc = {
            "id": self.id,
            "parent_id": self.parent_id,
            "written_at": to_micros(self.written_at),
            "message": self.message,
            "metadata": self.metadata,
            "nodes": [
                [
                    n.id,
                    n.path,
                    n.node_type,
                    n.zarr_metadata.decode(),
                    [[m.id, [list(e) for e in m.extent], m.num_refs] for m in n.manifests],
                    *([] if n.split is None else [list(n.split)]),
                ]
                for n in self.nodes.values()
            ],
        }
        return encode_object(ObjectType.SNAPSHOT, dumps(doc), level=level)

    @classmethod
    def decode(cls, data: bytes, name: str = "") -> Snapshot:
        doc = loads(decode_object(data, ObjectType.SNAPSHOT, name), f"snapshot {name}")
        try:
            nodes = {}
            for node_id, path, node_type, meta, manifests, *rest in doc["nodes"]:
                split = tuple(int(s) for s in rest[0]) if rest else None
                if node_type not in ("group", "array"):
                    raise ValueError(f"unknown node type {node_type!r}")
                refs = tuple(
                    ManifestRef(mid, tuple((int(lo), int(hi)) for lo, hi in extent), int(count))
                    for mid, extent, count in manifests
                )
                nodes[path] = NodeSnapshot(node_id, path, node_type, meta.encode(), refs, split)
            return cls(
                doc["id"],
                doc["parent_id"],
                from_micros(int(doc["written_at"])),
                doc["message"],
                doc["metadata"],
                nodes,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"corrupt snapshot {name}: {exc!r}") from exc
