"""Worker functions for the concurrent-rebase tests (importable by spawned children)."""

from __future__ import annotations

from typing import Any

import zarr

import icechunk_fast as ic

SPAN = 4  # chunks each worker owns


def value_of(worker: int, attempt: int) -> int:
    """The value worker ``worker`` writes in its ``attempt``-th commit."""
    return worker * 1000 + attempt


def rebasing_committer(path: str, worker: int, commits: int, barrier: Any, results: Any) -> None:
    """Make ``commits`` commits, each writing ``value_of(worker, attempt)`` over the
    worker's own chunks, rebasing with the default :class:`BasicConflictSolver`.

    Puts ``(worker, [(attempt, snapshot id or None), ...], error or None)`` on
    ``results``; an escaped exception is reported there, never raised.
    """
    rows: list[tuple[int, str | None]] = []
    error: str | None = None
    try:
        repo = ic.Repository.open(ic.local_filesystem_storage(path))
        barrier.wait(timeout=60)  # every child is imported and ready: race from here
        for attempt in range(commits):
            session = repo.writable_session("main")
            arr = zarr.open_array(session.store, path="a")
            arr[worker * SPAN : (worker + 1) * SPAN] = value_of(worker, attempt)
            snap = session.commit(f"w{worker} a{attempt}", rebase_with=ic.BasicConflictSolver())
            rows.append((attempt, snap))
    except Exception as exc:  # reported to the parent, which fails the test
        error = f"{type(exc).__name__}: {exc}"
    results.put((worker, rows, error))
