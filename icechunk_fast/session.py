"""Sessions: a view of one snapshot plus the changes made on top of it.

A session resolves Zarr keys against its snapshot's node table and the change set,
writes chunks straight to storage as they arrive (so memory stays bounded), and turns
the change set into new manifests, a transaction log and a snapshot at commit.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from . import rearrange
from .changeset import ArrayChanges, ChunkKeyFormat, NodeChange
from .diff import Diff, combine_logs, compose_logs, union_rows
from .errors import (
    ConflictError,
    FormatError,
    InvalidInputError,
    ReadOnlyError,
    SessionStateError,
)
from .format.ids import ChunkIdAllocator, new_node_id, new_snapshot_id
from .format.manifest import INLINE, NATIVE, TOMBSTONE, VIRTUAL, ManifestData, manifest_key
from .format.snapshot import ManifestRef, NodeSnapshot, NodeType, Snapshot, snapshot_key
from .format.transaction_log import TransactionLog, transaction_log_key
from .keys import METADATA_NAME, node_path_of, store_prefix_of, validate_store_key
from .manifest import (
    ChunkLocation,
    cell_groups,
    cell_of,
    chunk_key,
    concat_manifests,
    lookup_row,
    merge_changes,
    resolve,
    split_manifest,
    take_rows,
)
from .manifest_policy import default_split_sizes
from .packs import PackWriter
from .records import ChunkType, SessionMode

if TYPE_CHECKING:
    from .batching import CoalescePolicy
    from .conflicts import ConflictSolver
    from .repository import Repository
    from .store import IcechunkStore

__all__ = ["Session"]

Window = Callable[[int], tuple[int, int]]


@dataclass(slots=True)
class _ArrayLayout:
    """What the read and write paths need from an array's ``zarr.json``."""

    key_format: ChunkKeyFormat
    grid_shape: tuple[int, ...] | None  # None: not a regular grid, bounds unchecked
    dimension_names: tuple[str | None, ...] | None = None


