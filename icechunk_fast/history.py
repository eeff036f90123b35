"""The history: resolving refs, walking snapshot chains, and publishing new snapshots.

Everything here works on a :class:`~icechunk_fast.format.repo_info.RepoInfo` (the one
mutable object, read fresh each time) or swaps a new one in through the object layer.
"""

from __future__ import annotations

import contextlib

from .assets import AssetManager
from .errors import ConflictError, InvalidInputError, RefNotFoundError, SnapshotNotFoundError
from .format.repo_info import RepoInfo, SnapshotRecord
from .format.snapshot import Snapshot
from .records import SnapshotInfo

__all__ = [
    "commits_since",
    "publish",
    "require_snapshot",
    "resolve_ref",
    "snapshot_info",
    "snapshots_after",
]


class _AlreadyPublished(Exception):
    """The snapshot is in the repo info already (a lost reply to our own swap)."""


def snapshot_info(record: SnapshotRecord) -> SnapshotInfo:
    """The public view of a history record."""
    return SnapshotInfo(
        record.id, record.parent_id, record.written_at, record.message, dict(record.metadata)
    )


def snapshots_after(info: RepoInfo, ancestor: str, descendant: str) -> list[str] | None:
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


def require_snapshot(info: RepoInfo, snapshot_id: str) -> None:
    """Raise :class:`SnapshotNotFoundError` unless ``snapshot_id`` is in the history."""
    if snapshot_id not in info.snapshots:
        raise SnapshotNotFoundError(
            f"snapshot {snapshot_id!r} not found", kind="snapshot-not-found"
        )


def resolve_ref(
    info: RepoInfo, branch: str | None, tag: str | None, snapshot_id: str | None
) -> str:
    """The snapshot id named by exactly one of a branch, a tag or a snapshot id."""
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
    require_snapshot(info, snapshot_id)
    return snapshot_id


def commits_since(info: RepoInfo, branch: str, base_id: str) -> list[str]:
    """Snapshots on ``branch`` after ``base_id``, oldest first.

    Raises
    ------
    ConflictError
        The branch was reset to a history that does not contain ``base_id``.
    """
    tip = info.branches.get(branch)
    if tip is None:
        raise RefNotFoundError(f"branch {branch!r} not found", kind="branch-not-found")
    chain = snapshots_after(info, base_id, tip)
    if chain is None:
        raise ConflictError(
            expected_parent=base_id,
            actual_parent=tip,
            message=f"branch {branch!r} was reset to a history that does not contain "
            f"{base_id}; this session cannot be rebased onto it",
        )
    return chain


def publish(
    assets: AssetManager,
    snapshot: Snapshot,
    branch: str | None,
    expected_tip: str,
    kind: str,
) -> None:
    """Make a stored ``snapshot`` part of the history in one compare-and-swap.

    ``kind`` is ``new_commit`` (``branch`` must still point at ``expected_tip``, its
    parent), ``commit_amended`` (``branch`` must still point at ``expected_tip``, the
    snapshot being replaced) or ``new_detached_snapshot`` (no branch moves). A swap
    that landed although its reply was lost is recognised on the retry and counts as
    done.
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
                raise RefNotFoundError(f"branch {branch!r} was deleted", kind="branch-not-found")
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
        assets.update_repo_info(mutate)
