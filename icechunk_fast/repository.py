"""Repository: create and open, refs (branches and tags), history, sessions."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from .cache import ByteLRU, DiskTier
from .config import CONFIG_KEY, RepositoryConfig
from .conflicts import ConflictSolver
from .diff import Diff, compose_logs
from .errors import (
    AlreadyExistsError,
    ConflictError,
    FormatError,
    InvalidInputError,
    RefNotFoundError,
    RepositoryNotFoundError,
    SessionStateError,
    SnapshotNotFoundError,
)
from .format.ids import is_valid_id, new_snapshot_id
from .format.manifest import ManifestData, manifest_key
from .format.repo_info import REPO_INFO_KEY, RepoInfo, SnapshotRecord
from .format.snapshot import Snapshot, snapshot_key
from .format.transaction_log import TransactionLog, transaction_log_key
from .preload import manifests_to_preload, start_preload
from .reads import ChunkReader
from .records import SnapshotInfo, SpecVersion, Update
from .refs import validate_ref_name
from .session import Session
from .stats import CountingStorage, RepositoryStats
from .storage import ObjectNotFoundError, Storage
from .store import IcechunkStore

__all__ = ["Repository"]

T = TypeVar("T")


class _AlreadyPublished(Exception):
    """The snapshot is in the repo info already (a lost reply to our own swap)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _check_json(value: object, what: str) -> None:
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a dict, got {type(value).__name__}")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be JSON-serializable: {exc}") from exc


INITIAL_MESSAGE = "Repository initialized"
MAIN = "main"


