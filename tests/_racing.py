"""Writers racing to commit on one branch, and the checks that nothing was lost.

Each writer is a thread with a client of its own (an unpickled copy of the storage)
that sets its own element of array ``a`` and commits, ``attempts`` times, counting a
``ConflictError`` as a lost race. Afterwards every commit that reported success is on
the branch exactly once, in a single chain of parents, holding the value its writer
wrote; nothing else is.
"""

from __future__ import annotations

import itertools
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import zarr

import icechunk_fast as ic
from icechunk_fast.storage import Storage


def make_array(session: ic.Session, n: int) -> None:
    zarr.create_array(session.store, name="a", shape=(n,), chunks=(1,), dtype="i8", fill_value=-1)


def read_values(store: ic.IcechunkStore) -> np.ndarray:
    return np.asarray(zarr.open_array(store, path="a", mode="r")[...])


def _race(
    storage: Storage, worker: int, attempts: int, start: threading.Barrier
) -> list[tuple[int, str | None]]:
    repo = ic.Repository.open(pickle.loads(pickle.dumps(storage)))  # a client of its own
    start.wait()
    results: list[tuple[int, str | None]] = []
    for attempt in range(attempts):
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a")[worker] = worker * 1000 + attempt
        try:
            results.append((attempt, session.commit(f"w{worker} a{attempt}")))
        except ic.ConflictError:
            results.append((attempt, None))
    return results


def check_racing_writers(storage: Storage, writers: int, attempts: int) -> int:
    """Race ``writers`` threads of ``attempts`` commits each on a new repository in
    ``storage``, check the outcome, and return how many commits landed."""
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    make_array(session, writers)
    base = session.commit("array")

    start = threading.Barrier(writers)
    with ThreadPoolExecutor(writers) as pool:
        futures = [pool.submit(_race, storage, w, attempts, start) for w in range(writers)]
        results = [f.result(timeout=300) for f in futures]  # any other error surfaces here

    ancestry = [s.id for s in repo.ancestry(branch="main")]
    assert len(ancestry) == len(set(ancestry)), "a snapshot appears twice in the ancestry"
    landed = {
        snap: (worker, attempt)
        for worker, rows in enumerate(results)
        for attempt, snap in rows
        if snap is not None
    }
    assert sum(len(rows) for rows in results) == writers * attempts
    assert landed, "no commit landed at all"
    assert set(ancestry[: len(landed)]) == set(landed), "a reported commit is not on the branch"
    assert ancestry[len(landed)] == base
    for snap, (worker, attempt) in landed.items():
        values = read_values(repo.readonly_session(snapshot_id=snap).store)
        assert values[worker] == worker * 1000 + attempt
    infos = list(repo.ancestry(branch="main"))
    for newer, older in itertools.pairwise(infos):
        assert newer.parent_id == older.id
    return len(landed)
