"""Repository and session behaviour: refs, history, time travel, commits, pickling."""

from __future__ import annotations

import pickle
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import zarr

import icechunk_fast as ic
from icechunk_fast.format.repo_info import REPO_INFO_KEY


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ic.Storage:
    if request.param == "memory":
        return ic.in_memory_storage()
    return ic.local_filesystem_storage(tmp_path / "repo")


@pytest.fixture
def repo(storage: ic.Storage) -> ic.Repository:
    return ic.Repository.create(storage)


def write_array(
    session: ic.Session, name: str, values: np.ndarray, chunks: tuple[int, ...]
) -> None:
    root = zarr.open_group(session.store, mode="a")
    if name in root:
        arr = root[name]
        assert isinstance(arr, zarr.Array)
    else:
        arr = root.create_array(name, shape=values.shape, chunks=chunks, dtype=values.dtype)
    arr[...] = values


def read_array(store: ic.IcechunkStore, name: str) -> np.ndarray:
    arr = zarr.open_array(store, path=name, mode="r")
    return np.asarray(arr[...])


# -- create / open -----------------------------------------------------------------------
def test_create_open_exists(storage: ic.Storage) -> None:
    assert not ic.Repository.exists(storage)
    with pytest.raises(ic.RepositoryNotFoundError) as info:
        ic.Repository.open(storage)
    assert info.value.kind == "repository-not-found"
    repo = ic.Repository.create(storage)
    assert ic.Repository.exists(storage)
    with pytest.raises(ic.AlreadyExistsError):
        ic.Repository.create(storage)
    again = ic.Repository.open(storage)
    assert again.list_branches() == {"main"}
    assert ic.Repository.open_or_create(storage).lookup_branch("main") == repo.lookup_branch("main")
    [initial] = list(repo.ancestry(branch="main"))
    assert initial.parent_id is None and initial.message == "Repository initialized"
    assert initial.written_at.tzinfo is not None


def test_open_or_create_creates(storage: ic.Storage) -> None:
    repo = ic.Repository.open_or_create(storage)
    assert repo.list_branches() == {"main"}


def test_config_persistence(storage: ic.Storage) -> None:
    config = ic.RepositoryConfig(inline_chunk_threshold_bytes=8)
    repo = ic.Repository.create(storage, config)
    assert ic.Repository.fetch_config(storage) == config
    assert repo.config.inline_chunk_threshold_bytes == 8
    opened = ic.Repository.open(storage, ic.RepositoryConfig(max_concurrent_requests=3))
    assert opened.config.inline_chunk_threshold_bytes == 8
    assert opened.config.max_concurrent_requests == 3
    opened.save_config()
    persisted = ic.Repository.fetch_config(storage)
    assert persisted is not None and persisted.max_concurrent_requests == 3
    assert ic.Repository.fetch_config(ic.in_memory_storage()) is None


def test_bad_inputs() -> None:
    with pytest.raises(ic.InvalidInputError):
        ic.Repository.create("/not/a/storage")  # type: ignore[arg-type]
    with pytest.raises(ic.InvalidInputError) as info:
        ic.Repository.create(ic.in_memory_storage(), spec_version=7)
    assert info.value.kind == "unsupported-spec-version"
    with pytest.raises(ic.InvalidInputError):
        ic.RepositoryConfig(inline_chunk_threshold_bytes=-1)


def test_spec_version(storage: ic.Storage) -> None:
    repo = ic.Repository.create(storage, spec_version=ic.SpecVersion.v1)
    assert repo.spec_version == 1
    assert ic.Repository.open(storage).spec_version == 1


def test_corrupt_repo_info_is_refused(storage: ic.Storage) -> None:
    ic.Repository.create(storage)
    data = bytearray(storage.get(REPO_INFO_KEY))
    data[-3] ^= 0xFF
    storage.put(REPO_INFO_KEY, bytes(data))
    with pytest.raises(ic.FormatError):
        ic.Repository.open(storage)


