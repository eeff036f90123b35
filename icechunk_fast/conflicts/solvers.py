"""The built-in conflict solvers."""

from __future__ import annotations

import numpy as np

from ..errors import RebaseFailedError
from ._types import Conflict, ConflictSolver, ConflictType, RebasingSession, VersionSelection

__all__ = ["BasicConflictSolver", "ConflictDetector"]


class ConflictDetector(ConflictSolver):
    """Rebases only when the changes do not overlap at all; otherwise fails with all
    conflicts listed."""

    def solve(
        self, session: RebasingSession, conflicts: list[Conflict], their_snapshot_id: str
    ) -> None:
        if conflicts:
            raise RebaseFailedError(
                their_snapshot_id,
                conflicts,
                message=_failure_message(their_snapshot_id, conflicts),
            )


class BasicConflictSolver(ConflictSolver):
    """Solves chunk double writes and deletes of updated nodes by policy.

    Parameters
    ----------
    on_chunk_conflict
        A chunk written on both sides: keep ours (default), keep theirs, or fail.
    fail_on_delete_of_updated_array, fail_on_delete_of_updated_group
        We deleted a node the other commit updated: fail if True, else our delete
        wins (default).

    Every other conflict fails the rebase.
    """

    def __init__(
        self,
        *,
        on_chunk_conflict: VersionSelection = VersionSelection.UseOurs,
        fail_on_delete_of_updated_array: bool = False,
        fail_on_delete_of_updated_group: bool = False,
    ) -> None:
        self.on_chunk_conflict = on_chunk_conflict
        self.fail_on_delete_of_updated_array = fail_on_delete_of_updated_array
        self.fail_on_delete_of_updated_group = fail_on_delete_of_updated_group

    def __repr__(self) -> str:
        return (
            f"BasicConflictSolver(on_chunk_conflict={self.on_chunk_conflict}, "
            f"fail_on_delete_of_updated_array={self.fail_on_delete_of_updated_array}, "
            f"fail_on_delete_of_updated_group={self.fail_on_delete_of_updated_group})"
        )

    def solve(
        self, session: RebasingSession, conflicts: list[Conflict], their_snapshot_id: str
    ) -> None:
        unsolved: list[Conflict] = []
        take_theirs: list[Conflict] = []
        for c in conflicts:
            kind = c.conflict_type
            if kind is ConflictType.ChunkDoubleUpdate:
                if self.on_chunk_conflict is VersionSelection.Fail:
                    unsolved.append(c)
                elif self.on_chunk_conflict is VersionSelection.UseTheirs:
                    take_theirs.append(c)
            elif kind is ConflictType.DeleteOfUpdatedArray:
                if self.fail_on_delete_of_updated_array:
                    unsolved.append(c)
            elif kind is ConflictType.DeleteOfUpdatedGroup:
                if self.fail_on_delete_of_updated_group:
                    unsolved.append(c)
            else:
                unsolved.append(c)
        if unsolved:
            raise RebaseFailedError(
                their_snapshot_id,
                unsolved,
                message=_failure_message(their_snapshot_id, unsolved),
            )
        for c in take_theirs:
            assert c.node_id is not None and c.conflicted_chunks is not None
            session.drop_chunk_changes(c.node_id, np.asarray(c.conflicted_chunks, np.int64))


def _failure_message(snapshot_id: str, conflicts: list[Conflict]) -> str:
    shown = ", ".join(f"{c.conflict_type.name} at {c.path}" for c in conflicts[:5])
    more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
    return (
        f"rebase over snapshot {snapshot_id} failed with {len(conflicts)} conflict"
        f"{'s' if len(conflicts) != 1 else ''}: {shown}{more}"
    )
