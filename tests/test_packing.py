"""Chunk packing: many chunks of a session in a few objects, read back exactly."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

import icechunk_fast as ic

PROTO = default_buffer_prototype()


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ic.Storage:
    if request.param == "memory":
        return ic.in_memory_storage()
    return ic.local_filesystem_storage(tmp_path / "repo")


def chunk_objects(storage: ic.Storage) -> list[str]:
    return sorted(storage.list("chunks/"))


def test_chunks_go_into_packs(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage, ic.RepositoryConfig(chunk_pack_target_bytes=8 * 1024))
    session = repo.writable_session("main")
    data = np.random.default_rng(0).integers(0, 255, size=(50, 1024), dtype="u1")
    arr = zarr.create_array(
        session.store, name="a", shape=data.shape, chunks=(1, 1024), dtype="u1", compressors=None
    )
    arr[:] = data
    uploaded = len(chunk_objects(storage))
    assert 5 <= uploaded <= 7  # 50 KiB in 8 KiB packs, the last one still in memory
    np.testing.assert_array_equal(arr[:], data)  # read back, partly from memory
    session.commit("packed")
    assert len(chunk_objects(storage)) == uploaded + 1
    ro = repo.readonly_session(branch="main").store
    np.testing.assert_array_equal(zarr.open_array(ro, path="a", mode="r")[:], data)
    for row in (0, 17, 49):  # byte ranges inside a pack
        got = ro.get_sync(f"a/c/{row}/0")
        assert got is not None and got.to_bytes() == data[row].tobytes()


def test_sessions_never_share_a_pack(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4, 1024), chunks=(1, 1024), dtype="u1")
    session.commit("array")
    one, two = repo.writable_session("main"), repo.writable_session("main")
    one.store.set_sync("a/c/0/0", PROTO.buffer.from_bytes(b"\x01" * 1024))
    two.store.set_sync("a/c/1/0", PROTO.buffer.from_bytes(b"\x02" * 1024))
    one.commit("one")
    two.commit("two", rebase_with=ic.ConflictDetector())
    packs = chunk_objects(storage)
    assert len(packs) == 2 and packs[0][:20] != packs[1][:20]  # different writer prefixes


def test_discarded_pack_is_never_written(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(8,), chunks=(8,), dtype="u1")
    session.commit("array")
    session = repo.writable_session("main")
    session.store.set_sync("a/c/0", PROTO.buffer.from_bytes(b"\x07" * 4096))
    session.discard_changes()
    assert chunk_objects(storage) == []
    assert session.store.get_sync("a/c/0") is None


def test_threads_fill_one_pack_consistently(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage, ic.RepositoryConfig(chunk_pack_target_bytes=64 * 1024))
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(2000, 600), chunks=(1, 600), dtype="u1")
    store = session.store

    def value(i: int) -> bytes:
        return bytes([i % 251]) * 600

    def write(i: int) -> None:
        store.set_sync(f"a/c/{i}/0", PROTO.buffer.from_bytes(value(i)))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(2000)))
    for i in range(0, 2000, 97):  # from memory and from uploaded packs
        got = store.get_sync(f"a/c/{i}/0")
        assert got is not None and got.to_bytes() == value(i)
    snap = session.commit("threads")
    ro = repo.readonly_session(snapshot_id=snap).store
    for i in range(0, 2000, 13):
        got = ro.get_sync(f"a/c/{i}/0")
        assert got is not None and got.to_bytes() == value(i)


def test_packing_off_writes_one_object_per_chunk(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage, ic.RepositoryConfig(chunk_pack_target_bytes=0))
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="a", shape=(6, 1024), chunks=(1, 1024), dtype="u1", compressors=None
    )
    arr[:] = 3
    session.commit("unpacked")
    assert len(chunk_objects(storage)) == 6


def test_bad_pack_size_is_refused() -> None:
    with pytest.raises(ic.InvalidInputError):
        ic.RepositoryConfig(chunk_pack_target_bytes=-5)
