"""Diff and status, amend, flush, ops log, repository metadata, moves and array reshaping."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import zarr

import icechunk_fast as ic


@pytest.fixture
def repo() -> ic.Repository:
    return ic.Repository.create(ic.in_memory_storage())


def make_base(repo: ic.Repository) -> str:
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    data = root.create_group("data")
    arr = data.create_array("t", shape=(8, 6), chunks=(2, 3), dtype="i4", fill_value=-1)
    arr[:] = np.arange(48).reshape(8, 6)
    root.create_group("other")
    return session.commit("base")


def read(repo: ic.Repository, path: str, **where: str) -> np.ndarray:
    store = repo.readonly_session(**where).store if where else repo.readonly_session("main").store
    return np.asarray(zarr.open_array(store, path=path, mode="r")[:])


# -- diff and status --------------------------------------------------------------------
def test_status_and_diff(repo: ic.Repository) -> None:
    base = make_base(repo)
    session = repo.writable_session("main")
    assert session.status().is_empty() and repr(session.status()) == "Diff: no changes"
    root = zarr.open_group(session.store)
    t = root["data/t"]
    assert isinstance(t, zarr.Array)
    t[0:2, 0:3] = 0  # chunk (0, 0)
    t[7, 5] = 0  # chunk (3, 1)
    root.create_array("new", shape=(2,), dtype="f4")
    del root["other"]
    root.attrs["title"] = "x"
    status = session.status()
    assert status.new_arrays == {"/new"}
    assert status.deleted_groups == {"/other"}
    assert status.updated_groups == {"/"}
    assert status.updated_chunks == {"/data/t": [[0, 0], [3, 1]]}
    text = repr(status)
    for fragment in ("Arrays created", "/new", "Groups deleted", "/other", "[3, 1]"):
        assert fragment in text
    snap = session.commit("change")
    diff = repo.diff(from_snapshot_id=base, to_snapshot_id=snap)
    assert diff == status
    assert repo.diff(from_branch="main", to_branch="main").is_empty()
    with pytest.raises(ic.InvalidInputError, match="ancestor"):
        repo.diff(from_snapshot_id=snap, to_snapshot_id=base)


def test_diff_composes_commits(repo: ic.Repository) -> None:
    base = make_base(repo)
    s = repo.writable_session("main")
    zarr.open_group(s.store).create_array("tmp", shape=(4,), chunks=(2,), dtype="i1")[:] = 1
    s.commit("create tmp")
    s = repo.writable_session("main")
    del zarr.open_group(s.store)["tmp"]
    s.commit("delete tmp")
    s = repo.writable_session("main")
    t = zarr.open_array(s.store, path="data/t")
    t[2:4, :] = 5
    s.commit("rows")
    diff = repo.diff(from_snapshot_id=base, to_branch="main")
    assert not diff.new_arrays and not diff.deleted_arrays  # created and deleted in range
    assert diff.updated_chunks == {"/data/t": [[1, 0], [1, 1]]}


def test_diff_truncates_long_chunk_lists(repo: ic.Repository) -> None:
    s = repo.writable_session("main")
    zarr.create_array(s.store, name="a", shape=(100,), chunks=(1,), dtype="u1")[:] = 1
    text = repr(s.status())
    assert "100 chunks" in text and "... and 90 more" in text


# -- amend and flush --------------------------------------------------------------------
def test_amend_replaces_the_tip(repo: ic.Repository) -> None:
    base = make_base(repo)
    s = repo.writable_session("main")
    zarr.open_array(s.store, path="data/t")[0, 0] = 100
    first = s.commit("first try")
    s = repo.writable_session("main")
    zarr.open_array(s.store, path="data/t")[0, 1] = 200
    amended = s.amend("first, fixed")
    history = [a.id for a in repo.ancestry(branch="main")]
    assert history[:2] == [amended, base] and first not in history
    assert repo.lookup_snapshot(amended).parent_id == base
    values = read(repo, "data/t")
    assert values[0, 0] == 100 and values[0, 1] == 200
    assert read(repo, "data/t", snapshot_id=first)[0, 1] == 1  # old tip still readable
    diff = repo.diff(from_snapshot_id=base, to_snapshot_id=amended)
    assert diff.updated_chunks == {"/data/t": [[0, 0]]}
    with pytest.raises(ic.SessionStateError):
        repo.writable_session("main").amend("nothing")


def test_amend_refuses_the_root_and_conflicts(repo: ic.Repository) -> None:
    s = repo.writable_session("main")
    zarr.group(s.store)
    with pytest.raises(ic.SessionStateError, match="first snapshot"):
        s.amend("no")
    make_base(repo)
    a, b = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_group(a.store).attrs["x"] = 1
    zarr.open_group(b.store).attrs["y"] = 1
    a.commit("a")
    with pytest.raises(ic.ConflictError):
        b.amend("b")


def test_flush_then_adopt(repo: ic.Repository) -> None:
    base = make_base(repo)
    s = repo.writable_session("main")
    zarr.open_array(s.store, path="data/t")[:] = 7
    detached = s.flush("not on a branch")
    assert repo.lookup_branch("main") == base
    assert repo.lookup_snapshot(detached).parent_id == base
    assert (read(repo, "data/t", snapshot_id=detached) == 7).all()
    repo.reset_branch("main", detached, from_snapshot_id=base)
    assert (read(repo, "data/t") == 7).all()


# -- ops log and metadata ---------------------------------------------------------------
def test_ops_log_and_metadata(repo: ic.Repository) -> None:
    base = make_base(repo)
    repo.create_tag("v1", base)
    repo.create_branch("dev", base)
    repo.set_metadata({"owner": "lab"})
    assert repo.update_metadata({"project": "p"}) == {"owner": "lab", "project": "p"}
    assert repo.get_metadata() == {"owner": "lab", "project": "p"}
    repo.reset_branch("dev", base)
    repo.delete_branch("dev")
    repo.delete_tag("v1")
    kinds = [u.kind for u in repo.ops_log()]
    assert kinds == [
        "tag_deleted",
        "branch_deleted",
        "branch_reset",
        "metadata_changed",
        "metadata_changed",
        "branch_created",
        "tag_created",
        "new_commit",
        "repo_initialized",
    ]
    updates = list(repo.ops_log())
    assert updates[0].name == "v1" and updates[0].previous_snap_id == base
    assert all(a.updated_at >= b.updated_at for a, b in itertools.pairwise(updates))
    with pytest.raises(ic.InvalidInputError):
        repo.set_metadata({"bad": object()})


def test_default_commit_metadata(repo: ic.Repository) -> None:
    repo.set_default_commit_metadata({"user": "me", "tool": "x"})
    assert repo.default_commit_metadata() == {"user": "me", "tool": "x"}
    s = repo.writable_session("main")
    zarr.group(s.store)
    snap = s.commit("c", {"tool": "y"})
    assert repo.lookup_snapshot(snap).metadata == {"user": "me", "tool": "y"}


def test_spec_v1_refuses_v2_features() -> None:
    repo = ic.Repository.create(ic.in_memory_storage(), spec_version=1)
    make_base(repo)
    with pytest.raises(ic.InvalidInputError) as info:
        repo.set_metadata({"a": 1})
    assert info.value.kind == "unsupported-spec-version"
    s = repo.writable_session("main")
    zarr.open_group(s.store).attrs["x"] = 1
    with pytest.raises(ic.InvalidInputError):
        s.amend("x")
    with pytest.raises(ic.InvalidInputError):
        repo.rearrange_session("main").move("/data", "/d")


# -- moves --------------------------------------------------------------------------------
def test_move_and_rename(repo: ic.Repository) -> None:
    base = make_base(repo)
    r = repo.rearrange_session("main")
    r.move("/data/t", "/data/temperature")
    r.move("/data", "/archive")
    assert r.status().moved_nodes == [("/data/t", "/data/temperature"), ("/data", "/archive")]
    snap = r.commit("rename")
    np.testing.assert_array_equal(read(repo, "archive/temperature"), np.arange(48).reshape(8, 6))
    np.testing.assert_array_equal(
        read(repo, "data/t", snapshot_id=base), np.arange(48).reshape(8, 6)
    )
    ro = repo.readonly_session("main").store
    assert sorted(zarr.open_group(ro, mode="r").group_keys()) == ["archive", "other"]
    diff = repo.diff(from_snapshot_id=base, to_snapshot_id=snap)
    assert diff.moved_nodes == [("/data/t", "/data/temperature"), ("/data", "/archive")]
    # the manifest is reused: no chunk data was copied
    assert repo.diff(from_snapshot_id=base, to_snapshot_id=snap).updated_chunks == {}


def test_move_errors(repo: ic.Repository) -> None:
    make_base(repo)
    writable = repo.writable_session("main")
    with pytest.raises(ic.SessionStateError, match="rearrange"):
        writable.move("/data", "/d")
    r = repo.rearrange_session("main")
    with pytest.raises(ic.NodeNotFoundError):
        r.move("/nope", "/x")
    with pytest.raises(ic.AlreadyExistsError):
        r.move("/data", "/other")
    with pytest.raises(ic.InvalidInputError):
        r.move("/data", "/data/inside")
    with pytest.raises(ic.InvalidInputError):
        r.move("/data", "/missing/parent")
    with pytest.raises(ic.InvalidInputError):
        r.move("/data", "relative")
    assert r.store.read_only  # a rearrange session only moves
    with pytest.raises(ic.SessionStateError):
        r.shift_array("/data/t", [1, 0])


# -- shift and reindex ------------------------------------------------------------------
def test_shift_array(repo: ic.Repository) -> None:
    make_base(repo)
    s = repo.writable_session("main")
    s.shift_array("/data/t", [1, 0])  # down by one chunk row (2 rows of elements)
    values = np.asarray(zarr.open_array(s.store, path="data/t")[:])
    expected = np.full((8, 6), -1)
    expected[2:] = np.arange(48).reshape(8, 6)[:6]
    np.testing.assert_array_equal(values, expected)
    assert s.status().updated_chunks["/data/t"] == [[i, j] for i in range(4) for j in range(2)]
    s.commit("shift")
    np.testing.assert_array_equal(read(repo, "data/t"), expected)
    s = repo.writable_session("main")
    with pytest.raises(ic.InvalidInputError):
        s.shift_array("/data/t", [1])
    with pytest.raises(ic.InvalidInputError):
        s.shift_array("/data", [1, 0])
    s.shift_array("/data/t", [0, -1])
    zarr.open_array(s.store, path="data/t")[0, 0] = 99  # keyed writes apply on top
    values = np.asarray(zarr.open_array(s.store, path="data/t")[:])
    assert values[0, 0] == 99 and (values[:, 3:] == -1).all()
    s.commit("shift left")
    assert read(repo, "data/t")[0, 0] == 99


def test_reindex_array(repo: ic.Repository) -> None:
    s = repo.writable_session("main")
    a = zarr.create_array(s.store, name="a", shape=(5,), chunks=(1,), dtype="i2", fill_value=0)
    a[:] = [1, 2, 3, 4, 5]
    s.commit("base")
    s = repo.writable_session("main")
    s.reindex_array("/a", lambda c: [c[0] - 1] if c[0] > 0 else None)
    np.testing.assert_array_equal(zarr.open_array(s.store, path="a")[:], [2, 3, 4, 5, 5])
    s.discard_changes()
    s.reindex_array(
        "/a",
        lambda c: [c[0] - 1] if c[0] > 0 else None,
        lambda c: [c[0] + 1] if c[0] < 4 else None,
    )
    np.testing.assert_array_equal(zarr.open_array(s.store, path="a")[:], [2, 3, 4, 5, 0])
    with pytest.raises(ic.InvalidInputError):
        s.reindex_array("/a", lambda c: [c[0] + 10])
    with pytest.raises(ic.InvalidInputError):
        s.reindex_array("/a", lambda c: [0])  # every chunk to one place
    s.commit("reindex")
    np.testing.assert_array_equal(read(repo, "a"), [2, 3, 4, 5, 0])


async def test_chunk_type_and_coordinates() -> None:
    repo = ic.Repository.create(
        ic.in_memory_storage(), ic.RepositoryConfig(inline_chunk_threshold_bytes=8)
    )
    s = repo.writable_session("main")
    a = zarr.create_array(
        s.store, name="a", shape=(6,), chunks=(2,), dtype="i8", compressors=None, fill_value=0
    )
    a[0:2] = [1, 2]  # 16 bytes: native
    b = zarr.create_array(s.store, name="b", shape=(6,), chunks=(1,), dtype="i8", compressors=None)
    b[3] = 1  # 8 bytes: inline
    assert s.chunk_type("/a", [0]) == ic.ChunkType.NATIVE
    assert s.chunk_type("/a", [1]) == ic.ChunkType.UNINITIALIZED
    assert s.chunk_type("/b", [3]) == ic.ChunkType.INLINE
    with pytest.raises(ic.InvalidInputError):
        s.chunk_type("/a", [0, 0])
    with pytest.raises(ic.NodeNotFoundError):
        s.chunk_type("/zzz", [0])
    a[4:6] = [5, 6]
    assert [c async for c in s.chunk_coordinates("/a", batch_size=1)] == [(0,), (2,)]
    s.commit("x")
    ro = repo.readonly_session("main")
    assert [c async for c in ro.chunk_coordinates("/a")] == [(0,), (2,)]


def test_unrelated_update_racing_a_commit_is_retried_not_reported() -> None:
    """Another writer adds a tag between our read of the repo info and our swap."""
    from icechunk_fast.storage import InMemoryStorage

    class Racing(InMemoryStorage):
        racer: ic.Repository | None = None

        def put_if_match(self, key: str, data: bytes, expected_version: str | None) -> str | None:
            racer, self.racer = self.racer, None
            if racer is not None and key == "repo":
                racer.create_tag("sneaky", racer.lookup_branch("main"))
            return super().put_if_match(key, data, expected_version)

    storage = Racing()
    repo = ic.Repository.create(storage)
    base = make_base(repo)
    session = repo.writable_session("main")
    zarr.open_group(session.store).attrs["x"] = 1
    storage.racer = ic.Repository.open(storage)
    snap = session.commit("lands after one retry")
    assert repo.lookup_tag("sneaky") == base
    assert repo.lookup_branch("main") == snap
    assert storage.racer is None  # the race really happened