# -- branches and tags ---------------------------------------------------------------------
def test_branches(repo: ic.Repository) -> None:
    root = repo.lookup_branch("main")
    repo.create_branch("dev", root)
    assert repo.list_branches() == {"main", "dev"}
    with pytest.raises(ic.AlreadyExistsError) as exists:
        repo.create_branch("dev", root)
    assert exists.value.kind == "branch-already-exists"
    with pytest.raises(ic.SnapshotNotFoundError):
        repo.create_branch("x", "0" * 20)
    session = repo.writable_session("dev")
    write_array(session, "a", np.arange(10), (5,))
    snap = session.commit("on dev")
    assert repo.lookup_branch("dev") == snap
    assert repo.lookup_branch("main") == root
    repo.reset_branch("main", snap)
    assert repo.lookup_branch("main") == snap
    with pytest.raises(ic.ConflictError):
        repo.reset_branch("main", root, from_snapshot_id=root)
    repo.reset_branch("main", root, from_snapshot_id=snap)
    assert repo.lookup_branch("main") == root
    repo.delete_branch("dev")
    assert repo.list_branches() == {"main"}
    with pytest.raises(ic.RefNotFoundError) as missing:
        repo.lookup_branch("dev")
    assert missing.value.kind == "branch-not-found" and isinstance(missing.value, KeyError)
    with pytest.raises(ic.InvalidInputError) as main:
        repo.delete_branch("main")
    assert main.value.kind == "cannot-delete-main"
    with pytest.raises(ic.RefNotFoundError):
        repo.delete_branch("never")


def test_tags_are_immutable_and_names_never_reused(repo: ic.Repository) -> None:
    root = repo.lookup_branch("main")
    repo.create_tag("v1", root)
    assert repo.list_tags() == {"v1"} and repo.lookup_tag("v1") == root
    with pytest.raises(ic.AlreadyExistsError) as exists:
        repo.create_tag("v1", root)
    assert exists.value.kind == "tag-already-exists"
    repo.delete_tag("v1")
    assert repo.list_tags() == set()
    with pytest.raises(ic.AlreadyExistsError) as reused:
        repo.create_tag("v1", root)
    assert reused.value.kind == "tag-previously-deleted"
    with pytest.raises(ic.RefNotFoundError) as missing:
        repo.lookup_tag("v1")
    assert missing.value.kind == "tag-not-found"
    with pytest.raises(ic.RefNotFoundError):
        repo.delete_tag("v1")


