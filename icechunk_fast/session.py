"""Sessions: a view of one snapshot plus the changes made on top of it.

A session resolves Zarr keys against its node table and change set, writes chunks
straight to storage as they arrive (so memory stays bounded), and at commit hands its
changes to :func:`~icechunk_fast.flush.build_snapshot` and the result to
:func:`~icechunk_fast.history.publish`. It holds the repository's object layer
(:class:`~icechunk_fast.assets.AssetManager`), never the repository itself.

Why this module is longer than the ~600 lines the house style aims for: it is the public
facade, 37 public methods and properties (a fifth of the lines are their docstrings),
each a state check around a call into the modules that do the work (lookup.py,
listing.py, chunk_writer.py, changeset.py, flush.py, history.py, rearrange.py,
conflicts/). Splitting the class further would spread the state checks (read-only,
unacknowledged commit, move-only) over several files for no gain in clarity.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from . import history, listing, rearrange
from .assets import AssetManager
from .batching import CoalescePolicy
from .changeset import ChangeSet
from .chunk_writer import ChunkWriter
from .config import RepositoryConfig
from .conflicts import ConflictSolver
from .conflicts.detector import find_conflicts
from .conflicts.rebase import rebase_onto
from .diff import Diff, combine_logs, compose_logs
from .errors import ConflictError, InvalidInputError, ReadOnlyError, SessionStateError
from .flush import build_snapshot
from .format.manifest import NATIVE, VIRTUAL, ManifestData
from .format.snapshot import ManifestRef, Snapshot
from .keys import join_key, metadata_prefix, node_path_of
from .lookup import Located, check_absent_key, locate_in, resolve_key
from .manifest import ChunkLocation
from .nodes import Node, NodeTable
from .reads import check_length
from .records import ChunkType, SessionMode, SpecVersion
from .store import IcechunkStore, Window

__all__ = ["Session"]


class Session:
    """A read-only view of a snapshot, or a writable one on the tip of a branch.

    Get one from :meth:`Repository.readonly_session` or
    :meth:`Repository.writable_session`; read and write through :attr:`store`.
    """

    def __init__(
        self,
        assets: AssetManager,
        config: RepositoryConfig,
        snapshot: Snapshot,
        branch: str | None,
        read_only: bool,
        *,
        spec_version: int,
        default_metadata: dict[str, Any] | None = None,
        preloads: Sequence[Future[None]] = (),
        rearrange: bool = False,
    ) -> None:
        self._assets = assets
        self._config = config
        self._spec_version = spec_version
        self._default_metadata = dict(default_metadata or {})
        self._rearrange = rearrange
        self._branch = branch
        self._read_only = read_only
        self._inline_threshold = config.inline_threshold
        self._writer = ChunkWriter(assets, config.pack_target_bytes)
        # writers from several threads (dask, zarr's sync pipeline) share one session
        self._lock = threading.RLock()
        self._preloads = list(preloads)  # background manifest fetches (preload.py)
        self._unacknowledged: Snapshot | None = None  # published, but the reply was lost
        self._reset_to(snapshot)

    def _reset_to(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._nodes = NodeTable(snapshot)
        self._changes = ChangeSet()

    @classmethod
    def _reopen(
        cls,
        assets: AssetManager,
        config: RepositoryConfig,
        snapshot_id: str,
        branch: str | None,
        spec_version: int,
    ) -> Session:
        """A read-only session on ``snapshot_id`` (how sessions unpickle)."""
        snapshot = assets.load_snapshot(snapshot_id)
        return cls(assets, config, snapshot, branch, True, spec_version=spec_version)

    # -- properties ------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """True for sessions that cannot write (time travel, or after a commit)."""
        return self._read_only

    @property
    def mode(self) -> SessionMode:
        """``readonly``, ``writable``, or ``rearrange`` (a session that only moves nodes)."""
        if self._read_only:
            return SessionMode.readonly
        return SessionMode.rearrange if self._rearrange else SessionMode.writable

    @property
    def config(self) -> RepositoryConfig:
        """A copy of the repository config this session was opened with."""
        return copy.deepcopy(self._config)

    @property
    def snapshot_id(self) -> str:
        """The snapshot this session reads (after a commit: the new one)."""
        return self._snapshot.id

    @property
    def branch(self) -> str | None:
        """The branch this session commits to (None for time-travel sessions)."""
        return self._branch

    @property
    def has_uncommitted_changes(self) -> bool:
        """True if anything was written, deleted or moved since the last commit."""
        return not self._changes.is_empty()

    @property
    def is_move_only(self) -> bool:
        """True for a rearrange session, which can only move nodes."""
        return self._rearrange

    @property
    def coalescing(self) -> CoalescePolicy:
        """The repository's default limits of batched reads."""
        return self._assets.coalescing

    @property
    def change_set(self) -> ChangeSet:
        """What this session changed (for conflict solvers: read, do not edit)."""
        return self._changes

    @property
    def store(self) -> IcechunkStore:
        """The Zarr store reading and writing through this session."""
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
        args = (self._assets, self._config, self._snapshot.id, self._branch, self._spec_version)
        return (Session._reopen, args)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Session):
            return NotImplemented
        if self is other:
            return True
        return (
            self._read_only
            and other._read_only
            and self._snapshot.id == other._snapshot.id
            and self._assets.storage == other._assets.storage
        )

    def __hash__(self) -> int:
        return hash(self._snapshot.id)

    # -- state checks ------------------------------------------------------------------
    def check_writable(self) -> None:
        """Raise :class:`ReadOnlyError` unless this session can write."""
        if self._read_only:
            raise ReadOnlyError(
                "this session is read-only (a time-travel session, or one that already "
                "committed); open repo.writable_session(branch) to write",
                kind="read-only-session",
            )

    def _check_acknowledged(self) -> None:
        if self._unacknowledged is not None:
            raise SessionStateError(
                "the last commit of this session may have landed (its reply was lost); "
                "retry the commit, or discard_changes(), before changing anything else",
                kind="commit-unacknowledged",
            )

    def _check_data_writable(self) -> None:
        self.check_writable()
        self._check_acknowledged()
        if self._rearrange:
            raise SessionStateError(
                "a rearrange session can only move nodes; use repo.writable_session(branch)",
                kind="rearrange-session-is-move-only",
            )

    # -- key resolution ----------------------------------------------------------------
    def _resolve(self, key: str) -> tuple[Located, Sequence[ManifestRef], tuple[int, ...]]:
        return resolve_key(self._nodes, self._changes, self._writer.prefixes, key)

    def _locate(self, key: str) -> Located:
        """Metadata bytes, inline chunk bytes, a chunk location, or None if absent."""
        value, refs, coords = self._resolve(key)
        for ref in refs:
            found = locate_in(self._assets.load_manifest(ref.id), coords)
            if found is not None:
                return found
        return value

    async def _locate_async(self, key: str) -> Located:
        """:meth:`_locate` with manifest misses awaited."""
        value, refs, coords = self._resolve(key)
        for ref in refs:
            found = locate_in(await self._assets.load_manifest_async(ref.id), coords)
            if found is not None:
                return found
        return value

    # -- reads -------------------------------------------------------------------------
    def _finish_read(
        self, loc: bytes | ChunkLocation, window: Window | None
    ) -> bytes | tuple[str, int, int]:
        """The value if memory holds it, else the byte range ``(object, start, end)``."""
        if isinstance(loc, bytes):
            if window is None:
                return loc
            start, end = window(len(loc))
            return loc[start:end]
        if loc.kind == VIRTUAL:
            raise SessionStateError(
                "this array has virtual chunks, which this version of icechunk_fast "
                "cannot read yet",
                kind="virtual-chunks-unsupported",
            )
        start, end = (0, loc.length) if window is None else window(loc.length)
        obj, start, end = loc.key, loc.offset + start, loc.offset + end
        if end <= start:
            return b""
        if self._writer.has_pending:
            pending = self._writer.pending(obj, start, end)
            if pending is not None:
                return check_length(pending, end - start, obj)
        return obj, start, end

    def read(self, key: str, window: Window | None = None) -> bytes | None:
        """The value of store key ``key`` (restricted to ``window``), or None."""
        loc, refs, coords = resolve_key(self._nodes, self._changes, self._writer.prefixes, key)
        for ref in refs:
            loc = locate_in(self._assets.load_manifest(ref.id), coords)
            if loc is not None:
                break
        if loc is None:
            return None
        if (
            window is None
            and not self._writer.has_pending
            and not isinstance(loc, bytes)
            and loc.kind == NATIVE
        ):  # the common case, without the general path's calls
            obj, start, end = loc.key, loc.offset, loc.offset + loc.length
            data = self._assets.read_chunk(obj, start, end)
            return data if len(data) == end - start else check_length(data, end - start, obj)
        plan = self._finish_read(loc, window)
        if isinstance(plan, bytes):
            return plan
        obj, start, end = plan
        return check_length(self._assets.read_chunk(obj, start, end), end - start, obj)

    async def read_async(self, key: str, window: Window | None = None) -> bytes | None:
        """Async twin of :meth:`read`: manifest and chunk fetches are awaited."""
        loc = await self._locate_async(key)
        if loc is None:
            return None
        plan = self._finish_read(loc, window)
        if isinstance(plan, bytes):
            return plan
        obj, start, end = plan
        data = await self._assets.read_chunk_async(obj, start, end)
        return check_length(data, end - start, obj)

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
        requests = list(requests)
        located = [self._locate(key) for key, _ in requests]
        out, slots, objs, starts, ends = self._plan_batch(requests, located)
        if slots:
            values = self._assets.read_chunks(objs, starts, ends, coalescing)
            for slot, data in zip(slots, values, strict=True):
                out[slot] = data
        return out

    async def read_many_async(
        self,
        requests: Iterable[tuple[str, Window | None]],
        *,
        coalescing: CoalescePolicy | None = None,
    ) -> list[bytes | None]:
        """Async twin of :meth:`read_many`: manifest and chunk fetches are awaited."""
        requests = list(requests)
        located = await self._locate_many_async([key for key, _ in requests])
        out, slots, objs, starts, ends = self._plan_batch(requests, located)
        if slots:
            values = await self._assets.read_chunks_async(objs, starts, ends, coalescing)
            for slot, data in zip(slots, values, strict=True):
                out[slot] = data
        return out

    async def _locate_many_async(self, keys: list[str]) -> list[Located]:
        """Locations of many keys; the manifests they need are fetched concurrently."""
        resolved = [self._resolve(key) for key in keys]
        wanted = {ref.id for _, refs, _ in resolved for ref in refs}
        ids = list(wanted)
        loaded = dict(
            zip(
                ids,
                await asyncio.gather(*(self._assets.load_manifest_async(i) for i in ids)),
                strict=True,
            )
        )
        located: list[Located] = []
        for value, refs, coords in resolved:
            for ref in refs:
                found = locate_in(loaded[ref.id], coords)
                if found is not None:
                    value = found
                    break
            located.append(value)
        return located

    def _plan_batch(
        self, requests: list[tuple[str, Window | None]], located: list[Located]
    ) -> tuple[list[bytes | None], list[int], list[str], list[int], list[int]]:
        """Values known without storage, and the byte ranges to fetch for the rest."""
        out: list[bytes | None] = []
        slots: list[int] = []
        objs: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for (_, window), loc in zip(requests, located, strict=True):
            if loc is None:
                out.append(None)
                continue
            plan = self._finish_read(loc, window)
            if isinstance(plan, bytes):
                out.append(plan)
                continue
            slots.append(len(out))
            out.append(None)
            objs.append(plan[0])
            starts.append(plan[1])
            ends.append(plan[2])
        return out, slots, objs, starts, ends

    def size_of(self, key: str) -> int | None:
        """The size of the value of ``key`` in bytes, or None if absent.

        Raises
        ------
        InvalidInputError
            ``key`` can be neither a ``zarr.json`` nor a chunk key of any array.
        """
        loc = self._locate(key)
        if loc is None:
            if metadata_prefix(key) is None:
                check_absent_key(self._nodes, key)
            return None
        return len(loc) if isinstance(loc, bytes) else loc.length

    # -- writes ------------------------------------------------------------------------
    def _chunk_target(self, key: str) -> tuple[Node, str]:
        """The array and chunk part a chunk write goes to, checked against its grid."""
        found = self._nodes.find_chunk(key)
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
        grid = node.array_layout().grid_shape
        if grid is not None and any(c >= g for c, g in zip(coords, grid, strict=True)):
            raise InvalidInputError(
                f"chunk {key!r} lies outside the chunk grid {grid} of array /{node.prefix}",
                kind="invalid-key",
            )
        return node, part

    def write(self, key: str, data: bytes) -> None:
        """Write the value of store key ``key``."""
        self._check_data_writable()
        prefix = metadata_prefix(key)
        if prefix is not None:
            with self._lock:
                self._changes.set_metadata(self._nodes, prefix, data)
            return
        node, part = self._chunk_target(key)
        if len(data) <= self._inline_threshold:
            with self._lock:
                self._changes.changes_of(node).set_inline(part, data)
            return
        self._writer.write(data, self._recorder(node, part, len(data)))

    async def write_async(self, key: str, data: bytes) -> None:
        """Async twin of :meth:`write`; the chunk upload is awaited."""
        self._check_data_writable()
        if metadata_prefix(key) is not None or len(data) <= self._inline_threshold:
            self.write(key, data)
            return
        node, part = self._chunk_target(key)
        await self._writer.write_async(data, self._recorder(node, part, len(data)))

    def _recorder(self, node: Node, part: str, length: int) -> Callable[[int, int, int], None]:
        """Records a native chunk of ``node`` where the chunk writer placed it."""

        def record(prefix_index: int, seq: int, offset: int) -> None:
            with self._lock:
                self._changes.changes_of(node).set_native(part, prefix_index, seq, offset, length)

        return record

    def delete(self, key: str) -> None:
        """Delete store key ``key``; a missing key is not an error."""
        self._check_data_writable()
        prefix = metadata_prefix(key)
        with self._lock:
            if prefix is not None:
                self._changes.delete_node(self._nodes, prefix)
                return
            found = self._nodes.find_chunk(key)
            if found is None or found[2] is None or self._locate(key) is None:
                return
            self._changes.changes_of(found[0]).delete(found[1])

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under directory ``prefix`` (``""``: everything)."""
        self._check_data_writable()
        prefix = prefix.rstrip("/")
        with self._lock:
            for node in self._nodes:
                node_prefix = node.prefix
                if not prefix or node_prefix == prefix or node_prefix.startswith(prefix + "/"):
                    self._changes.delete_node(self._nodes, node_prefix)
            # a directory inside an array's chunk space: delete just those chunks
            for key in list(self._chunk_keys_under(prefix + "/")) if prefix else []:
                self.delete(key)

    def discard_changes(self) -> None:
        """Forget every uncommitted change (chunks already uploaded become garbage)."""
        self.check_writable()
        with self._lock:
            self._reset_to(self._snapshot)
            self._writer.forget_pending()
            self._unacknowledged = None

    # -- listing -----------------------------------------------------------------------
    def _effective_manifest(self, node: Node) -> ManifestData:
        """All refs of the array as this session sees them."""
        prefixes = self._writer.prefix_table()
        return self._changes.effective_manifest(node, self._assets.load_manifest, prefixes)

    def _chunk_keys_under(self, prefix: str) -> Iterator[str]:
        return listing.chunk_keys_under(
            self._nodes, self._changes, self._assets.load_manifest, prefix
        )

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with ``prefix``: metadata documents, then chunks."""
        return listing.list_keys(self._nodes, self._changes, self._assets.load_manifest, prefix)

    def list_dir(self, prefix: str) -> Iterator[str]:
        """Names directly under directory ``prefix``, from the node table."""
        return listing.list_dir(self._nodes, self._changes, self._assets.load_manifest, prefix)

    # -- commit ------------------------------------------------------------------------
    def _prepare_publish(
        self, message: str, metadata: dict[str, Any] | None, allow_empty: bool
    ) -> dict[str, Any]:
        self.check_writable()
        if not isinstance(message, str):
            raise InvalidInputError("commit message must be a str")
        merged = {**self._default_metadata, **(metadata or {})}
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
        assets = self._assets
        self._writer.flush()
        with self._lock:
            base = self._snapshot
            if kind == "commit_amended":
                parent, earlier = base.parent_id, [assets.load_transaction_log(base.id)]
            else:
                parent, earlier = base.id, []
            pending, self._unacknowledged = self._unacknowledged, None
            if pending is not None and assets.has_snapshot(pending.id):
                snapshot = pending  # the last attempt landed; only its reply was lost
            else:
                snapshot, log = build_snapshot(
                    self._nodes,
                    self._changes,
                    assets,
                    prefixes=self._writer.prefix_table(),
                    splitting=self._config.manifest_splitting,
                    message=message,
                    metadata=metadata,
                    parent_id=parent,
                )
                if earlier:
                    log = combine_logs([*earlier, log])
                assets.write_transaction_log(snapshot.id, log)
                assets.write_snapshot(snapshot)
                branch = None if kind == "new_detached_snapshot" else self._branch
                try:
                    history.publish(assets, snapshot, branch, base.id, kind)
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
        SpecVersion.require(self._spec_version, 2, "amend")
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

    def status(self) -> Diff:
        """What this session changed and has not committed yet."""
        with self._lock:
            log = self._changes.node_log()
            paths = {}
            for node in self._nodes:
                paths[node.id] = node_path_of(node.prefix)
                changes = self._changes.chunks.get(node.id)
                if changes is not None and len(changes):
                    fmt = node.array_layout().key_format
                    log.updated_chunks[node.id] = changes.touched_coords(fmt)
        return compose_logs([log], paths)

    # -- rearranging (rearrange.py) --------------------------------------------------------
    def move(self, from_path: str, to_path: str) -> None:
        """Rename a group or array (with everything under it); no data is copied.

        Needs a session from :meth:`Repository.rearrange_session`.
        """
        self.check_writable()
        self._check_acknowledged()
        if not self._rearrange:
            raise SessionStateError(
                "moves need a rearrange session: repo.rearrange_session(branch)",
                kind="move-needs-rearrange-session",
            )
        SpecVersion.require(self._spec_version, 2, "moving nodes")
        with self._lock:
            rearrange.move(self._nodes, self._changes, from_path, to_path)

    def shift_array(self, array_path: str, chunk_offset: Sequence[int]) -> None:
        """Move every chunk of an array by ``chunk_offset`` chunks, metadata only.

        Chunks shifted past the edge of the chunk grid are dropped, vacated positions
        read as the fill value. Grow the array first (``array.resize``) to keep them.
        """
        self._check_data_writable()
        with self._lock:
            rearrange.shift_array(
                self._nodes, self._changes, self._effective_manifest, array_path, chunk_offset
            )

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
        self._check_data_writable()
        with self._lock:
            rearrange.reindex_array(
                self._nodes, self._changes, self._effective_manifest, array_path, forward, backward
            )

    def chunk_type(self, array_path: str, chunk_coordinates: Sequence[int]) -> ChunkType:
        """Whether a chunk is uninitialized, inline, native or virtual."""
        return _chunk_type_of(self._locate(self._chunk_key(array_path, chunk_coordinates)))

    def _chunk_key(self, array_path: str, chunk_coordinates: Sequence[int]) -> str:
        """The store key of one chunk of the array at ``array_path``."""
        node, layout = rearrange.array_at(self._nodes, array_path)
        coords = np.asarray(list(chunk_coordinates), dtype=np.int64).reshape(1, -1)
        if coords.shape[1] != layout.key_format.ndim:
            raise InvalidInputError(
                f"{array_path!r} has {layout.key_format.ndim} dimensions, "
                f"got coordinates {list(chunk_coordinates)}"
            )
        return join_key(node.prefix, layout.key_format.format_many(coords)[0])

    async def chunk_coordinates(
        self, array_path: str, batch_size: int = 1000
    ) -> AsyncIterator[tuple[int, ...]]:
        """Every initialized chunk of an array, in coordinate order (async iterator)."""
        node, _ = rearrange.array_at(self._nodes, array_path)
        coords = self._effective_manifest(node).coords
        step = max(1, int(batch_size))
        for start in range(0, len(coords), step):
            for row in coords[start : start + step].tolist():
                yield tuple(row)

    def get_node_id(self, path: str) -> str:
        """The id of the group or array at absolute ``path``; it survives moves.

        Raises
        ------
        NodeNotFoundError
            No node at ``path``.
        """
        return rearrange.node_at(self._nodes, path).id

    async def move_async(self, from_path: str, to_path: str) -> None:
        """Async twin of :meth:`move`."""
        await asyncio.to_thread(self.move, from_path, to_path)

    async def chunk_type_async(
        self, array_path: str, chunk_coordinates: Sequence[int]
    ) -> ChunkType:
        """Async twin of :meth:`chunk_type`; a manifest miss is awaited."""
        key = self._chunk_key(array_path, chunk_coordinates)
        return _chunk_type_of(await self._locate_async(key))

    async def get_node_id_async(self, path: str) -> str:
        """Async twin of :meth:`get_node_id`."""
        return self.get_node_id(path)

    async def status_async(self) -> Diff:
        """Async twin of :meth:`status`."""
        return await asyncio.to_thread(self.status)

    # -- rebase ------------------------------------------------------------------------
    def rebase(self, solver: ConflictSolver) -> None:
        """Replay this session's changes over every commit made on its branch since
        the session started, asking ``solver`` about each conflict.

        Raises
        ------
        RebaseFailedError
            A commit's changes conflict with ours in a way ``solver`` does not solve;
            the session stays based on the last commit it could be rebased over.
        """
        self.check_writable()
        self._check_acknowledged()
        if self._branch is None:
            raise SessionStateError("this session has no branch to rebase on")
        assets = self._assets
        with self._lock:
            info = assets.read_repo_info()
            for snapshot_id in history.commits_since(info, self._branch, self._snapshot.id):
                theirs = assets.load_transaction_log(snapshot_id)
                their_snapshot = assets.load_snapshot(snapshot_id)
                conflicts = find_conflicts(self._changes, self._nodes, theirs, their_snapshot)
                solver.solve(self, conflicts, snapshot_id)
                self._nodes, self._changes = rebase_onto(
                    self._nodes, self._changes, their_snapshot, assets.load_manifest
                )
                self._snapshot = their_snapshot

    async def rebase_async(self, solver: ConflictSolver) -> None:
        """Async twin of :meth:`rebase`."""
        await asyncio.to_thread(self.rebase, solver)

    def drop_chunk_changes(self, node_id: str, coords: np.ndarray) -> None:
        """Forget this session's writes of the chunks at ``coords`` of an array.

        Conflict solvers call this when the other side's chunks win.
        """
        self._changes.drop_chunks(self._nodes, node_id, coords)


def _chunk_type_of(loc: Located) -> ChunkType:
    if loc is None:
        return ChunkType.uninitialized
    if isinstance(loc, bytes):
        return ChunkType.inline
    return ChunkType.virtual if loc.kind == VIRTUAL else ChunkType.native