def _async_twin(method: Callable[..., T], name: str) -> Callable[..., Any]:
    async def twin(self: Any, *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(method, self, *args, **kwargs)

    twin.__name__ = twin.__qualname__ = f"{name}_async"
    twin.__doc__ = f"Async twin of :meth:`{name}` (runs it in a worker thread)."
    return twin


def _resolve_spec_version(spec_version: SpecVersion | int | None) -> int:
    if spec_version is None:
        return int(SpecVersion.current())
    try:
        return int(SpecVersion(int(spec_version)))
    except (ValueError, TypeError):
        raise InvalidInputError(
            f"unsupported spec_version {spec_version!r}; use SpecVersion.v1 or SpecVersion.v2",
            kind="unsupported-spec-version",
        ) from None


def _snapshots_after(info: RepoInfo, ancestor: str, descendant: str) -> list[str] | None:
    """Snapshots after ``ancestor`` up to ``descendant``, oldest first; None if
    ``ancestor`` is not on ``descendant``'s line of history."""
    chain: list[str] = []
    current: str | None = descendant
    while current != ancestor:
        if current is None:
            return None
        chain.append(current)
        current = info.parent_of(current)
    chain.reverse()
    return chain


def _info(record: SnapshotRecord) -> SnapshotInfo:
    return SnapshotInfo(
        record.id, record.parent_id, record.written_at, record.message, dict(record.metadata)
    )


class Repository:
    """A version-controlled collection of Zarr arrays and groups under one storage.

    Create one with :meth:`create`, open an existing one with :meth:`open`. Branches
    and tags name snapshots; sessions read a snapshot or write on a branch.
    """

    def __init__(self, storage: Storage, config: RepositoryConfig, spec_version: int) -> None:
        self._user_storage = storage
        # every request of this repository goes through the counting wrapper
        self._storage = self._io = CountingStorage(storage)
        self._config = config
        self._spec_version = spec_version
        self._default_commit_metadata: dict[str, Any] = {}
        self._info_cache: tuple[str, RepoInfo] | None = None
        self._manifests: ByteLRU[ManifestData] = ByteLRU(
            config.manifest_cache_bytes, lambda m: m.nbytes()
        )
        self._snapshots: ByteLRU[Snapshot] = ByteLRU(256 << 20, lambda s: 512 * len(s.nodes) + 512)
        self._chunks: ByteLRU[bytes] | None = None
        if config.chunk_cache_bytes > 0:
            self._chunks = ByteLRU(config.chunk_cache_bytes, len)
        self._disk: DiskTier | None = None
        self._disk_metadata = self._disk_chunks = False
        tier = config.disk_tier_settings(remote=storage.is_remote)
        if tier is not None:
            directory, size, self._disk_metadata, self._disk_chunks = tier
            self._disk = DiskTier(directory, size, namespace=repr(storage))
        self._reader = ChunkReader(
            self._io,
            self._chunks,
            self._disk if self._disk_chunks else None,
            config.read_coalescing(remote=storage.is_remote),
        )

    # -- construction -------------------------------------------------------------
    @classmethod
    def create(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
        spec_version: SpecVersion | int | None = None,
    ) -> Repository:
        """Create a new repository in ``storage`` with one empty snapshot on ``main``.

        Raises
        ------
        AlreadyExistsError
            ``storage`` already holds a repository.
        """
        cls._check_storage(storage)
        version = _resolve_spec_version(spec_version)
        if storage.exists(REPO_INFO_KEY):
            raise AlreadyExistsError(
                f"{storage!r} already holds a repository; use Repository.open",
                kind="repository-already-exists",
            )
        effective = RepositoryConfig.default().merge(config)
        if config is not None:
            storage.put(CONFIG_KEY, config.encode())
        root = Snapshot(new_snapshot_id(), None, datetime.now(UTC), INITIAL_MESSAGE, {})
        storage.put(snapshot_key(root.id), root.encode(effective.compression_level))
        record = SnapshotRecord(root.id, None, root.written_at, root.message, {})
        info = RepoInfo(version, branches={MAIN: root.id})
        info.add_snapshot(record)
        info.record("repo_initialized", root.written_at, new_snap_id=root.id)
        if not storage.put_if_absent(REPO_INFO_KEY, info.encode(effective.compression_level)):
            raise AlreadyExistsError(
                f"{storage!r} already holds a repository (created concurrently)",
                kind="repository-already-exists",
            )
        return cls(storage, effective, version)

    @classmethod
    def open(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
    ) -> Repository:
        """Open the repository in ``storage``; ``config`` is laid over the persisted one.

        Raises
        ------
        RepositoryNotFoundError
            No repository there.
        """
        cls._check_storage(storage)
        try:
            data = storage.get(REPO_INFO_KEY)
        except ObjectNotFoundError:
            raise RepositoryNotFoundError(
                f"no repository in {storage!r}; create one with Repository.create",
                kind="repository-not-found",
            ) from None
        info = RepoInfo.decode(data)
        persisted = cls.fetch_config(storage) or RepositoryConfig()
        effective = RepositoryConfig.default().merge(persisted).merge(config)
        return cls(storage, effective, info.spec_version)

    @classmethod
    def open_or_create(
        cls,
        storage: Storage,
        config: RepositoryConfig | None = None,
        authorize_virtual_chunk_access: dict[str, Any] | None = None,
        create_version: SpecVersion | int | None = None,
    ) -> Repository:
        """Open the repository in ``storage``, creating it first if there is none."""
        if cls.exists(storage):
            return cls.open(storage, config)
        try:
            return cls.create(storage, config, spec_version=create_version)
        except AlreadyExistsError:  # lost a race with another creator: fine
            return cls.open(storage, config)

    @staticmethod
    def exists(storage: Storage) -> bool:
        """True if ``storage`` holds a repository."""
        return storage.exists(REPO_INFO_KEY)

    @staticmethod
    def fetch_config(storage: Storage) -> RepositoryConfig | None:
        """The config persisted in ``storage``, or None if none was saved."""
        try:
            return RepositoryConfig.decode(storage.get(CONFIG_KEY))
        except ObjectNotFoundError:
            return None

    @staticmethod
    def _check_storage(storage: object) -> None:
        if not isinstance(storage, Storage):
            raise InvalidInputError(
                "expected a Storage such as local_filesystem_storage(path), "
                f"got {type(storage).__name__}"
            )

    def save_config(self) -> None:
        """Persist this repository's current config in its storage."""
        self._storage.put(CONFIG_KEY, self._config.encode())

    def reopen(self, config: RepositoryConfig | None = None) -> Repository:
        """The same repository with ``config`` laid over the current config."""
        return Repository(self._user_storage, self._config.merge(config), self._spec_version)

    @property
    def config(self) -> RepositoryConfig:
        return self._config

    @property
    def storage(self) -> Storage:
        return self._user_storage

    def stats(self) -> RepositoryStats:
        """A copy of this repository object's I/O and cache counters."""
        return dataclasses.replace(self._io.stats)

    def reset_stats(self) -> None:
        """Start the counters of :meth:`stats` again from zero."""
        self._io.reset()

    @property
    def spec_version(self) -> int:
        return self._spec_version

    def __repr__(self) -> str:
        return f"<icechunk_fast.Repository {self._user_storage!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Repository, (self._user_storage, self._config, self._spec_version))

    # -- repo info ------------------------------------------------------------------
    def _read_info(self) -> RepoInfo:
        """The current repo info: always read from storage, decoded only if it changed.

        The returned object may be shared: do not mutate it (``_update_info`` copies).
        """
        try:
            data, version = self._storage.get_with_version(REPO_INFO_KEY)
        except ObjectNotFoundError:
            raise RepositoryNotFoundError(
                f"the repository in {self._storage!r} is gone", kind="repository-not-found"
            ) from None
        return self._decoded_info(data, version)

    def _decoded_info(self, data: bytes, version: str) -> RepoInfo:
        # Same version means same bytes, so reusing the parse is never stale; it saves
        # the decode of a long history on every commit.
        cached = self._info_cache
        if cached is not None and cached[0] == version:
            return cached[1]
        info = RepoInfo.decode(data)
        self._info_cache = (version, info)
        return info

    def _update_info(self, mutate: Callable[[RepoInfo], T]) -> T:
        """Apply ``mutate`` to a fresh copy of the repo info and swap it in.

        ``mutate`` may raise to abort. When another writer got in first, the repo info
        is read again and ``mutate`` re-applied, so updates that do not conflict (another
        branch moved, a tag was added) never surface as errors.
        """
        delay = 0.001
        level = self._config.compression_level
        while True:
            data, version = self._storage.get_with_version(REPO_INFO_KEY)
            info = self._decoded_info(data, version).copy()
            result = mutate(info)
            new_version = self._storage.put_if_match(REPO_INFO_KEY, info.encode(level), version)
            if new_version is not None:
                self._info_cache = (new_version, info)
                return result
            time.sleep(delay * random.random())
            delay = min(delay * 2, 0.1)

    def _publish(
        self, snapshot: Snapshot, branch: str | None, expected_tip: str, kind: str
    ) -> None:
        """Make ``snapshot`` part of the history in one compare-and-swap of the repo info.

        ``kind`` is ``new_commit`` (``branch`` must still point at ``expected_tip``, its
        parent), ``commit_amended`` (``branch`` must still point at ``expected_tip``, the
        snapshot being replaced) or ``new_detached_snapshot`` (no branch moves).
        """
        record = SnapshotRecord(
            snapshot.id,
            snapshot.parent_id,
            snapshot.written_at,
            snapshot.message,
            snapshot.metadata,
        )

        def mutate(info: RepoInfo) -> None:
            if snapshot.id in info.snapshots:
                # our swap landed but its reply was lost; whatever happened since is not
                # a conflict with us
                raise _AlreadyPublished
            if branch is not None:
                actual = info.branches.get(branch)
                if actual is None:
                    raise RefNotFoundError(
                        f"branch {branch!r} was deleted", kind="branch-not-found"
                    )
                if actual != expected_tip:
                    raise ConflictError(expected_parent=expected_tip, actual_parent=actual)
                info.branches[branch] = snapshot.id
            info.add_snapshot(record)
            previous = expected_tip if kind == "commit_amended" else None
            info.record(
                kind,
                snapshot.written_at,
                name=branch,
                previous_snap_id=previous,
                new_snap_id=snapshot.id,
            )

        with contextlib.suppress(_AlreadyPublished):
            self._update_info(mutate)
        self._snapshots.put(snapshot.id, snapshot)

    # -- repository metadata and the ops log ------------------------------------------------
    def get_metadata(self) -> dict[str, Any]:
        """The repository's own metadata (not a snapshot's)."""
        return dict(self._read_info().metadata)

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the repository metadata."""
        self._change_metadata(metadata, replace=True)

    def update_metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Merge ``metadata`` into the repository metadata; returns the result."""
        return self._change_metadata(metadata, replace=False)

    def _change_metadata(self, metadata: dict[str, Any], *, replace: bool) -> dict[str, Any]:
        self._require_spec(2, "repository metadata")
        _check_json(metadata, "repository metadata")

        def mutate(info: RepoInfo) -> dict[str, Any]:
            info.metadata = dict(metadata) if replace else {**info.metadata, **metadata}
            info.record("metadata_changed", _now())
            return dict(info.metadata)

        return self._update_info(mutate)

    def set_default_commit_metadata(self, metadata: dict[str, Any]) -> None:
        """Metadata merged into every commit made through this Repository object."""
        _check_json(metadata, "commit metadata")
        self._default_commit_metadata = dict(metadata)

    def default_commit_metadata(self) -> dict[str, Any]:
        return dict(self._default_commit_metadata)

    def ops_log(self) -> Iterator[Update]:
        """Every mutation of the repository, newest first."""
        for op in reversed(self._read_info().op_records()):
            yield Update(op.kind, op.at, op.name, op.previous_snap_id, op.new_snap_id)

    def _require_spec(self, version: int, what: str) -> None:
        if self._spec_version < version:
            raise InvalidInputError(
                f"{what} needs a spec version {version} repository; this one is version "
                f"{self._spec_version}",
                kind="unsupported-spec-version",
            )

    # -- objects --------------------------------------------------------------------
    def _fetch_immutable(self, key: str, decode: Callable[[bytes], T], *, chunk: bool = False) -> T:
        """Decode an immutable object, from the disk tier if it holds a sound copy."""
        disk = self._disk if (self._disk_chunks if chunk else self._disk_metadata) else None
        if disk is not None:
            cached = disk.get(key)
            if cached is not None:
                try:
                    value = decode(cached)
                except FormatError:
                    disk.delete(key)  # damaged on local disk: fetch it again
                    self._io.bump("disk_corrupt")
                else:
                    self._io.bump("disk_hits")
                    return value
            self._io.bump("disk_misses")
        data = self._io.get(key)
        value = decode(data)
        if disk is not None:
            disk.put(key, data)
        return value

    def _from_memory(self, lru: ByteLRU[T], key: str) -> T | None:
        value = lru.get(key)
        self._io.bump("memory_hits" if value is not None else "memory_misses")
        return value

    def _has_snapshot(self, snapshot_id: str) -> bool:
        """Whether ``snapshot_id`` is part of the history (fresh read of the repo info)."""
        return snapshot_id in self._read_info().snapshots

    def _load_snapshot(self, snapshot_id: str) -> Snapshot:
        cached = self._from_memory(self._snapshots, snapshot_id)
        if cached is not None:
            return cached
        try:
            snapshot = self._fetch_immutable(
                snapshot_key(snapshot_id), lambda d: Snapshot.decode(d, snapshot_id)
            )
        except ObjectNotFoundError:
            raise SnapshotNotFoundError(
                f"snapshot {snapshot_id} not found", kind="snapshot-not-found"
            ) from None
        self._snapshots.put(snapshot_id, snapshot)
        return snapshot

    def _load_manifest(self, manifest_id: str) -> ManifestData:
        cached = self._from_memory(self._manifests, manifest_id)
        if cached is not None:
            return cached
        manifest = self._fetch_immutable(
            manifest_key(manifest_id), lambda d: ManifestData.decode(d, manifest_id)
        )
        self._manifests.put(manifest_id, manifest)
        return manifest

    def _read_chunk(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of chunk object ``key``, through the chunk caches."""
        return self._reader.read(key, start, end)

    def _cache_manifest(self, manifest_id: str, manifest: ManifestData) -> None:
        self._manifests.put(manifest_id, manifest)

    # -- branches -------------------------------------------------------------------
    def list_branches(self) -> set[str]:
        """Names of all branches."""
        return set(self._read_info().branches)

    def lookup_branch(self, branch: str) -> str:
        """The snapshot id ``branch`` points to."""
        info = self._read_info()
        try:
            return info.branches[branch]
        except KeyError:
            raise RefNotFoundError(
                f"branch {branch!r} not found", kind="branch-not-found"
            ) from None

    def create_branch(self, branch: str, snapshot_id: str) -> None:
        """Create ``branch`` pointing at ``snapshot_id``."""
        validate_ref_name(branch, "branch")

        def mutate(info: RepoInfo) -> None:
            if branch in info.branches:
                raise AlreadyExistsError(
                    f"branch {branch!r} already exists", kind="branch-already-exists"
                )
            self._require_snapshot(info, snapshot_id)
            info.branches[branch] = snapshot_id
            info.record("branch_created", _now(), name=branch, new_snap_id=snapshot_id)

        self._update_info(mutate)

    def reset_branch(
        self, branch: str, snapshot_id: str, *, from_snapshot_id: str | None = None
    ) -> None:
        """Point ``branch`` at ``snapshot_id``.

        With ``from_snapshot_id``, only if the branch still points there (else
        ``ConflictError``): a compare-and-swap for code that read the branch first.
        """

        def mutate(info: RepoInfo) -> None:
            current = info.branches.get(branch)
            if current is None:
                raise RefNotFoundError(f"branch {branch!r} not found", kind="branch-not-found")
            if from_snapshot_id is not None and current != from_snapshot_id:
                raise ConflictError(expected_parent=from_snapshot_id, actual_parent=current)
            self._require_snapshot(info, snapshot_id)
            info.branches[branch] = snapshot_id
            info.record(
                "branch_reset",
                _now(),
                name=branch,
                previous_snap_id=current,
                new_snap_id=snapshot_id,
            )

        self._update_info(mutate)

    def delete_branch(self, branch: str) -> None:
        """Delete ``branch`` (``main`` cannot be deleted)."""
        if branch == MAIN:
            raise InvalidInputError("the main branch cannot be deleted", kind="cannot-delete-main")

        def mutate(info: RepoInfo) -> None:
            previous = info.branches.pop(branch, None)
            if previous is None:
                raise RefNotFoundError(f"branch {branch!r} not found", kind="branch-not-found")
            info.record("branch_deleted", _now(), name=branch, previous_snap_id=previous)

        self._update_info(mutate)

    # -- tags -----------------------------------------------------------------------
    def list_tags(self) -> set[str]:
        """Names of all tags."""
        return set(self._read_info().tags)

    def lookup_tag(self, tag: str) -> str:
        """The snapshot id ``tag`` points to."""
        try:
            return self._read_info().tags[tag]
        except KeyError:
            raise RefNotFoundError(f"tag {tag!r} not found", kind="tag-not-found") from None

    def create_tag(self, tag: str, snapshot_id: str) -> None:
        """Create the immutable tag ``tag``; a deleted tag's name can never be reused."""
        validate_ref_name(tag, "tag")

        def mutate(info: RepoInfo) -> None:
            if tag in info.tags:
                raise AlreadyExistsError(f"tag {tag!r} already exists", kind="tag-already-exists")
            if tag in info.deleted_tags:
                raise AlreadyExistsError(
                    f"tag {tag!r} was deleted before; tag names cannot be reused",
                    kind="tag-previously-deleted",
                )
            self._require_snapshot(info, snapshot_id)
            info.tags[tag] = snapshot_id
            info.record("tag_created", _now(), name=tag, new_snap_id=snapshot_id)

        self._update_info(mutate)

    def delete_tag(self, tag: str) -> None:
        """Delete ``tag``; its name stays reserved forever."""

        def mutate(info: RepoInfo) -> None:
            previous = info.tags.pop(tag, None)
            if previous is None:
                raise RefNotFoundError(f"tag {tag!r} not found", kind="tag-not-found")
            info.deleted_tags.add(tag)
            info.record("tag_deleted", _now(), name=tag, previous_snap_id=previous)

        self._update_info(mutate)

    @staticmethod
    def _require_snapshot(info: RepoInfo, snapshot_id: str) -> None:
        if snapshot_id not in info.snapshots:
            raise SnapshotNotFoundError(
                f"snapshot {snapshot_id!r} not found", kind="snapshot-not-found"
            )

    # -- history --------------------------------------------------------------------
    def _resolve(
        self,
        info: RepoInfo,
        branch: str | None,
        tag: str | None,
        snapshot_id: str | None,
    ) -> str:
        given = [x is not None for x in (branch, tag, snapshot_id)]
        if sum(given) != 1:
            raise InvalidInputError("give exactly one of branch, tag or snapshot_id")
        if branch is not None:
            if branch not in info.branches:
                raise RefNotFoundError(f"branch {branch!r} not found", kind="branch-not-found")
            return info.branches[branch]
        if tag is not None:
            if tag not in info.tags:
                raise RefNotFoundError(f"tag {tag!r} not found", kind="tag-not-found")
            return info.tags[tag]
        assert snapshot_id is not None
        self._require_snapshot(info, snapshot_id)
        return snapshot_id

    def ancestry(
        self,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
    ) -> Iterator[SnapshotInfo]:
        """Snapshots from the given one back to the first, newest first."""
        info = self._read_info()
        current: str | None = self._resolve(info, branch, tag, snapshot_id)
        seen = set()
        while current is not None and current not in seen:
            seen.add(current)
            record = info.snapshot(current)
            yield _info(record)
            current = record.parent_id

    def diff(
        self,
        *,
        from_branch: str | None = None,
        from_tag: str | None = None,
        from_snapshot_id: str | None = None,
        to_branch: str | None = None,
        to_tag: str | None = None,
        to_snapshot_id: str | None = None,
    ) -> Diff:
        """What changed from one snapshot to a later one on the same line of history.

        Give one ``from_*`` and one ``to_*``; the ``from`` snapshot must be an ancestor
        of (or the same as) the ``to`` snapshot.

        Raises
        ------
        InvalidInputError
            ``from`` is not an ancestor of ``to``.
        """
        info = self._read_info()
        try:
            start = self._resolve(info, from_branch, from_tag, from_snapshot_id)
            end = self._resolve(info, to_branch, to_tag, to_snapshot_id)
        except InvalidInputError:
            raise InvalidInputError(
                "give exactly one of from_branch, from_tag, from_snapshot_id and exactly one "
                "of to_branch, to_tag, to_snapshot_id"
            ) from None
        chain = _snapshots_after(info, start, end)
        if chain is None:
            raise InvalidInputError(
                f"snapshot {start} is not an ancestor of {end}: diff needs the 'from' "
                "side to be older on the same line of history (swap them?)",
                kind="invalid-diff-range",
            )
        logs = [self._load_transaction_log(sid) for sid in chain]
        final = self._load_snapshot(end)
        return compose_logs(logs, {n.id: n.path for n in final.nodes.values()})

    def _commits_since(self, branch: str, base_id: str) -> list[str]:
        """Snapshots on ``branch`` after ``base_id``, oldest first."""
        info = self._read_info()
        tip = info.branches.get(branch)
        if tip is None:
            raise RefNotFoundError(f"branch {branch!r} not found", kind="branch-not-found")
        chain = _snapshots_after(info, base_id, tip)
        if chain is None:
            raise ConflictError(
                f"branch {branch!r} was reset to a history that does not contain "
                f"{base_id}; this session cannot be rebased onto it",
                expected_parent=base_id,
                actual_parent=tip,
            )
        return chain

    def _load_transaction_log(self, snapshot_id: str) -> TransactionLog:
        try:
            return self._fetch_immutable(
                transaction_log_key(snapshot_id), lambda d: TransactionLog.decode(d, snapshot_id)
            )
        except ObjectNotFoundError:
            raise SnapshotNotFoundError(
                f"the transaction log of snapshot {snapshot_id} is missing",
                kind="snapshot-not-found",
            ) from None

    def lookup_snapshot(self, snapshot_id: str) -> SnapshotInfo:
        """The :class:`SnapshotInfo` of ``snapshot_id``."""
        info = self._read_info()
        self._require_snapshot(info, snapshot_id)
        return _info(info.snapshot(snapshot_id))

    # -- sessions -------------------------------------------------------------------
    def readonly_session(
        self,
        branch: str | None = None,
        *,
        tag: str | None = None,
        snapshot_id: str | None = None,
        as_of: datetime | None = None,
    ) -> Session:
        """A read-only session on a branch tip, a tag, a snapshot, or a point in time.

        ``as_of`` (timezone-aware) picks the last snapshot of ``branch`` written at or
        before that moment.
        """
        info = self._read_info()
        if as_of is not None:
            if branch is None or tag is not None or snapshot_id is not None:
                raise InvalidInputError("as_of needs a branch (and no tag or snapshot_id)")
            if as_of.tzinfo is None:
                raise InvalidInputError("as_of must be timezone-aware (e.g. datetime.now(UTC))")
            target = None
            for snap in self.ancestry(branch=branch):
                if snap.written_at <= as_of:
                    target = snap.id
                    break
            if target is None:
                raise SnapshotNotFoundError(
                    f"no snapshot on branch {branch!r} at or before {as_of.isoformat()}",
                    kind="no-snapshot-at-time",
                )
            snapshot_id, branch = target, None
        if snapshot_id is not None and not is_valid_id(snapshot_id):
            raise SnapshotNotFoundError(
                f"{snapshot_id!r} is not a snapshot id", kind="snapshot-not-found"
            )
        target_id = self._resolve(info, branch, tag, snapshot_id)
        return self._open_session(target_id, None, read_only=True)

    def writable_session(self, branch: str) -> Session:
        """A session that writes on top of the tip of ``branch`` and commits to it."""
        if not self._storage.supports_conditional_writes:
            raise SessionStateError(
                f"{self._storage!r} cannot do conditional writes, so commits would not be "
                "safe; writable sessions are refused",
                kind="unsafe-storage",
            )
        return self._open_session(self.lookup_branch(branch), branch, read_only=False)

    def _open_session(self, snapshot_id: str, branch: str | None, *, read_only: bool) -> Session:
        """A session on ``snapshot_id``, with its chosen manifests fetched in the background."""
        snapshot = self._load_snapshot(snapshot_id)
        session = Session(self, snapshot, branch, read_only=read_only)
        wanted = manifests_to_preload(snapshot, self.config.manifest_preload)
        cached = self._manifests.get
        session._preloads = start_preload(
            self._load_manifest, [mid for mid in wanted if cached(mid) is None]
        )
        return session

    def rearrange_session(self, branch: str) -> Session:
        """A session on the tip of ``branch`` that can only move and rename nodes
        (:meth:`Session.move`), then commit."""
        session = self.writable_session(branch)
        session._rearrange = True
        return session

    @contextmanager
    def transaction(
        self,
        branch: str,
        *,
        message: str,
        metadata: dict[str, Any] | None = None,
        rebase_with: ConflictSolver | None = None,
        rebase_tries: int = 1000,
    ) -> Iterator[IcechunkStore]:
        """``with repo.transaction("main", message=...) as store:`` commits on clean exit.

        On an exception inside the block nothing is committed. ``rebase_with`` and
        ``rebase_tries`` are passed to :meth:`Session.commit`.
        """
        session = self.writable_session(branch)
        yield session.store
        session.commit(message, metadata, rebase_with=rebase_with, rebase_tries=rebase_tries)

    # -- async twins ------------------------------------------------------------------
    list_branches_async = _async_twin(list_branches, "list_branches")
    lookup_branch_async = _async_twin(lookup_branch, "lookup_branch")
    create_branch_async = _async_twin(create_branch, "create_branch")
    reset_branch_async = _async_twin(reset_branch, "reset_branch")
    delete_branch_async = _async_twin(delete_branch, "delete_branch")
    list_tags_async = _async_twin(list_tags, "list_tags")
    lookup_tag_async = _async_twin(lookup_tag, "lookup_tag")
    create_tag_async = _async_twin(create_tag, "create_tag")
    delete_tag_async = _async_twin(delete_tag, "delete_tag")
    lookup_snapshot_async = _async_twin(lookup_snapshot, "lookup_snapshot")
    diff_async = _async_twin(diff, "diff")
    readonly_session_async = _async_twin(readonly_session, "readonly_session")
    writable_session_async = _async_twin(writable_session, "writable_session")
    rearrange_session_async = _async_twin(rearrange_session, "rearrange_session")
    save_config_async = _async_twin(save_config, "save_config")
    get_metadata_async = _async_twin(get_metadata, "get_metadata")
    set_metadata_async = _async_twin(set_metadata, "set_metadata")
    update_metadata_async = _async_twin(update_metadata, "update_metadata")

    @classmethod
    async def create_async(cls, storage: Storage, *args: Any, **kwargs: Any) -> Repository:
        """Async twin of :meth:`create`."""
        return await asyncio.to_thread(cls.create, storage, *args, **kwargs)

    @classmethod
    async def open_async(cls, storage: Storage, *args: Any, **kwargs: Any) -> Repository:
        """Async twin of :meth:`open`."""
        return await asyncio.to_thread(cls.open, storage, *args, **kwargs)

    @classmethod
    async def open_or_create_async(cls, storage: Storage, *args: Any, **kwargs: Any) -> Repository:
        """Async twin of :meth:`open_or_create`."""
        return await asyncio.to_thread(cls.open_or_create, storage, *args, **kwargs)

    @staticmethod
    async def exists_async(storage: Storage) -> bool:
        """Async twin of :meth:`exists`."""
        return await asyncio.to_thread(Repository.exists, storage)