HOSTILE_NAMES = [
    "../x",
    "/abs",
    "a//b",
    "",
    "nul\x00",
    "x" * 300,
    ".hidden",
    "a/../b",
    "a/",
    "sp ace",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_ref_names_are_refused(repo: ic.Repository, name: str) -> None:
    root = repo.lookup_branch("main")
    with pytest.raises(ic.InvalidInputError):
        repo.create_branch(name, root)
    with pytest.raises(ic.InvalidInputError):
        repo.create_tag(name, root)
    assert repo.list_branches() == {"main"} and repo.list_tags() == set()


def test_ref_names_with_slashes_are_fine(repo: ic.Repository) -> None:
    repo.create_branch("feature/x-1.2", repo.lookup_branch("main"))
    assert "feature/x-1.2" in repo.list_branches()


# -- commits -----------------------------------------------------------------------------
def test_commit_semantics(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    assert not session.read_only and session.branch == "main"
    assert not session.has_uncommitted_changes
    with pytest.raises(ic.SessionStateError) as empty:
        session.commit("nothing")
    assert empty.value.kind == "no-changes-to-commit"
    write_array(session, "a", np.arange(20, dtype="i4"), (4,))
    assert session.has_uncommitted_changes
    snap = session.commit("first", {"author": "me"})
    assert session.read_only and session.snapshot_id == snap
    with pytest.raises(ic.ReadOnlyError):
        session.commit("again", allow_empty=True)
    info = repo.lookup_snapshot(snap)
    assert info.message == "first" and info.metadata == {"author": "me"}
    empty_snap = repo.writable_session("main").commit("empty", allow_empty=True)
    assert repo.lookup_snapshot(empty_snap).parent_id == snap
    np.testing.assert_array_equal(
        read_array(repo.readonly_session(snapshot_id=empty_snap).store, "a"), np.arange(20)
    )


def test_conflict_error_names_both_parents(repo: ic.Repository) -> None:
    base = repo.lookup_branch("main")
    s1, s2 = repo.writable_session("main"), repo.writable_session("main")
    write_array(s1, "a", np.ones(4), (2,))
    write_array(s2, "b", np.ones(4), (2,))
    winner = s1.commit("one")
    with pytest.raises(ic.ConflictError) as info:
        s2.commit("two")
    assert info.value.expected_parent == base and info.value.actual_parent == winner
    assert info.value.kind == "commit-conflict"
    assert repo.lookup_branch("main") == winner
    assert not s2.read_only and s2.has_uncommitted_changes  # nothing lost: can retry later


def test_unrelated_ref_updates_do_not_conflict(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    write_array(session, "a", np.ones(4), (2,))
    repo.create_tag("t", repo.lookup_branch("main"))
    repo.create_branch("other", repo.lookup_branch("main"))
    session.commit("lands despite the tag and branch created meanwhile")


def test_read_your_writes_and_discard(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    write_array(session, "a", np.arange(100, dtype="f8"), (10,))
    np.testing.assert_array_equal(read_array(session.store, "a"), np.arange(100))
    session.discard_changes()
    assert not session.has_uncommitted_changes
    assert session.read("a/zarr.json") is None and session.read("zarr.json") is None
    assert list(session.list_keys()) == []


def test_inline_threshold(storage: ic.Storage) -> None:
    config = ic.RepositoryConfig(inline_chunk_threshold_bytes=64, chunk_pack_target_bytes=0)
    repo = ic.Repository.create(storage, config)
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    small = root.create_array("small", shape=(16,), chunks=(8,), dtype="u8", compressors=None)
    big = root.create_array("big", shape=(18,), chunks=(9,), dtype="u8", compressors=None)
    small[:] = np.arange(16)  # 64-byte chunks: inline (len <= threshold)
    big[:] = np.arange(18)  # 72-byte chunks: objects of their own
    session.commit("x")
    chunk_objects = [k for k in storage.list("chunks/")]
    assert len(chunk_objects) == 2
    ro = repo.readonly_session(branch="main").store
    np.testing.assert_array_equal(read_array(ro, "small"), np.arange(16))
    np.testing.assert_array_equal(read_array(ro, "big"), np.arange(18))


def test_transaction(repo: ic.Repository) -> None:
    with repo.transaction("main", message="in a block") as store:
        zarr.create_array(store, name="a", shape=(3,), dtype="i2", fill_value=0)[:] = [1, 2, 3]
    tip = repo.lookup_branch("main")
    assert repo.lookup_snapshot(tip).message == "in a block"
    with pytest.raises(RuntimeError), repo.transaction("main", message="never") as store:
        zarr.open_array(store, path="a")[:] = [9, 9, 9]
        raise RuntimeError("boom")
    assert repo.lookup_branch("main") == tip


def test_deletes_and_overwrites_commit(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    write_array(session, "a", np.arange(12, dtype="i8").reshape(3, 4), (1, 2))
    write_array(session, "gone", np.arange(4), (2,))
    first = session.commit("one")
    session = repo.writable_session("main")
    root = zarr.open_group(session.store)
    del root["gone"]
    arr = root["a"]
    assert isinstance(arr, zarr.Array)
    arr[1, :] = -1
    arr.resize((2, 4))
    second = session.commit("two")
    ro = repo.readonly_session(snapshot_id=second).store
    np.testing.assert_array_equal(read_array(ro, "a"), [[0, 1, 2, 3], [-1, -1, -1, -1]])
    assert "gone" not in zarr.open_group(ro, mode="r")
    old = repo.readonly_session(snapshot_id=first).store
    np.testing.assert_array_equal(read_array(old, "gone"), np.arange(4))
    np.testing.assert_array_equal(read_array(old, "a"), np.arange(12).reshape(3, 4))


# -- time travel -----------------------------------------------------------------------------
def test_time_travel_by_branch_tag_id_and_time(repo: ic.Repository) -> None:
    rng = np.random.default_rng(42)
    history: list[tuple[str, datetime, np.ndarray]] = []
    values = rng.random((40, 30)).astype("f4")
    for step in range(6):
        session = repo.writable_session("main")
        values = values.copy()
        values[rng.integers(0, 40), :] = step  # touches some chunks, not all
        write_array(session, "t", values, (8, 10))
        snap = session.commit(f"step {step}")
        repo.create_tag(f"step-{step}", snap)
        history.append((snap, repo.lookup_snapshot(snap).written_at, values))
        time.sleep(0.002)
    ancestry = list(repo.ancestry(branch="main"))
    assert [a.id for a in ancestry[:6]] == [h[0] for h in reversed(history)]
    assert ancestry[-1].parent_id is None
    for i, (snap, when, expected) in enumerate(history):
        by_id = repo.readonly_session(snapshot_id=snap).store
        by_tag = repo.readonly_session(tag=f"step-{i}").store
        by_time = repo.readonly_session("main", as_of=when).store
        for store in (by_id, by_tag, by_time):
            assert store.read_only
            np.testing.assert_array_equal(read_array(store, "t"), expected)
        assert repo.readonly_session("main", as_of=when).snapshot_id == snap
    latest = repo.readonly_session(branch="main").store
    np.testing.assert_array_equal(read_array(latest, "t"), history[-1][2])
    with pytest.raises(ic.SnapshotNotFoundError) as early:
        repo.readonly_session("main", as_of=datetime(2000, 1, 1, tzinfo=UTC))
    assert early.value.kind == "no-snapshot-at-time"
    with pytest.raises(ic.InvalidInputError):
        repo.readonly_session("main", as_of=datetime.now())  # naive
    far = history[-1][1] + timedelta(days=1)
    assert repo.readonly_session("main", as_of=far).snapshot_id == history[-1][0]
    with pytest.raises(ic.SnapshotNotFoundError):
        repo.readonly_session(snapshot_id="0" * 20)
    with pytest.raises(ic.SnapshotNotFoundError):
        repo.readonly_session(snapshot_id="../../etc/passwd")


# -- pickling ------------------------------------------------------------------------------
def test_pickling(tmp_path: Path) -> None:
    repo = ic.Repository.create(ic.local_filesystem_storage(tmp_path / "r"))
    session = repo.writable_session("main")
    write_array(session, "a", np.arange(10), (5,))
    with pytest.raises(ValueError):
        pickle.dumps(session)
    with pytest.raises(ValueError):
        pickle.dumps(session.store)
    snap = session.commit("x")
    repo2 = pickle.loads(pickle.dumps(repo))
    assert repo2.lookup_branch("main") == snap
    ro = repo.readonly_session(branch="main")
    ro2 = pickle.loads(pickle.dumps(ro))
    assert ro2.snapshot_id == snap and ro2.read_only
    store2 = pickle.loads(pickle.dumps(ro.store))
    np.testing.assert_array_equal(read_array(store2, "a"), np.arange(10))


def test_errors_pickle_with_their_fields() -> None:
    err = ic.ConflictError(expected_parent="A", actual_parent="B")
    back = pickle.loads(pickle.dumps(err))
    assert (back.expected_parent, back.actual_parent, back.kind) == ("A", "B", "commit-conflict")
    nf = pickle.loads(pickle.dumps(ic.RefNotFoundError("x", kind="tag-not-found")))
    assert nf.kind == "tag-not-found" and isinstance(nf, KeyError)


async def test_async_twins(repo: ic.Repository) -> None:
    assert await repo.list_branches_async() == {"main"}
    session = await repo.writable_session_async("main")
    write_array(session, "a", np.arange(4), (2,))
    snap = await session.commit_async("async")
    assert await repo.lookup_branch_async("main") == snap
    again = await ic.Repository.open_async(repo.storage)
    assert (await again.readonly_session_async(branch="main")).snapshot_id == snap


def test_threads_writing_one_session(repo: ic.Repository) -> None:
    """dask's threaded scheduler and zarr's sync pipeline write one session from many threads."""
    from concurrent.futures import ThreadPoolExecutor

    from zarr.core.buffer import default_buffer_prototype

    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="a", shape=(4000,), chunks=(1,), dtype="u1", compressors=None
    )
    del arr
    store = session.store
    proto = default_buffer_prototype()
    big = ic.RepositoryConfig.default().inline_threshold + 1

    def write(i: int) -> None:
        value = bytes([i % 251]) if i % 2 else bytes([i % 251]) * big  # inline and native
        store.set_sync(f"a/c/{i}", proto.buffer.from_bytes(value))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(4000)))
    snap = session.commit("threads")
    ro = repo.readonly_session(snapshot_id=snap).store
    for i in range(0, 4000, 37):
        got = ro.get_sync(f"a/c/{i}")
        assert got is not None
        want = bytes([i % 251]) if i % 2 else bytes([i % 251]) * big
        assert got.to_bytes() == want
