"""Conflict detection and resolution for rebasing a session over newer commits.

A rebase replays the session's changes over each commit made on its branch since the
session started, oldest first. For each one, the session's change set ("ours") is
compared with that commit's transaction log ("theirs") by
:func:`~icechunk_fast.conflicts.detector.find_conflicts`; a solver decides what to do
with every conflict, or gives up with :class:`RebaseFailedError`; then
:func:`~icechunk_fast.conflicts.rebase.rebase_onto` carries the changes over.
"""

from __future__ import annotations

from ._types import Conflict, ConflictSolver, ConflictType, RebasingSession, VersionSelection
from .solvers import BasicConflictSolver, ConflictDetector

__all__ = [
    "BasicConflictSolver",
    "Conflict",
    "ConflictDetector",
    "ConflictSolver",
    "ConflictType",
    "RebasingSession",
    "VersionSelection",
]