@dataclass(slots=True)
class _Node:
    id: str
    prefix: str
    node_type: str
    zarr_metadata: bytes
    manifests: tuple[ManifestRef, ...]
    layout: _ArrayLayout | None = None
    split: tuple[int, ...] | None = None  # chunks per manifest box, if split
    _by_cell: dict[tuple[int, ...], ManifestRef] | None = None

    def manifests_by_cell(self) -> dict[tuple[int, ...], ManifestRef] | None:
        """The manifests keyed by split box; None unless each box has at most one."""
        if self.split is None:
            return None
        if self._by_cell is None:
            by_cell = {cell_of(ref.extent, self.split): ref for ref in self.manifests}
            if None in by_cell or len(by_cell) != len(self.manifests):
                self.split = None  # not laid out as its split says: treat as unsplit
                return None
            self._by_cell = by_cell  # type: ignore[assignment]
        return self._by_cell

    def manifests_for(self, coords: tuple[int, ...]) -> Sequence[ManifestRef]:
        """The manifests that may hold the chunk at ``coords``."""
        by_cell = self.manifests_by_cell()
        if by_cell is None:
            return self.manifests
        split = self.split or ()
        ref = by_cell.get(tuple(c // s if s > 0 else 0 for c, s in zip(coords, split, strict=True)))
        return () if ref is None else (ref,)


def _parse_metadata(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"zarr.json must hold a Zarr v3 JSON document: {exc}", kind="invalid-metadata"
        ) from exc
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3:
        raise InvalidInputError(
            "zarr.json must be a Zarr v3 document (zarr_format 3); "
            "icechunk_fast stores Zarr v3 only",
            kind="invalid-metadata",
        )
    if doc.get("node_type") not in ("group", "array"):
        raise InvalidInputError(
            "zarr.json must have node_type 'group' or 'array'", kind="invalid-metadata"
        )
    return doc


def _layout_of(data: bytes) -> _ArrayLayout:
    doc = json.loads(data)
    shape = tuple(int(s) for s in doc.get("shape", ()))
    encoding = doc.get("chunk_key_encoding") or {"name": "default"}
    name = encoding.get("name", "default")
    config = encoding.get("configuration") or {}
    if name == "default":
        fmt = ChunkKeyFormat(len(shape), config.get("separator", "/"), True)
    elif name == "v2":
        fmt = ChunkKeyFormat(len(shape), config.get("separator", "."), False)
    else:
        raise InvalidInputError(f"unsupported chunk_key_encoding {name!r}")
    grid = doc.get("chunk_grid") or {}
    grid_shape = None
    if grid.get("name") == "regular":
        chunks = tuple(int(c) for c in grid["configuration"]["chunk_shape"])
        if len(chunks) == len(shape) and all(c > 0 for c in chunks):
            grid_shape = tuple(-(-s // c) for s, c in zip(shape, chunks, strict=True))
    names = doc.get("dimension_names")
    dimension_names = tuple(names) if isinstance(names, list) else None
    return _ArrayLayout(fmt, grid_shape, dimension_names)


def _metadata_key(prefix: str) -> str:
    return f"{prefix}/{METADATA_NAME}" if prefix else METADATA_NAME


def _join(prefix: str, part: str) -> str:
    return f"{prefix}/{part}" if prefix else part


class Session:
    """A read-only view of a snapshot, or a writable one on the tip of a branch.

    Get one from :meth:`Repository.readonly_session` or
    :meth:`Repository.writable_session`; read and write through :attr:`store`.
    """

    def __init__(
        self,
        repo: Repository,
        snapshot: Snapshot,
        branch: str | None,
        read_only: bool,
        *,
        rearrange: bool = False,
    ) -> None:
        self._repo = repo
        self._rearrange = rearrange
        self._storage = repo._io
        self._branch = branch
        self._read_only = read_only
        self._inline_threshold = repo.config.inline_threshold
        self._level = repo.config.compression_level
        self._allocator: ChunkIdAllocator | None = None
        self._pack_target = repo.config.pack_target_bytes
        self._packer: PackWriter | None = None
        # writers from several threads (dask, zarr's sync pipeline) share one session
        self._lock = threading.RLock()
        self._prefixes: list[int] = []
        self._preloads: list[Future[None]] = []  # background manifest fetches (preload.py)
        self._unacknowledged: Snapshot | None = None  # published, but the reply was lost
        self._reset_to(snapshot)

    def _reset_to(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._base_ids = {n.id for n in snapshot.nodes.values()}
        self._live: dict[str, _Node] = {
            store_prefix_of(n.path): _Node(
                n.id,
                store_prefix_of(n.path),
                n.node_type,
                n.zarr_metadata,
                n.manifests,
                split=n.split,
            )
            for n in snapshot.nodes.values()
        }
        self._changed: dict[str, NodeChange] = {}
        self._deleted: dict[str, NodeSnapshot] = {}
        self._chunks: dict[str, ArrayChanges] = {}
        self._moves: list[tuple[str, str]] = []

    # -- properties ------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """True for sessions that cannot write (time travel, or after a commit)."""
        return self._read_only

    @property
    def mode(self) -> SessionMode:
        return SessionMode.READONLY if self._read_only else SessionMode.WRITABLE

    @property
    def snapshot_id(self) -> str:
        """The snapshot this session reads (after a commit: the new one)."""
        return self._snapshot.id

    @property
    def branch(self) -> str | None:
        return self._branch

    @property
    def has_uncommitted_changes(self) -> bool:
        return bool(
            self._changed
            or self._deleted
            or self._moves
            or any(len(c) for c in self._chunks.values())
        )

    @property
    def store(self) -> IcechunkStore:
        """The Zarr store reading and writing through this session."""
        from .store import IcechunkStore

        return IcechunkStore(self)

    def __repr__(self) -> str:
        return (
            f"<Session {self.mode.value} branch={self._branch!r} snapshot={self.snapshot_id}"
            f"{' with uncommitted changes' if self.has_uncommitted_changes else ''}>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        if not self._read_only:
            raise ValueError(
                "a writable Session cannot be pickled: commit first, or use a read-only session"
            )
        return (_restore_session, (self._repo, self._snapshot.id, self._branch))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Session):
            return NotImplemented
        if self is other:
            return True
        return (
            self._read_only
            and other._read_only
            and self._snapshot.id == other._snapshot.id
            and self._storage == other._storage
        )

    def __hash__(self) -> int:
        return hash(self._snapshot.id)

    def _check_writable(self) -> None:
        if self._read_only:
            raise ReadOnlyError(
                "this session is read-only (a time-travel session, or one that already "
                "committed); open repo.writable_session(branch) to write",
                kind="read-only-session",
            )

    # -- key resolution ------------------------------------------------------------
    def _layout(self, node: _Node) -> _ArrayLayout:
        layout = node.layout
        if layout is None:
            layout = node.layout = _layout_of(node.zarr_metadata)
        return layout

    def _find_chunk(self, key: str) -> tuple[_Node, str, tuple[int, ...] | None] | None:
        """The array owning chunk key ``key``, the chunk part and its coordinates.

        The owner is an array whose chunk key encoding accepts the rest of the key (so
        ``foo/c/0.0`` belongs to an array ``foo/c`` with v2 encoding even if ``foo`` is an
        array too); failing that, the deepest array above the key, with coordinates
        ``None`` so that writes can report the malformed chunk key.
        """
        live = self._live
        fallback: tuple[_Node, str, tuple[int, ...] | None] | None = None
        # Fast path for the default encoding: the chunk part starts at the last "/c/".
        cut = key.rfind("/c/")
        if cut >= 0 or key == "c" or key.startswith("c/"):
            head, part = (key[:cut], key[cut + 1 :]) if cut >= 0 else ("", key)
            node = live.get(head)
            if node is not None and node.node_type == "array":
                coords = self._layout(node).key_format.parse_one(part)
                if coords is not None:
                    return node, part, coords
                fallback = node, part, None
        # General case (v2 encoding, 0-d arrays): try every split point, longest first.
        pos = len(key)
        while pos > 0:
            pos = key.rfind("/", 0, pos)
            node = live.get(key[:pos] if pos > 0 else "")
            if node is not None and node.node_type == "array":
                part = key[pos + 1 :] if pos >= 0 else key
                coords = self._layout(node).key_format.parse_one(part)
                if coords is not None:
                    return node, part, coords
                if fallback is None:
                    fallback = node, part, None
            if pos <= 0:
                break
        return fallback

    def _locate(self, key: str) -> bytes | ChunkLocation | None:
        """Metadata bytes, inline chunk bytes, a chunk location, or None if absent."""
        prefix = self._metadata_prefix(key)
        if prefix is not None:
            node = self._live.get(prefix)
            return None if node is None else node.zarr_metadata
        found = self._find_chunk(key)
        if found is None:
            return None
        node, part, coords = found
        if coords is None:
            return None
        changes = self._chunks.get(node.id)
        if changes is not None:
            change = changes.reads(part)
            if change is not None:
                kind, source, seq, offset, length = change
                if kind == TOMBSTONE:
                    return None
                if kind == INLINE:
                    return bytes(changes.inline[offset : offset + length])
                return ChunkLocation(NATIVE, chunk_key(self._prefixes[source], seq), offset, length)
            if changes.override is not None:
                return self._locate_in(changes.override, coords)
        for ref in node.manifests_for(coords):
            if all(lo <= c < hi for c, (lo, hi) in zip(coords, ref.extent, strict=True)):
                found_loc = self._locate_in(self._repo._load_manifest(ref.id), coords)
                if found_loc is not None:
                    return found_loc
        return None

    @staticmethod
    def _locate_in(manifest: ManifestData, coords: tuple[int, ...]) -> bytes | ChunkLocation | None:
        row = lookup_row(manifest, coords)
        if row < 0:
            return None
        loc = resolve(manifest, row)
        return loc.data if loc.kind == INLINE else loc

    # -- reads --------------------------------------------------------------------
    def _finish_read(self, loc: ChunkLocation, window: Window | None) -> tuple[str, int, int]:
        if loc.kind == VIRTUAL:
            raise SessionStateError(
                "this array has virtual chunks, which this version of icechunk_fast "
                "cannot read yet",
                kind="virtual-chunks-unsupported",
            )
        start, end = (0, loc.length) if window is None else window(loc.length)
        return loc.key, loc.offset + start, loc.offset + end

    def _check_length(self, data: bytes, want: int, key: str) -> bytes:
        if len(data) != want:
            raise FormatError(
                f"chunk object {key} is truncated: expected {want} bytes, read {len(data)}"
            )
        return data

    def read(self, key: str, window: Window | None = None) -> bytes | None:
        """The value of store key ``key`` (restricted to ``window``), or None."""
        loc = self._locate(key)
        if loc is None:
            return None
        if isinstance(loc, bytes):
            if window is None:
                return loc
            start, end = window(len(loc))
            return loc[start:end]
        obj, start, end = self._finish_read(loc, window)
        if end <= start:
            return b""
        if self._packer is not None:
            pending = self._packer.read(obj, start, end)
            if pending is not None:
                return self._check_length(pending, end - start, obj)
        return self._check_length(self._repo._read_chunk(obj, start, end), end - start, obj)

    async def read_async(self, key: str, window: Window | None = None) -> bytes | None:
        """Async twin of :meth:`read`; the chunk fetch is awaited."""
        loc = self._locate(key)
        if loc is None:
            return None
        if isinstance(loc, bytes):
            if window is None:
                return loc
            start, end = window(len(loc))
            return loc[start:end]
        obj, start, end = self._finish_read(loc, window)
        if end <= start:
            return b""
        if self._packer is not None:
            pending = self._packer.read(obj, start, end)
            if pending is not None:
                return self._check_length(pending, end - start, obj)
        repo = self._repo
        if repo._chunks is not None or repo._disk_chunks:
            data = repo._read_chunk(obj, start, end)
        else:
            data = await self._storage.get_range_async(obj, start, end)
        return self._check_length(data, end - start, obj)

    def read_many(
        self,
        requests: Iterable[tuple[str, Window | None]],
        *,
        coalescing: CoalescePolicy | None = None,
    ) -> list[bytes | None]:
        """The values of many store keys (each restricted to its window), in order.

        Metadata, inline chunks and chunks of packs not yet stored are served from
        memory, then cached chunks; the remaining byte ranges are grouped by storage
        object, neighbouring ranges of one object are fetched with one request and very
        large ones in concurrent parts, all in one batch.

        Parameters
        ----------
        requests
            ``(key, window)`` pairs; a key may appear several times.
        coalescing
            Gap, size and split limits for this call (default: the repository's
            ``read_coalesce_*`` and ``read_split_bytes`` settings).

        Returns
        -------
        list of bytes or None
            One value per request; None for a key that is absent.

        Raises
        ------
        FormatError
            A chunk object is shorter than its refs say.
        """
        out, slots, objs, starts, ends = self._gather_reads(requests)
        if slots:
            values = self._repo._reader.read_many(objs, starts, ends, coalescing)
            for slot, data in zip(slots, values, strict=True):
                out[slot] = data
        return out

    async def read_many_async(
        self,
        requests: Iterable[tuple[str, Window | None]],
        *,
        coalescing: CoalescePolicy | None = None,
    ) -> list[bytes | None]:
        """Async twin of :meth:`read_many`; the fetch is awaited."""
        out, slots, objs, starts, ends = self._gather_reads(requests)
        if slots:
            values = await self._repo._reader.read_many_async(objs, starts, ends, coalescing)
            for slot, data in zip(slots, values, strict=True):
                out[slot] = data
        return out

    def _gather_reads(
        self, requests: Iterable[tuple[str, Window | None]]
    ) -> tuple[list[bytes | None], list[int], list[str], list[int], list[int]]:
        """Values known without storage, and the byte ranges to fetch for the rest."""
        out: list[bytes | None] = []
        slots: list[int] = []
        objs: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        packer = self._packer
        for key, window in requests:
            loc = self._locate(key)
            if loc is None or isinstance(loc, bytes):
                if loc is not None and window is not None:
                    cut_start, cut_end = window(len(loc))
                    loc = loc[cut_start:cut_end]
                out.append(loc)
                continue
            obj, start, end = self._finish_read(loc, window)
            if end <= start:
                out.append(b"")
                continue
            if packer is not None:
                pending = packer.read(obj, start, end)
                if pending is not None:
                    out.append(self._check_length(pending, end - start, obj))
                    continue
            slots.append(len(out))
            out.append(None)
            objs.append(obj)
            starts.append(start)
            ends.append(end)
        return out, slots, objs, starts, ends

    def size_of(self, key: str) -> int | None:
        loc = self._locate(key)
        if loc is None:
            return None
        return len(loc) if isinstance(loc, bytes) else loc.length

    # -- writes -------------------------------------------------------------------
    @staticmethod
    def _metadata_prefix(key: str) -> str | None:
        """The node prefix if ``key`` is a ``zarr.json`` document, else None."""
        if key == METADATA_NAME:
            return ""
        if key.endswith("/" + METADATA_NAME):
            return key[: -len(METADATA_NAME) - 1]
        return None

    def _chunk_target(self, key: str) -> tuple[_Node, str]:
        """The array and chunk part a chunk write goes to, checked against its grid."""
        found = self._find_chunk(key)
        if found is None:
            raise InvalidInputError(
                f"invalid key {key!r}: neither a zarr.json nor a chunk of an existing array "
                "(write the array's zarr.json first)",
                kind="invalid-key",
            )
        node, part, coords = found
        if coords is None:
            raise InvalidInputError(
                f"invalid chunk key {key!r} for array /{node.prefix}", kind="invalid-key"
            )
        grid = self._layout(node).grid_shape
        if grid is not None and any(c >= g for c, g in zip(coords, grid, strict=True)):
            raise InvalidInputError(
                f"chunk {key!r} lies outside the chunk grid {grid} of array /{node.prefix}",
                kind="invalid-key",
            )
        return node, part

    def _changes_of(self, node: _Node) -> ArrayChanges:
        changes = self._chunks.get(node.id)
        if changes is None:
            changes = self._chunks[node.id] = ArrayChanges()
        return changes

    def write(self, key: str, data: bytes) -> None:
        """Write the value of store key ``key``."""
        self._check_data_writable()
        prefix = self._metadata_prefix(key)
        if prefix is not None:
            with self._lock:
                self._set_metadata(prefix, data)
            return
        node, part = self._chunk_target(key)
        if len(data) <= self._inline_threshold:
            with self._lock:
                self._changes_of(node).set_inline(part, data)
            return
        if self._pack_target:
            (prefix_index, seq), offset, full = self._pack_writer().append(data)
            with self._lock:
                self._changes_of(node).set_native(part, prefix_index, seq, offset, len(data))
            if full is not None:
                self._storage.put(*full)
                self._pack_writer().uploaded(full[0])
            return
        prefix_index, seq = self._new_chunk_id()
        self._storage.put(chunk_key(self._prefixes[prefix_index], seq), data)
        with self._lock:
            self._changes_of(node).set_native(part, prefix_index, seq, 0, len(data))

    def _pack_writer(self) -> PackWriter:
        packer = self._packer
        if packer is None:
            with self._lock:
                if self._packer is None:
                    self._packer = PackWriter(
                        self._new_chunk_id,
                        lambda pack: chunk_key(self._prefixes[pack[0]], pack[1]),
                        self._pack_target,
                    )
                packer = self._packer
        return packer

    def _flush_packs(self) -> None:
        """Store the pack being filled and any whose upload failed or is still running."""
        packer = self._packer
        if packer is None:
            return
        packer.seal()
        for key, data in packer.unstored():
            self._storage.put(key, data)
            packer.uploaded(key)

    async def write_async(self, key: str, data: bytes) -> None:
        """Async twin of :meth:`write`; the chunk upload is awaited."""
        self._check_data_writable()
        if self._metadata_prefix(key) is not None or len(data) <= self._inline_threshold:
            self.write(key, data)
            return
        node, part = self._chunk_target(key)
        if self._pack_target:
            packer = self._pack_writer()
            (prefix_index, seq), offset, full = packer.append(data)
            with self._lock:
                self._changes_of(node).set_native(part, prefix_index, seq, offset, len(data))
            if full is not None:
                await self._storage.put_async(*full)
                packer.uploaded(full[0])
            return
        prefix_index, seq = self._new_chunk_id()
        await self._storage.put_async(chunk_key(self._prefixes[prefix_index], seq), data)
        with self._lock:
            self._changes_of(node).set_native(part, prefix_index, seq, 0, len(data))

    def _new_chunk_id(self) -> tuple[int, int]:
        with self._lock:
            if self._allocator is None:
                self._allocator = ChunkIdAllocator()
            prefix, seq = self._allocator.allocate()
            if not self._prefixes or self._prefixes[-1] != prefix:
                self._prefixes.append(prefix)
            return len(self._prefixes) - 1, seq

    def _set_metadata(self, prefix: str, data: bytes) -> None:
        doc = _parse_metadata(data)
        node_type = doc["node_type"]
        data = bytes(data)
        if node_type == "array":
            _layout_of(data)  # refuse unusable array metadata now, not at first chunk
        node = self._live.get(prefix)
        if node is not None and node.node_type == node_type:
            if node.zarr_metadata == data:
                return
            node.zarr_metadata = data
            node.layout = None
            is_new = node.id not in self._base_ids
            self._changed[prefix] = NodeChange(node.id, node_type, data, is_new)
            return
        if node is not None:
            self._delete_node(prefix)
        node = _Node(new_node_id(), prefix, node_type, data, ())
        self._live[prefix] = node
        self._changed[prefix] = NodeChange(node.id, node_type, data, True)

    def _delete_node(self, prefix: str) -> None:
        node = self._live.pop(prefix, None)
        if node is None:
            return
        self._changed.pop(prefix, None)
        self._chunks.pop(node.id, None)
        if node.id in self._base_ids:
            base = self._snapshot.nodes[node_path_of(prefix)]
            self._deleted[prefix] = base

    def delete(self, key: str) -> None:
        """Delete store key ``key``; a missing key is not an error."""
        self._check_data_writable()
        prefix = self._metadata_prefix(key)
        with self._lock:
            if prefix is not None:
                self._delete_node(prefix)
                return
            found = self._find_chunk(key)
            if found is None or found[2] is None or self._locate(key) is None:
                return
            self._changes_of(found[0]).delete(found[1])

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under directory ``prefix`` (``""``: everything)."""
        self._check_data_writable()
        prefix = prefix.rstrip("/")
        with self._lock:
            for node_prefix in list(self._live):
                if not prefix or node_prefix == prefix or node_prefix.startswith(prefix + "/"):
                    self._delete_node(node_prefix)
            # a directory inside an array's chunk space: delete just those chunks
            for key in list(self._chunk_keys_under(prefix + "/")) if prefix else []:
                self.delete(key)

    def discard_changes(self) -> None:
        """Forget every uncommitted change (chunks already uploaded become garbage)."""
        self._check_writable()
        with self._lock:
            self._reset_to(self._snapshot)
            self._packer = None  # its bytes were never referenced by a commit
            self._unacknowledged = None

    # -- listing ------------------------------------------------------------------
    def _array_chunk_parts(self, node: _Node) -> list[str]:
        fmt = self._layout(node).key_format
        changes = self._chunks.get(node.id)
        base = self._base_manifest(node)
        parts: list[str] = [] if base is None else fmt.format_many(base.coords)
        if changes is not None:
            touched = changes.index
            parts = [p for p in parts if p not in touched]
            parts.extend(changes.written_keys())
        return parts

    def _chunk_keys_under(self, prefix: str) -> Iterator[str]:
        for node in list(self._live.values()):
            if node.node_type != "array":
                continue
            base = _join(node.prefix, "")
            if not (base.startswith(prefix) or prefix.startswith(base)):
                continue
            for part in self._array_chunk_parts(node):
                key = _join(node.prefix, part)
                if key.startswith(prefix):
                    yield key

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with ``prefix``: metadata documents, then chunks."""
        for node in list(self._live.values()):
            key = _metadata_key(node.prefix)
            if key.startswith(prefix):
                yield key
        yield from self._chunk_keys_under(prefix)

    def list_dir(self, prefix: str) -> Iterator[str]:
        """Names directly under directory ``prefix``, from the node table."""
        prefix = prefix.rstrip("/")
        names: set[str] = set()
        for node in list(self._live.values()):
            if node.prefix == prefix:
                names.add(METADATA_NAME)
                if node.node_type == "array":
                    fmt = self._layout(node).key_format
                    if fmt.default:
                        if self._array_has_chunks(node):
                            names.add("c")
                    else:
                        names.update(p.split("/")[0] for p in self._array_chunk_parts(node))
            elif not prefix or node.prefix.startswith(prefix + "/"):
                rest = node.prefix[len(prefix) + 1 :] if prefix else node.prefix
                names.add(rest.split("/")[0])
        # a directory inside an array's chunk space, like "a/c" or "a/c/1"
        inside = prefix + "/"
        for node in list(self._live.values()):
            if (
                node.node_type == "array"
                and prefix != node.prefix
                and inside.startswith(_join(node.prefix, ""))
            ):
                for part in self._array_chunk_parts(node):
                    key = _join(node.prefix, part)
                    if key.startswith(inside):
                        names.add(key[len(inside) :].split("/")[0])
        yield from sorted(names)

    def _array_has_chunks(self, node: _Node) -> bool:
        changes = self._chunks.get(node.id)
        if changes is None or not len(changes):
            return any(ref.num_refs for ref in node.manifests)
        if changes.override is not None and not changes.index:
            return len(changes.override) > 0
        if changes.written_keys():
            return True
        return bool(self._array_chunk_parts(node))

    # -- commit -------------------------------------------------------------------
    def _prepare_publish(
        self, message: str, metadata: dict[str, Any] | None, allow_empty: bool
    ) -> dict[str, Any]:
        self._check_writable()
        if not isinstance(message, str):
            raise InvalidInputError("commit message must be a str")
        merged = {**self._repo.default_commit_metadata(), **(metadata or {})}
        try:
            json.dumps(merged)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"commit metadata must be JSON-serializable: {exc}") from exc
        if not self.has_uncommitted_changes and not allow_empty:
            raise SessionStateError(
                "no changes to commit; pass allow_empty=True to commit anyway",
                kind="no-changes-to-commit",
            )
        return merged

    def _publish(self, message: str, metadata: dict[str, Any], kind: str) -> str:
        """Write manifests, log and snapshot, then swap them into the history."""
        self._flush_packs()
        with self._lock:
            base = self._snapshot
            if kind == "commit_amended":
                parent, earlier = base.parent_id, [self._repo._load_transaction_log(base.id)]
            else:
                parent, earlier = base.id, []
            pending, self._unacknowledged = self._unacknowledged, None
            if pending is not None and self._repo._has_snapshot(pending.id):
                snapshot = pending  # the last attempt landed; only its reply was lost
            else:
                snapshot, log = self._build_snapshot(message, metadata, parent)
                if earlier:
                    log = combine_logs([*earlier, log])
                self._storage.put(transaction_log_key(snapshot.id), log.encode(self._level))
                self._storage.put(snapshot_key(snapshot.id), snapshot.encode(self._level))
                branch = None if kind == "new_detached_snapshot" else self._branch
                try:
                    self._repo._publish(snapshot, branch, base.id, kind)
                except OSError:  # StorageError too: the swap may have landed all the same,
                    # so a retry checks for it before committing a second time
                    self._unacknowledged = snapshot
                    raise
            self._read_only = True
            self._reset_to(snapshot)
        return snapshot.id

    def commit(
        self,
        message: str,
        metadata: dict[str, Any] | None = None,
        *,
        rebase_with: ConflictSolver | None = None,
        rebase_tries: int = 1000,
        allow_empty: bool = False,
    ) -> str:
        """Write the changes as a new snapshot and move the branch to it.

        Parameters
        ----------
        message
            Commit message.
        metadata
            JSON-serializable mapping stored with the snapshot, laid over the
            repository's default commit metadata.
        rebase_with
            If the branch moved, rebase with this solver and try again, up to
            ``rebase_tries`` times. The number of rebases is recorded in the commit
            metadata as ``rebase_attempts``.
        allow_empty
            Commit even if nothing changed.

        Returns
        -------
        str
            The id of the new snapshot.

        Raises
        ------
        ConflictError
            The branch moved since this session started (and no ``rebase_with``, or
            the tries ran out); nothing became visible.
        RebaseFailedError
            A rebase met conflicts the solver could not solve.
        SessionStateError
            Nothing to commit (and ``allow_empty`` is False).
        """
        merged = self._prepare_publish(message, metadata, allow_empty)
        if self._branch is None:
            raise SessionStateError("this session has no branch to commit to")
        attempts = 0
        while True:
            try:
                if attempts:
                    merged = {**merged, "rebase_attempts": attempts}
                return self._publish(message, merged, "new_commit")
            except ConflictError as exc:
                if (
                    rebase_with is None
                    or attempts >= rebase_tries
                    or type(exc) is not ConflictError
                ):
                    raise
                attempts += 1
                self.rebase(rebase_with)

    def amend(
        self, message: str, *, metadata: dict[str, Any] | None = None, allow_empty: bool = False
    ) -> str:
        """Replace the tip of the branch with a snapshot holding its changes and these.

        The new snapshot has the old tip's parent; the old tip leaves the branch's
        history (tags pointing at it keep it). The first snapshot cannot be amended.

        Raises
        ------
        ConflictError
            The branch moved since this session started.
        """
        self._repo._require_spec(2, "amend")
        merged = self._prepare_publish(message, metadata, allow_empty)
        if self._branch is None:
            raise SessionStateError("this session has no branch to amend")
        if self._snapshot.parent_id is None:
            raise SessionStateError(
                "the repository's first snapshot cannot be amended; commit instead",
                kind="cannot-amend-root",
            )
        return self._publish(message, merged, "commit_amended")

    def flush(self, message: str, *, metadata: dict[str, Any] | None = None) -> str:
        """Write the changes as a snapshot that no branch points to (yet).

        Adopt it later with ``repo.reset_branch(branch, snapshot_id)``.
        """
        merged = self._prepare_publish(message, metadata, allow_empty=True)
        return self._publish(message, merged, "new_detached_snapshot")

    async def commit_async(
        self,
        message: str,
        metadata: dict[str, Any] | None = None,
        *,
        rebase_with: ConflictSolver | None = None,
        rebase_tries: int = 1000,
        allow_empty: bool = False,
    ) -> str:
        """Async twin of :meth:`commit`."""
        return await asyncio.to_thread(
            functools.partial(
                self.commit,
                message,
                metadata,
                rebase_with=rebase_with,
                rebase_tries=rebase_tries,
                allow_empty=allow_empty,
            )
        )

    async def amend_async(
        self, message: str, *, metadata: dict[str, Any] | None = None, allow_empty: bool = False
    ) -> str:
        """Async twin of :meth:`amend`."""
        return await asyncio.to_thread(
            functools.partial(self.amend, message, metadata=metadata, allow_empty=allow_empty)
        )

    async def flush_async(self, message: str, *, metadata: dict[str, Any] | None = None) -> str:
        """Async twin of :meth:`flush`."""
        return await asyncio.to_thread(functools.partial(self.flush, message, metadata=metadata))

    # -- rearranging (implemented in rearrange.py) -------------------------------------
    def move(self, from_path: str, to_path: str) -> None:
        """Rename a group or array (with everything under it); no data is copied.

        Needs a session from :meth:`Repository.rearrange_session`.
        """
        rearrange.move(self, from_path, to_path)

    def shift_array(self, array_path: str, chunk_offset: Sequence[int]) -> None:
        """Move every chunk of an array by ``chunk_offset`` chunks, metadata only.

        Chunks shifted past the edge of the chunk grid are dropped, vacated positions
        read as the fill value. Grow the array first (``array.resize``) to keep them.
        """
        rearrange.shift_array(self, array_path, chunk_offset)

    def reindex_array(
        self,
        array_path: str,
        forward: Callable[[list[int]], Sequence[int] | None],
        backward: Callable[[list[int]], Sequence[int] | None] | None = None,
    ) -> None:
        """Move chunks to new positions given by ``forward(old_coords)``, metadata only.

        ``forward`` returns the new chunk coordinates, or None to leave a chunk where it
        is. Only existing chunks are visited. With ``backward`` (the inverse mapping),
        every existing position whose source is out of range or empty is cleared.
        """
        rearrange.reindex_array(self, array_path, forward, backward)

    def chunk_type(self, array_path: str, chunk_coordinates: Sequence[int]) -> ChunkType:
        """Whether a chunk is uninitialized, inline, native or virtual."""
        return rearrange.chunk_type(self, array_path, chunk_coordinates)

    def chunk_coordinates(
        self, array_path: str, batch_size: int = 1000
    ) -> AsyncIterator[tuple[int, ...]]:
        """Every initialized chunk of an array, in coordinate order (async iterator)."""
        return rearrange.chunk_coordinates(self, array_path, batch_size)

    def _check_acknowledged(self) -> None:
        if self._unacknowledged is not None:
            raise SessionStateError(
                "the last commit of this session may have landed (its reply was lost); "
                "retry the commit, or discard_changes(), before changing anything else",
                kind="commit-unacknowledged",
            )

    def _check_data_writable(self) -> None:
        self._check_writable()
        self._check_acknowledged()
        if self._rearrange:
            raise SessionStateError(
                "a rearrange session can only move nodes; use repo.writable_session(branch)",
                kind="rearrange-session-is-move-only",
            )

    # -- rebase ---------------------------------------------------------------------
    def rebase(self, solver: ConflictSolver) -> None:
        """Replay this session's changes over every commit made on its branch since
        the session started, asking ``solver`` about each conflict.

        Raises
        ------
        RebaseFailedError
            A commit's changes conflict with ours in a way ``solver`` does not solve;
            the session stays based on the last commit it could be rebased over.
        """
        from .conflicts import find_conflicts

        self._check_writable()
        self._check_acknowledged()
        if self._branch is None:
            raise SessionStateError("this session has no branch to rebase on")
        with self._lock:
            for snapshot_id in self._repo._commits_since(self._branch, self._snapshot.id):
                theirs = self._repo._load_transaction_log(snapshot_id)
                their_snapshot = self._repo._load_snapshot(snapshot_id)
                conflicts = find_conflicts(self, theirs, their_snapshot)
                solver.solve(self, conflicts, snapshot_id)
                self._rebase_onto(their_snapshot)

    def _rebase_onto(self, snapshot: Snapshot) -> None:
        """Keep every change, now on top of ``snapshot`` (a descendant of the base)."""
        from .conflicts import rebase_rewrite

        changed, deleted, chunks = self._changed, self._deleted, self._chunks
        old_manifests = {node.id: node.manifests for node in self._live.values()}
        self._reset_to(snapshot)
        by_id = {node.id: prefix for prefix, node in self._live.items()}
        for base in deleted.values():
            prefix = by_id.get(base.id)
            if prefix is not None:
                self._delete_node(prefix)
        for prefix, change in changed.items():
            if change.is_new:
                self._live[prefix] = _Node(
                    change.node_id, prefix, change.node_type, change.zarr_metadata, ()
                )
            else:
                node = self._live.get(by_id.get(change.node_id, prefix))
                if node is None:
                    continue  # deleted by them and the solver let it go
                node.zarr_metadata = change.zarr_metadata
                node.layout = None
            self._changed[prefix] = change
        live = {node.id: node for node in self._live.values()}
        for nid, c in chunks.items():
            node = live.get(nid)
            if (
                c.override is not None
                and node is not None
                and node.manifests != old_manifests.get(nid, node.manifests)
            ):  # they changed the array's refs; self._chunks is still empty, so
                # _base_manifest gives theirs
                c.override = rebase_rewrite(c, self._base_manifest(node))
        self._chunks = {nid: c for nid, c in chunks.items() if nid in live}

    def _drop_chunk_changes(self, node_id: str, coords: np.ndarray) -> None:
        """Forget our writes of the chunks at ``coords`` (theirs win)."""
        changes = self._chunks.get(node_id)
        if changes is None or not len(coords):
            return
        node = next(n for n in self._live.values() if n.id == node_id)
        fmt = self._layout(node).key_format
        for key in fmt.format_many(coords):
            changes.index.pop(key, None)
        if changes.touched:  # a shift or reindex: their refs win at these coordinates
            from . import kernels

            touched = union_rows(changes.touched)
            dropped = coords[kernels.sort_coords(coords)]
            changes.touched = [touched[kernels.lookup_coords(dropped, touched) < 0]]

    def _node_log(self) -> TransactionLog:
        """The node-level part of this session's transaction log (no chunks yet)."""
        log = TransactionLog()
        for prefix, change in self._changed.items():
            group = change.node_type == "group"
            if change.is_new:
                target = log.new_groups if group else log.new_arrays
            else:
                target = log.updated_groups if group else log.updated_arrays
            target[change.node_id] = node_path_of(prefix)
        for prefix, base in self._deleted.items():
            target = log.deleted_groups if base.node_type == "group" else log.deleted_arrays
            target[base.id] = node_path_of(prefix)
        log.moved_nodes = list(self._moves)
        return log

    def status(self) -> Diff:
        """What this session changed and has not committed yet."""
        with self._lock:
            log = self._node_log()
            paths = {}
            for node in self._live.values():
                paths[node.id] = node_path_of(node.prefix)
                changes = self._chunks.get(node.id)
                if changes is not None and len(changes):
                    fmt = self._layout(node).key_format
                    log.updated_chunks[node.id] = changes.touched_coords(fmt)
        return compose_logs([log], paths)

    def _build_snapshot(
        self, message: str, metadata: dict[str, Any], parent_id: str | None
    ) -> tuple[Snapshot, TransactionLog]:
        log = self._node_log()
        prefixes = np.array(self._prefixes, dtype=np.uint64)
        nodes: dict[str, NodeSnapshot] = {}
        for prefix, node in self._live.items():
            path = node_path_of(prefix)
            manifests, split = node.manifests, node.split
            changes = self._chunks.get(node.id)
            if node.node_type == "array" and changes is not None and len(changes):
                manifests, split = self._write_manifests(node, changes, prefixes)
                log.updated_chunks[node.id] = changes.touched_coords(self._layout(node).key_format)
            node_type: NodeType = "array" if node.node_type == "array" else "group"
            nodes[path] = NodeSnapshot(
                node.id, path, node_type, node.zarr_metadata, manifests, split
            )
        snapshot = Snapshot(
            new_snapshot_id(), parent_id, datetime.now(UTC), message, metadata, nodes
        )
        return snapshot, log

    def _split_of(self, node: _Node) -> tuple[int, ...] | None:
        """Chunks per manifest box the config asks for this array (None: one manifest)."""
        splitting = self._repo.config.manifest_splitting
        layout = self._layout(node)
        if splitting is None:
            return default_split_sizes(layout.grid_shape)
        return splitting.split_sizes_for(
            "/" + node.prefix, layout.dimension_names, layout.key_format.ndim
        )

    def _write_manifests(
        self, node: _Node, changes: ArrayChanges, prefixes: np.ndarray
    ) -> tuple[tuple[ManifestRef, ...], tuple[int, ...] | None]:
        """New manifests of an array with changes, and the split they follow.

        With a split that the array's manifests already follow, only the boxes holding
        changed chunks are merged and rewritten; other boxes keep their manifests.
        Otherwise (first split, a changed policy, a shift or reindex) the array's refs
        are rewritten whole.
        """
        split = self._split_of(node)
        if split is None:
            merged = self._effective_manifest(node, prefixes)
            return self._put_manifests([merged]), None
        by_cell = node.manifests_by_cell() if node.split == split else None
        if by_cell is None or changes.override is not None:
            parts = split_manifest(self._effective_manifest(node, prefixes), split)
            return self._put_manifests([m for _, m in parts]), split
        by_cell = dict(by_cell)
        columns, deleted = changes.to_columns(self._layout(node).key_format, prefixes)
        merged_cells = []
        for cell, rows in cell_groups(columns.coords, split):
            old = by_cell.pop(cell, None)
            base = None if old is None else self._repo._load_manifest(old.id)
            part = take_rows(columns, rows)
            merged_cells.append((cell, merge_changes(base, part, deleted[rows])))
        new = self._put_manifests([m for _, m in merged_cells])
        return tuple(sorted((*new, *by_cell.values()), key=lambda r: r.extent)), split

    def _put_manifests(self, manifests: Sequence[ManifestData]) -> tuple[ManifestRef, ...]:
        """Write the non-empty ``manifests``; their refs, in order."""
        refs = []
        for manifest in manifests:
            if not len(manifest):
                continue
            manifest_id = new_snapshot_id()
            self._storage.put(manifest_key(manifest_id), manifest.encode(self._level))
            self._repo._cache_manifest(manifest_id, manifest)
            refs.append(ManifestRef(manifest_id, manifest.extent(), len(manifest)))
        return tuple(refs)

    def _base_manifest(self, node: _Node) -> ManifestData | None:
        """The refs the array starts from: a rewrite of this session, or its manifests."""
        changes = self._chunks.get(node.id)
        if changes is not None and changes.override is not None:
            return changes.override
        if not node.manifests:
            return None
        return concat_manifests([self._repo._load_manifest(ref.id) for ref in node.manifests])

    def _effective_manifest(self, node: _Node, prefixes: np.ndarray | None = None) -> ManifestData:
        """All refs of the array as this session sees them, as one manifest."""
        base = self._base_manifest(node)
        changes = self._chunks.get(node.id)
        if changes is None or not changes.index:
            return (
                base if base is not None else ManifestData.empty(self._layout(node).key_format.ndim)
            )
        if prefixes is None:
            prefixes = np.array(self._prefixes, dtype=np.uint64)
        columns, deleted = changes.to_columns(self._layout(node).key_format, prefixes)
        return merge_changes(base, columns, deleted)

    # -- used by the store ------------------------------------------------------------
    def node_count(self) -> int:
        return len(self._live)

    @staticmethod
    def validate_key(key: str, *, allow_empty: bool = False) -> str:
        return validate_store_key(key, allow_empty=allow_empty)


def _restore_session(repo: Repository, snapshot_id: str, branch: str | None) -> Session:
    session = repo.readonly_session(snapshot_id=snapshot_id)
    session._branch = branch
    return session
