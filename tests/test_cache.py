"""The caches of immutable objects and the repository statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

import icechunk_fast as ic
from icechunk_fast.cache import DiskTier
from icechunk_fast.format.repo_info import REPO_INFO_KEY

DATA = np.random.default_rng(0).random(400)


def disk_config(tmp_path: Path, **extra: object) -> ic.RepositoryConfig:
    return ic.RepositoryConfig(
        caching=ic.CachingConfig(
            disk_cache_dir=str(tmp_path / "cache"), disk_cache_metadata=True, **extra
        )
    )


def make_repo(tmp_path: Path) -> tuple[ic.Storage, str]:
    storage = ic.local_filesystem_storage(tmp_path / "repo")
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    # 100 random doubles per chunk: too big to be inlined, so four chunk objects
    zarr.create_array(session.store, name="a", shape=(400,), chunks=(100,), dtype="f8")[:] = DATA
    return storage, session.commit("data")


def read_all(repo: ic.Repository) -> np.ndarray:
    store = repo.readonly_session(branch="main").store
    return np.asarray(zarr.open_array(store, path="a", mode="r")[:])


def test_second_open_reads_metadata_from_disk(tmp_path: Path) -> None:
    storage, _ = make_repo(tmp_path)
    first = ic.Repository.open(storage, disk_config(tmp_path))
    np.testing.assert_array_equal(read_all(first), DATA)
    cold = first.stats()
    assert cold.disk_hits == 0 and cold.disk_misses >= 2  # snapshot + manifest
    second = ic.Repository.open(storage, disk_config(tmp_path))
    np.testing.assert_array_equal(read_all(second), DATA)
    warm = second.stats()
    assert warm.disk_hits >= 2
    assert warm.requests < cold.requests  # snapshot and manifest came from the disk tier
    assert warm.bytes_read < cold.bytes_read


def test_memory_tier_counts_hits(tmp_path: Path) -> None:
    storage, _ = make_repo(tmp_path)
    repo = ic.Repository.open(storage)
    read_all(repo)
    before = repo.stats()
    read_all(repo)
    after = repo.stats()
    assert after.memory_hits > before.memory_hits
    repo.reset_stats()
    assert repo.stats().requests == 0 and repo.stats().memory_hits == 0


def test_corrupt_disk_entry_is_detected_and_refetched(tmp_path: Path) -> None:
    storage, snap = make_repo(tmp_path)
    repo = ic.Repository.open(storage, disk_config(tmp_path))
    read_all(repo)
    tier = DiskTier(str(tmp_path / "cache"), 1 << 30, namespace=repr(storage))
    key = f"snapshots/{snap}"
    good = tier.get(key)
    assert good is not None
    tier.put(key, good[:-1] + bytes([good[-1] ^ 0xFF]))
    again = ic.Repository.open(storage, disk_config(tmp_path))
    np.testing.assert_array_equal(read_all(again), DATA)
    assert again.stats().disk_corrupt == 1
    assert tier.get(key) == good  # the refetched copy replaced the damaged one


def test_refs_are_never_served_from_cache(tmp_path: Path) -> None:
    storage, first = make_repo(tmp_path)
    reader = ic.Repository.open(storage, disk_config(tmp_path))
    assert reader.lookup_branch("main") == first
    writer = ic.Repository.open(storage)
    session = writer.writable_session("main")
    zarr.open_array(session.store, path="a")[:] = -1
    second = session.commit("change")
    assert reader.lookup_branch("main") == second  # same object, new tip
    np.testing.assert_array_equal(read_all(reader), np.full(400, -1.0))
    tier = DiskTier(str(tmp_path / "cache"), 1 << 30, namespace=repr(storage))
    assert tier.get(REPO_INFO_KEY) is None


def test_chunk_cache(tmp_path: Path) -> None:
    storage, _ = make_repo(tmp_path)
    config = ic.RepositoryConfig(caching=ic.CachingConfig(num_bytes_chunks=1 << 20))
    repo = ic.Repository.open(storage, config)
    read_all(repo)
    cold = repo.stats().requests
    repo.reset_stats()
    read_all(repo)
    warm = repo.stats()
    assert warm.requests < cold and warm.memory_hits >= 4  # the four chunks


def test_chunks_in_the_disk_tier(tmp_path: Path) -> None:
    storage, _ = make_repo(tmp_path)
    config = disk_config(tmp_path, disk_cache_chunks=True)
    read_all(ic.Repository.open(storage, config))
    repo = ic.Repository.open(storage, config)
    np.testing.assert_array_equal(read_all(repo), DATA)
    assert repo.stats().disk_hits >= 6  # snapshot, manifest, four chunks


def test_disk_tier_defaults() -> None:
    local = ic.RepositoryConfig.default().disk_tier_settings(remote=False)
    remote = ic.RepositoryConfig.default().disk_tier_settings(remote=True)
    assert local is None
    assert remote is not None and remote[2] and not remote[3]
    off = ic.RepositoryConfig(caching=ic.CachingConfig(disk_cache_bytes=0))
    assert off.disk_tier_settings(remote=True) is None


@pytest.mark.parametrize("disk", [False, True])
def test_stats_count_requests_and_bytes(tmp_path: Path, disk: bool) -> None:
    storage, _ = make_repo(tmp_path)
    repo = ic.Repository.open(storage, disk_config(tmp_path) if disk else None)
    repo.reset_stats()
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a")[:100] = np.random.default_rng(1).random(100)
    session.commit("one chunk")
    s = repo.stats()
    assert s.requests >= 5 and s.bytes_written > 800 and s.seconds > 0
    assert set(s.as_dict()) >= {"requests", "bytes_read", "disk_hits", "memory_misses"}
