"""Contracts an Icechunk or zarr user relies on: error types, store opening, where a
repository may be created, and config objects that do not change behind one's back."""

from __future__ import annotations

from pathlib import Path

import pytest
import zarr
from zarr.core.buffer.cpu import Buffer

import icechunk_fast as ic

READ_ONLY_MESSAGE = "store was opened in read-only mode and does not support writing"


def _committed_repo() -> ic.Repository:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 1
    session.commit("a")
    return repo


async def test_read_only_store_writes_raise_read_only_error_that_is_a_value_error() -> None:
    store = _committed_repo().readonly_session(branch="main").store
    value = Buffer.from_bytes(b"\x01")
    attempts = [
        lambda: store.set("a/c/0", value),
        lambda: store.delete("a/c/0"),
        lambda: store.delete_dir("a"),
    ]
    for attempt in attempts:
        with pytest.raises(ic.ReadOnlyError, match=READ_ONLY_MESSAGE) as info:
            await attempt()
        assert isinstance(info.value, ValueError)
    for sync_attempt in [lambda: store.set_sync("a/c/0", value), lambda: store.delete_sync("a")]:
        with pytest.raises(ic.ReadOnlyError, match=READ_ONLY_MESSAGE):
            sync_attempt()


async def test_a_store_opened_twice_refuses() -> None:
    store = _committed_repo().readonly_session(branch="main").store
    await store._open()
    with pytest.raises(ValueError, match="store is already open"):
        await store._open()


async def test_exists_refuses_keys_that_can_name_nothing() -> None:
    store = _committed_repo().readonly_session(branch="main").store
    assert await store.exists("a/c/0")
    assert not await store.exists("a/c/5")  # well formed, never written: absent
    assert not await store.exists("b/c/0")  # a chunk of an array that does not exist
    for key in ["foo", "a/b", "a/c/x", "a/c/1/0"]:
        with pytest.raises(ic.InvalidInputError) as info:
            await store.exists(key)
        assert info.value.kind == "invalid-key"
    with pytest.raises(ic.InvalidInputError):
        await store.exists("a//c")  # malformed, as get refuses it too
    with pytest.raises(ic.InvalidInputError):
        await store.get("a//c")


def test_create_refuses_a_location_holding_other_objects(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("not a repository")
    storage = ic.local_filesystem_storage(tmp_path)
    with pytest.raises(ic.InvalidInputError, match=r"notes\.txt") as info:
        ic.Repository.create(storage)
    assert info.value.kind == "storage-not-empty"
    with pytest.raises(ic.InvalidInputError, match=r"notes\.txt"):
        ic.Repository.open_or_create(storage)
    assert not ic.Repository.exists(storage)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["notes.txt"]


def test_create_accepts_what_a_crashed_create_left_behind(tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(tmp_path)
    ic.Repository.create(storage, ic.RepositoryConfig(inline_chunk_threshold_bytes=8))
    (tmp_path / "repo").unlink()  # as if the process died before the final swap
    repo = ic.Repository.create(storage)
    assert repo.lookup_branch("main")


def test_create_still_refuses_an_existing_repository() -> None:
    storage = ic.in_memory_storage()
    ic.Repository.create(storage)
    with pytest.raises(ic.AlreadyExistsError):
        ic.Repository.create(storage)


def test_config_is_a_copy() -> None:
    storage = ic.in_memory_storage()
    repo = ic.Repository.create(storage, ic.RepositoryConfig(inline_chunk_threshold_bytes=8))
    config = repo.config
    config.inline_chunk_threshold_bytes = 1000
    assert repo.config.inline_chunk_threshold_bytes == 8
    repo.save_config()
    assert ic.Repository.fetch_config(storage).inline_chunk_threshold_bytes == 8
    # a chunk of 100 bytes is above the unchanged threshold: stored as a native chunk
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="a", shape=(25,), chunks=(25,), dtype="i4", compressors=None
    )
    arr[:] = 1
    assert session.chunk_type("/a", [0]) == ic.ChunkType.NATIVE
    # passed back, the changed copy takes effect and can be saved
    changed = repo.reopen(config)
    assert changed.config.inline_chunk_threshold_bytes == 1000
    changed.save_config()
    assert ic.Repository.fetch_config(storage).inline_chunk_threshold_bytes == 1000
