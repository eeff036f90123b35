"""A two-commit scenario for fault-injection tests, and the check every fault must pass.

The first commit creates group ``/`` and array ``a``; the second overwrites part of
``a``, sets a group attribute and creates array ``b``. Chunks are 1 KiB and
uncompressed, so they are stored in packs (four chunks each), not inlined: a commit
uploads a pack, rewrites one manifest, writes another, then the log, the snapshot and
the repo info. The same scenario runs on any storage (memory with injected errors in
``test_crash_safety.py``, S3 behind a failing network in ``test_s3_faults.py``).
"""

from __future__ import annotations

import numpy as np
import zarr

import icechunk_fast as ic
from icechunk_fast.storage import Storage

CHUNK = 128  # float64 / int64 elements: 1 KiB per chunk
CONFIG = ic.RepositoryConfig(
    chunk_pack_target_bytes=4 * CHUNK * 8,
    # "reopen" means from storage alone: no disk tier that could hide a missing object
    caching=ic.CachingConfig(disk_cache_bytes=0),
)
A_FIRST = np.arange(8 * CHUNK, dtype="f8")
A_SECOND = np.where((A_FIRST >= CHUNK) & (A_FIRST < 5 * CHUNK), -1.0, A_FIRST)
B_SECOND = np.arange(3 * CHUNK, dtype="i8")  # three chunks: a partly filled pack at commit


def create_first(storage: Storage) -> str:
    """A new repository in ``storage`` holding the first version; its snapshot id."""
    repo = ic.Repository.create(storage, CONFIG)
    session = repo.writable_session("main")
    group = zarr.open_group(session.store, mode="w")
    a = group.create_array(
        "a", shape=A_FIRST.shape, chunks=(CHUNK,), dtype="f8", fill_value=0.0, compressors=None
    )
    a[:] = A_FIRST
    return session.commit("first")


def stage_second(storage: Storage) -> ic.Session:
    """A session of a freshly opened repository holding the second version, uncommitted."""
    session = ic.Repository.open(storage, CONFIG).writable_session("main")
    zarr.open_array(session.store, path="a")[CHUNK : 5 * CHUNK] = -1.0
    group = zarr.open_group(session.store)
    group.attrs["version"] = 2
    b = group.create_array(
        "b", shape=B_SECOND.shape, chunks=(CHUNK,), dtype="i8", fill_value=0, compressors=None
    )
    b[:] = B_SECOND
    return session


def check_old_or_new(storage: Storage, first: str) -> str | None:
    """Reopen ``storage`` from scratch; the branch must be at the first snapshot or at a
    second one on top of it, with exactly that version's data.

    Returns None for the first snapshot, else the id of the second.
    """
    repo = ic.Repository.open(storage, CONFIG)
    tip = repo.lookup_branch("main")
    group = zarr.open_group(repo.readonly_session(branch="main").store, mode="r")
    a = np.asarray(group["a"][:])
    if tip == first:
        np.testing.assert_array_equal(a, A_FIRST)
        assert "b" not in group and "version" not in group.attrs
        return None
    history = [s.id for s in repo.ancestry(branch="main")]
    assert history[1] == first and history.count(tip) == 1, history
    assert repo.lookup_snapshot(tip).message == "second"
    np.testing.assert_array_equal(a, A_SECOND)
    np.testing.assert_array_equal(np.asarray(group["b"][:]), B_SECOND)
    assert group.attrs["version"] == 2
    return tip
