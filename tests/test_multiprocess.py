"""Many processes committing to one branch of a local repository at once."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import time
from pathlib import Path

import pytest
import zarr

import icechunk_fast as ic
from tests._mp_workers import commit_loop, read_value

WORKERS = 4
ATTEMPTS = 25


@pytest.mark.slow
def test_concurrent_commits_from_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "repo")
    repo = ic.Repository.create(ic.local_filesystem_storage(path))
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="a", shape=(WORKERS,), chunks=(1,), dtype="i8", fill_value=-1
    )
    base = session.commit("array")

    ctx = mp.get_context("spawn")
    start_at = time.time() + 3.0  # let every child finish importing before racing
    with ctx.Pool(WORKERS) as pool:
        results = pool.starmap(commit_loop, [(path, w, ATTEMPTS, start_at) for w in range(WORKERS)])

    ancestry = [s.id for s in repo.ancestry(branch="main")]
    assert len(ancestry) == len(set(ancestry)), "a snapshot appears twice in the ancestry"
    landed = {
        snap: (worker, attempt)
        for worker, rows in enumerate(results)
        for attempt, snap in rows
        if snap is not None
    }
    attempts = sum(len(rows) for rows in results)
    assert attempts == WORKERS * ATTEMPTS
    assert landed, "no commit landed at all"
    # every returned id is in the history exactly once; nothing else was added
    assert set(ancestry[: len(landed)]) == set(landed)
    assert ancestry[len(landed)] == base
    # each landed commit holds exactly the value its writer wrote
    for snap, (worker, attempt) in landed.items():
        store = repo.readonly_session(snapshot_id=snap).store
        assert read_value(store, worker) == worker * 1000 + attempt
    # parents are consistent: each snapshot's parent is the next one in the ancestry
    infos = list(repo.ancestry(branch="main"))
    for newer, older in itertools.pairwise(infos):
        assert newer.parent_id == older.id
        assert newer.written_at >= older.written_at
