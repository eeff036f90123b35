"""Repository: create and open, refs (branches and tags), history, sessions.

A facade over the object layer (assets.py) and the history functions (history.py); its
length (a little over 600 lines) is mostly the numpydoc and the async twins of the
public API, which Icechunk's own Python Repository has too.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from .assets import AssetManager
from .config import CONFIG_KEY, RepositoryConfig
from .conflicts import ConflictSolver
from .diff import Diff, compose_logs
from .errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    RefNotFoundError,
    RepositoryNotFoundError,
    SessionStateError,
    SnapshotNotFoundError,
)
from .format.ids import is_valid_id, new_snapshot_id
from .format.repo_info import REPO_INFO_KEY, RepoInfo, SnapshotRecord
from .format.snapshot import Snapshot, snapshot_key
from .history import (
    require_snapshot,
    resolve_ref,
    snapshot_info,
    snapshots_after,
)
from .preload import manifests_to_preload, start_preload
from .records import SnapshotInfo, SpecVersion, Update
from .refs import validate_ref_name
from .session import Session
from .stats import RepositoryStats
from .storage import ObjectNotFoundError, Storage
from .store import IcechunkStore

__all__ = ["Repository"]

T = TypeVar("T")
S = TypeVar("S")
P = ParamSpec("P")


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


def _async_twin(
    method: Callable[Concatenate[S, P], T], name: str
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """An async method that runs ``method`` in a worker thread, with its signature."""

    async def twin(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(method, self, *args, **kwargs)

    twin.__name__ = twin.__qualname__ = f"{name}_async"
    twin.__doc__ = f"Async twin of :meth:`{name}` (runs it in a worker thread)."
    return twin


# what a repository (or a crashed attempt to create one) leaves in its storage
_REPOSITORY_KEYS = (REPO_INFO_KEY, CONFIG_KEY)
_REPOSITORY_PREFIXES = ("snapshots/", "manifests/", "transactions/", "chunks/")


def _first_foreign_object(storage: Storage) -> str | None:
    """The first object in ``storage`` that no repository would have written, or None."""
    for key in storage.list(""):
        if key not in _REPOSITORY_KEYS and not key.startswith(_REPOSITORY_PREFIXES):
            return key
    return None


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


class Repository:
    """A version-controlled collection of Zarr arrays and groups under one storage.

    Create one with :meth:`create`, open an existing one with :meth:`open`. Branches
    and tags name snapshots; sessions read a snapshot or write on a branch.
    """

    def __init__(self, storage: Storage, config: RepositoryConfig, spec_version: int) -> None:
        self._storage = storage
        self._config = config
        self._spec_version = spec_version
        self._default_commit_metadata: dict[str, Any] = {}
        self._assets = AssetManager(storage, config)

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
        InvalidInputError
            ``storage`` holds objects that are not part of a repository.
        """
        cls._check_storage(storage)
        version = _resolve_spec_version(spec_version)
        if storage.exists(REPO_INFO_KEY):
            raise AlreadyExistsError(
                f"{storage!r} already holds a repository; use Repository.open",
                kind="repository-already-exists",
            )
        foreign = _first_foreign_object(storage)
        if foreign is not None:
            raise InvalidInputError(
                f"{storage!r} is not empty (it holds {foreign!r}, which is not part of a "
                "repository); create the repository in an empty location",
                kind="storage-not-empty",
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
        self._assets.storage.put(CONFIG_KEY, self._config.encode())

    @staticmethod
    def fetch_spec_version(
        storage: Storage, storage_settings: object | None = None
    ) -> SpecVersion | None:
        """The spec version of the repository in ``storage``, or None if there is none.

        Reads only the repository's root object, so it is cheap. ``storage_settings``
        is accepted for Icechunk compatibility and must be None.
        """
        if storage_settings is not None:
            raise InvalidInputError(
                "storage_settings are not supported here; configure the storage itself"
            )
        Repository._check_storage(storage)
        try:
            data = storage.get(REPO_INFO_KEY)
        except ObjectNotFoundError:
            return None
        return SpecVersion(RepoInfo.decode(data).spec_version)

    def reopen(self, config: RepositoryConfig | None = None) -> Repository:
        """The same repository with ``config`` laid over the current config."""
        return Repository(self._storage, self._config.merge(config), self._spec_version)

    @property
    def config(self) -> RepositoryConfig:
        """A copy of this repository's effective config.

        Changing the copy changes nothing; pass it to :meth:`reopen` (and then
        :meth:`save_config`) to use it.
        """
        return copy.deepcopy(self._config)

    @property
    def storage(self) -> Storage:
        """The storage this repository lives in."""
        return self._storage

    def stats(self) -> RepositoryStats:
        """A copy of this repository object's I/O and cache counters."""
        return self._assets.stats()

    def reset_stats(self) -> None:
        """Start the counters of :meth:`stats` again from zero."""
        self._assets.reset_stats()

    @property
    def spec_version(self) -> int:
        """The format spec version the repository was created with (1 or 2)."""
        return self._spec_version

    def __repr__(self) -> str:
        return f"<icechunk_fast.Repository {self._storage!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Repository, (self._storage, self._config, self._spec_version))

    # -- repository metadata and the ops log ------------------------------------------------
    @property
    def metadata(self) -> dict[str, Any]:
        """The repository's own metadata (read fresh; a copy)."""
        return self.get_metadata()

    def get_metadata(self) -> dict[str, Any]:
        """The repository's own metadata (not a snapshot's)."""
        return dict(self._assets.read_repo_info().metadata)

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the repository metadata."""
        self._change_metadata(metadata, replace=True)

    def update_metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Merge ``metadata`` into the repository metadata; returns the result."""
        return self._change_metadata(metadata, replace=False)

    def _change_metadata(self, metadata: dict[str, Any], *, replace: bool) -> dict[str, Any]:
        SpecVersion.require(self._spec_version, 2, "repository metadata")
        _check_json(metadata, "repository metadata")

        def mutate(info: RepoInfo) -> dict[str, Any]:
            info.metadata = dict(metadata) if replace else {**info.metadata, **metadata}
            info.record("metadata_changed", _now())
            return dict(info.metadata)

        return self._assets.update_repo_info(mutate)

    def set_default_commit_metadata(self, metadata: dict[str, Any]) -> None:
        """Metadata merged into every commit made through this Repository object."""
        _check_json(metadata, "commit metadata")
        self._default_commit_metadata = dict(metadata)

    def default_commit_metadata(self) -> dict[str, Any]:
        return dict(self._default_commit_metadata)

    def ops_log(self) -> Iterator[Update]:
        """Every mutation of the repository, newest first."""
        for op in reversed(self._assets.read_repo_info().op_records()):
            yield Update(op.kind, op.at, op.name, op.previous_snap_id, op.new_snap_id)

    # -- branches -------------------------------------------------------------------
    def list_branches(self) -> set[str]:
        """Names of all branches."""
        return set(self._assets.read_repo_info().branches)

    def lookup_branch(self, branch: str) -> str:
        """The snapshot id ``branch`` points to."""
        info = self._assets.read_repo_info()
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
            require_snapshot(info, snapshot_id)
            info.branches[branch] = snapshot_id
            info.record("branch_created", _now(), name=branch, new_snap_id=snapshot_id)

        self._assets.update_repo_info(mutate)

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
            require_snapshot(info, snapshot_id)
            info.branches[branch] = snapshot_id
            info.record(
                "branch_reset",
                _now(),
                name=branch,
                previous_snap_id=current,
                new_snap_id=snapshot_id,
            )

        self._assets.update_repo_info(mutate)

    def delete_branch(self, branch: str) -> None:
        """Delete ``branch`` (``main`` cannot be deleted)."""
        if branch == MAIN:
            raise InvalidInputError("the main branch cannot be deleted", kind="cannot-delete-main")

        def mutate(info: RepoInfo) -> None:
            previous = info.branches.pop(branch, None)
            if previous is None:
                raise RefNotFoundError(f"branch {branch!r} not found", kind="branch-not-found")
            info.record("branch_deleted", _now(), name=branch, previous_snap_id=previous)

        self._assets.update_repo_info(mutate)

    # -- tags -----------------------------------------------------------------------
    def list_tags(self) -> set[str]:
        """Names of all tags."""
        return set(self._assets.read_repo_info().tags)

    def lookup_tag(self, tag: str) -> str:
        """The snapshot id ``tag`` points to."""
        try:
            return self._assets.read_repo_info().tags[tag]
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
            require_snapshot(info, snapshot_id)
            info.tags[tag] = snapshot_id
            info.record("tag_created", _now(), name=tag, new_snap_id=snapshot_id)

        self._assets.update_repo_info(mutate)

    def delete_tag(self, tag: str) -> None:
        """Delete ``tag``; its name stays reserved forever."""

        def mutate(info: RepoInfo) -> None:
            previous = info.tags.pop(tag, None)
            if previous is None:
                raise RefNotFoundError(f"tag {tag!r} not found", kind="tag-not-found")
            info.deleted_tags.add(tag)
            info.record("tag_deleted", _now(), name=tag, previous_snap_id=previous)

        self._assets.update_repo_info(mutate)

    # -- history --------------------------------------------------------------------
    def ancestry(
        self,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
    ) -> Iterator[SnapshotInfo]:
        """Snapshots from the given one back to the first, newest first."""
        info = self._assets.read_repo_info()
        current: str | None = resolve_ref(info, branch, tag, snapshot_id)
        seen = set()
        while current is not None and current not in seen:
            seen.add(current)
            record = info.snapshot(current)
            yield snapshot_info(record)
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
        info = self._assets.read_repo_info()
        try:
            start = resolve_ref(info, from_branch, from_tag, from_snapshot_id)
            end = resolve_ref(info, to_branch, to_tag, to_snapshot_id)
        except InvalidInputError:
            raise InvalidInputError(
                "give exactly one of from_branch, from_tag, from_snapshot_id and exactly one "
                "of to_branch, to_tag, to_snapshot_id"
            ) from None
        chain = snapshots_after(info, start, end)
        if chain is None:
            raise InvalidInputError(
                f"snapshot {start} is not an ancestor of {end}: diff needs the 'from' "
                "side to be older on the same line of history (swap them?)",
                kind="invalid-diff-range",
            )
        logs = [self._assets.load_transaction_log(sid) for sid in chain]
        final = self._assets.load_snapshot(end)
        return compose_logs(logs, {n.id: n.path for n in final.nodes.values()})

    def lookup_snapshot(self, snapshot_id: str) -> SnapshotInfo:
        """The :class:`SnapshotInfo` of ``snapshot_id``."""
        info = self._assets.read_repo_info()
        require_snapshot(info, snapshot_id)
        return snapshot_info(info.snapshot(snapshot_id))

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
        info = self._assets.read_repo_info()
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
        target_id = resolve_ref(info, branch, tag, snapshot_id)
        return self._open_session(target_id, None, read_only=True)

    def writable_session(self, branch: str) -> Session:
        """A session that writes on top of the tip of ``branch`` and commits to it."""
        self._check_conditional_writes()
        return self._open_session(self.lookup_branch(branch), branch, read_only=False)

    def _check_conditional_writes(self) -> None:
        if not self._storage.supports_conditional_writes:
            raise SessionStateError(
                f"{self._storage!r} cannot do conditional writes, so commits would not be "
                "safe; writable sessions are refused",
                kind="unsafe-storage",
            )

    def _open_session(
        self, snapshot_id: str, branch: str | None, *, read_only: bool, rearrange: bool = False
    ) -> Session:
        """A session on ``snapshot_id``, with its chosen manifests fetched in the background."""
        assets = self._assets
        snapshot = assets.load_snapshot(snapshot_id)
        wanted = manifests_to_preload(snapshot, self._config.manifest_preload)
        preloads = start_preload(
            assets.load_manifest, [mid for mid in wanted if not assets.manifest_is_cached(mid)]
        )
        return Session(
            assets,
            self._config,
            snapshot,
            branch,
            read_only,
            spec_version=self._spec_version,
            default_metadata=self._default_commit_metadata,
            preloads=preloads,
            rearrange=rearrange,
        )

    def rearrange_session(self, branch: str) -> Session:
        """A session on the tip of ``branch`` that can only move and rename nodes
        (:meth:`Session.move`), then commit."""
        self._check_conditional_writes()
        return self._open_session(
            self.lookup_branch(branch), branch, read_only=False, rearrange=True
        )

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
    async def fetch_spec_version_async(
        storage: Storage, storage_settings: object | None = None
    ) -> SpecVersion | None:
        """Async twin of :meth:`fetch_spec_version`."""
        return await asyncio.to_thread(Repository.fetch_spec_version, storage, storage_settings)

    @staticmethod
    async def fetch_config_async(storage: Storage) -> RepositoryConfig | None:
        """Async twin of :meth:`fetch_config`."""
        return await asyncio.to_thread(Repository.fetch_config, storage)

    async def reopen_async(self, config: RepositoryConfig | None = None) -> Repository:
        """Async twin of :meth:`reopen`."""
        return await asyncio.to_thread(self.reopen, config)

    async def async_ancestry(
        self,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
    ) -> AsyncIterator[SnapshotInfo]:
        """:meth:`ancestry` as an async iterator (the history is read in a worker thread)."""
        infos = await asyncio.to_thread(
            lambda: list(self.ancestry(branch=branch, tag=tag, snapshot_id=snapshot_id))
        )
        for info in infos:
            yield info

    @staticmethod
    async def exists_async(storage: Storage) -> bool:
        """Async twin of :meth:`exists`."""
        return await asyncio.to_thread(Repository.exists, storage)
