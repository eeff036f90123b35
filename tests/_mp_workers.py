"""Worker functions for the multi-process tests (importable by spawned children)."""

from __future__ import annotations

import time

import numpy as np
import zarr

import icechunk_fast as ic


def commit_loop(
    path: str, worker: int, attempts: int, start_at: float
) -> list[tuple[int, str | None]]:
    """Try ``attempts`` commits, each writing ``worker * 1000 + attempt`` to chunk ``worker``.

    Returns ``(attempt, snapshot id or None on ConflictError)`` for every attempt.
    """
    repo = ic.Repository.open(ic.local_filesystem_storage(path))
    while time.time() < start_at:
        time.sleep(0.001)
    results: list[tuple[int, str | None]] = []
    for attempt in range(attempts):
        session = repo.writable_session("main")
        arr = zarr.open_array(session.store, path="a")
        arr[worker] = worker * 1000 + attempt
        try:
            results.append((attempt, session.commit(f"w{worker} a{attempt}")))
        except ic.ConflictError:
            results.append((attempt, None))
    return results


def read_value(store: ic.IcechunkStore, index: int) -> int:
    return int(np.asarray(zarr.open_array(store, path="a", mode="r")[index]))
