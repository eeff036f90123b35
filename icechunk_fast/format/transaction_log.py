"""Transaction logs: what one commit changed, for diff, conflict detection and rebase."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FormatError
from .columns import decode_columns, encode_columns
from .envelope import ObjectType, decode_object, encode_object

__all__ = ["TransactionLog", "transaction_log_key"]


def transaction_log_key(snapshot_id: str) -> str:
    return f"transactions/{snapshot_id}"


@dataclass(slots=True)
class TransactionLog:
    """Node changes as ``{node_id: path}`` maps, chunk writes as coordinate arrays.

    ``updated_chunks[node_id]`` is an int64 (n, ndim) array of every chunk written or
    deleted in the array during the commit.
    """

    new_groups: dict[str, str] = field(default_factory=dict)
    new_arrays: dict[str, str] = field(default_factory=dict)
    deleted_groups: dict[str, str] = field(default_factory=dict)
    deleted_arrays: dict[str, str] = field(default_factory=dict)
    updated_groups: dict[str, str] = field(default_factory=dict)
    updated_arrays: dict[str, str] = field(default_factory=dict)
    updated_chunks: dict[str, np.ndarray] = field(default_factory=dict)
    moved_nodes: list[tuple[str, str]] = field(default_factory=list)

    _NODE_FIELDS = (
        "new_groups",
        "new_arrays",
        "deleted_groups",
        "deleted_arrays",
        "updated_groups",
        "updated_arrays",
    )

    def is_empty(self) -> bool:
        return (
            not any(getattr(self, f) for f in self._NODE_FIELDS)
            and not self.moved_nodes
            and not any(len(c) for c in self.updated_chunks.values())
        )

    def encode(self, level: int = 3) -> bytes:
        header = {f: getattr(self, f) for f in self._NODE_FIELDS}
        header["chunk_nodes"] = list(self.updated_chunks)
        header["moved_nodes"] = [list(m) for m in self.moved_nodes]
        columns = {
            f"chunks/{node_id}": np.ascontiguousarray(c.T)
            for node_id, c in self.updated_chunks.items()
        }
        payload = encode_columns(header, dict(columns), level)
        return encode_object(ObjectType.TRANSACTION_LOG, payload, compressed=False)

    @classmethod
    def decode(cls, data: bytes, name: str = "") -> TransactionLog:
        header, cols = decode_columns(decode_object(data, ObjectType.TRANSACTION_LOG, name))
        try:
            log = cls()
            for name in cls._NODE_FIELDS:
                setattr(log, name, dict(header[name]))
            log.moved_nodes = [(str(a), str(b)) for a, b in header.get("moved_nodes", [])]
            for node_id in header["chunk_nodes"]:
                arr = cols[f"chunks/{node_id}"]
                if arr.ndim != 2:
                    raise ValueError("chunk coordinates must be 2-D")
                log.updated_chunks[node_id] = np.ascontiguousarray(arr.T)
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"corrupt transaction log {name}: {exc}") from exc
        return log
