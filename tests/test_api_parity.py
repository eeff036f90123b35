"""Names and small behaviours of Icechunk's Python API (issue 10, first slice): enum
members, session modes, node ids, async twins, spec-version and metadata accessors."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import icechunk_fast as ic


def _repo_with_array() -> ic.Repository:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="a", shape=(4,), chunks=(1,), dtype="f8", compressors=None
    )
    arr[:2] = [1.0, 2.0]  # two 8-byte chunks: inline (below the default threshold)
    session.commit("a")
    return repo


def test_enum_members_have_icechunks_names_and_keep_ours() -> None:
    assert ic.ChunkType.native is ic.ChunkType.NATIVE
    assert ic.ChunkType.uninitialized.name == "uninitialized"
    assert [m.name for m in ic.ChunkType] == ["uninitialized", "native", "virtual", "inline"]
    assert [m.name for m in ic.SessionMode] == ["readonly", "writable", "rearrange"]
    assert ic.SessionMode.READONLY is ic.SessionMode.readonly


def test_session_modes_include_rearrange() -> None:
    repo = _repo_with_array()
    assert repo.writable_session("main").mode == ic.SessionMode.writable
    assert repo.readonly_session(branch="main").mode == ic.SessionMode.readonly
    assert repo.rearrange_session("main").mode == ic.SessionMode.rearrange


async def test_chunk_type_sync_and_async_agree() -> None:
    repo = _repo_with_array()
    session = repo.readonly_session(branch="main")
    for coords, want in [([0], ic.ChunkType.inline), ([3], ic.ChunkType.uninitialized)]:
        assert session.chunk_type("/a", coords) == want
        assert await session.chunk_type_async("/a", coords) == want
    with pytest.raises(ic.InvalidInputError):
        await session.chunk_type_async("/a", [0, 0])


async def test_node_ids_survive_moves() -> None:
    repo = _repo_with_array()
    before = repo.readonly_session(branch="main").get_node_id("/a")
    session = repo.rearrange_session("main")
    await session.move_async("/a", "/b")
    assert await session.get_node_id_async("/b") == before
    session.commit("moved")
    assert repo.readonly_session(branch="main").get_node_id("/b") == before
    with pytest.raises(ic.NodeNotFoundError):
        repo.readonly_session(branch="main").get_node_id("/a")


async def test_rebase_and_status_async() -> None:
    repo = _repo_with_array()
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_array(theirs.store, path="a")[3] = 7.0
    theirs.commit("theirs")
    zarr.open_array(ours.store, path="a")[2] = 5.0
    assert "/a" in str(await ours.status_async())
    await ours.rebase_async(ic.ConflictDetector())
    ours.commit("ours")
    values = zarr.open_array(repo.readonly_session(branch="main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(values, [1.0, 2.0, 5.0, 7.0])


async def test_repository_accessors_and_async_twins() -> None:
    storage = ic.in_memory_storage()
    assert ic.Repository.fetch_spec_version(storage) is None
    repo = ic.Repository.create(storage, ic.RepositoryConfig(inline_chunk_threshold_bytes=9))
    assert ic.Repository.fetch_spec_version(storage) == ic.SpecVersion.v2
    assert await ic.Repository.fetch_spec_version_async(storage) == 2
    v1 = ic.in_memory_storage()
    ic.Repository.create(v1, spec_version=1)
    assert ic.Repository.fetch_spec_version(v1) == ic.SpecVersion.v1
    config = await ic.Repository.fetch_config_async(storage)
    assert config is not None and config.inline_chunk_threshold_bytes == 9
    reopened = await repo.reopen_async(ic.RepositoryConfig(inline_chunk_threshold_bytes=3))
    assert reopened.config.inline_chunk_threshold_bytes == 3
    session = reopened.readonly_session(branch="main")
    assert session.config.inline_chunk_threshold_bytes == 3
    session.config.inline_chunk_threshold_bytes = 100  # a copy: nothing changes
    assert session.config.inline_chunk_threshold_bytes == 3
    repo.set_metadata({"team": "ocean"})
    assert repo.metadata == {"team": "ocean"}
    history = [s.id async for s in repo.async_ancestry(branch="main")]
    assert history == [s.id for s in repo.ancestry(branch="main")]
    with pytest.raises(ic.InvalidInputError):
        ic.Repository.fetch_spec_version(storage, storage_settings=object())
