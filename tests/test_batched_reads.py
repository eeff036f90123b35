"""Batched reads through the store: few requests for many chunks, exact bytes.

Every test counts the storage requests a repository makes (``repo.stats()``) over
in-memory, local and S3 (moto server on loopback) storage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, Store, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import icechunk_fast as ic
from icechunk_fast.batching import CoalescePolicy
from tests import _s3
from tests.test_storage import BACKENDS, MISSING

PROTO = default_buffer_prototype()
N = 100
CHUNK = 1024
HAS_GET_RANGES = hasattr(Store, "get_ranges")  # zarr >= 3.4


@pytest.fixture(params=["memory", "local", "s3"])
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ic.Storage]:
    """A factory of fresh storages of one kind."""
    if request.param == "s3" and not _s3.AVAILABLE:
        pytest.skip("moto, s3fs and boto3 are needed for the S3 tests")
    counter = iter(range(1000))

    def make() -> ic.Storage:
        if request.param == "memory":
            return ic.in_memory_storage()
        if request.param == "local":
            return ic.local_filesystem_storage(tmp_path / f"repo{next(counter)}")
        return _s3.storage()

    return make


def build(
    storage: ic.Storage, config: ic.RepositoryConfig | None = None, n: int = N, chunk: int = CHUNK
) -> tuple[ic.Repository, np.ndarray]:
    """A repository with array ``a`` of ``n`` chunks of ``chunk`` random bytes, committed."""
    repo = ic.Repository.create(storage, config)
    session = repo.writable_session("main")
    data = np.random.default_rng(n).integers(0, 256, size=(n, chunk), dtype="u1")
    arr = zarr.create_array(
        session.store, name="a", shape=data.shape, chunks=(1, chunk), dtype="u1", compressors=None
    )
    arr[:] = data
    session.commit("data")
    return repo, data


def keys(rows: range | list[int]) -> list[str]:
    return [f"a/c/{i}/0" for i in rows]


def reader(repo: ic.Repository) -> ic.Session:
    """A read-only session with its manifest loaded and the counters at zero."""
    session = repo.readonly_session(branch="main")
    for future in getattr(session, "_preloads", ()):
        future.result()
    assert session.read(keys([0])[0]) is not None
    repo.reset_stats()
    return session


def get_partial(store: ic.IcechunkStore, key_ranges: list[tuple[str, Any]]) -> list[bytes | None]:
    values = sync(store.get_partial_values(PROTO, key_ranges))
    return [None if v is None else v.to_bytes() for v in values]


# -- the storage side: get_ranges on every backend --------------------------------------
@pytest.fixture(params=sorted(BACKENDS))
def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> ic.Storage:
    if MISSING.get(request.param):
        pytest.skip(MISSING[request.param])
    return BACKENDS[request.param](tmp_path)


def test_get_ranges_contract(any_storage: ic.Storage) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB: local storage reads the big ones on threads
    any_storage.put("chunks/a", data)
    any_storage.put("chunks/b", b"0123456789")
    requests = [
        ("chunks/a", 10, 20),
        ("chunks/b", 0, 5),
        ("chunks/a", 0, len(data)),
        ("chunks/b", 8, 30),  # past the end: clipped, as get_range does
        ("chunks/a", 1 << 20, len(data)),
    ]
    expected = [data[10:20], b"01234", data, b"89", data[1 << 20 :]]
    assert list(any_storage.get_ranges(requests)) == expected
    assert list(asyncio.run(any_storage.get_ranges_async(requests))) == expected
    assert list(any_storage.get_ranges([])) == []
    with pytest.raises(ic.NotFoundError):
        any_storage.get_ranges([("chunks/a", 0, 1), ("chunks/missing", 0, 1)])
    with pytest.raises(ic.NotFoundError):
        asyncio.run(any_storage.get_ranges_async([("chunks/missing", 0, 1), ("chunks/a", 0, 1)]))


# -- request counts ----------------------------------------------------------------------
def test_neighbouring_chunks_of_a_pack_take_one_request(
    make_storage: Callable[[], ic.Storage],
) -> None:
    repo, data = build(make_storage())
    session = reader(repo)
    got = get_partial(session.store, [(k, None) for k in keys(range(N))])
    assert got == [row.tobytes() for row in data]
    stats = repo.stats()
    assert stats.requests == 1
    assert stats.bytes_read == N * CHUNK


def test_sync_and_bulk_surfaces_batch_too(make_storage: Callable[[], ic.Storage]) -> None:
    repo, data = build(make_storage())
    session = reader(repo)
    store = session.store
    got = store.get_partial_values_sync(PROTO, [(k, None) for k in keys(range(N))])
    assert [v.to_bytes() for v in got if v is not None] == [row.tobytes() for row in data]

    async def bulk() -> dict[str, bytes | None]:
        requests = [(k, PROTO, None) for k in keys(range(N))]
        return {k: None if v is None else v.to_bytes() async for k, v in store._get_many(requests)}

    assert sync(bulk()) == {k: row.tobytes() for k, row in zip(keys(range(N)), data, strict=True)}
    assert repo.stats().requests == 2


def test_coalescing_off_is_one_request_per_chunk(make_storage: Callable[[], ic.Storage]) -> None:
    repo, data = build(make_storage(), ic.RepositoryConfig(read_coalesce_max_bytes=0))
    session = reader(repo)
    got = session.read_many([(k, None) for k in keys(range(N))])
    assert got == [row.tobytes() for row in data]
    assert repo.stats().requests == N


def test_gaps_above_the_limit_split_requests(make_storage: Callable[[], ic.Storage]) -> None:
    # every 10th chunk: gaps of 9 KiB between the ranges read
    rows = list(range(0, N, 10))
    tight = ic.RepositoryConfig(read_coalesce_gap_bytes=8 * CHUNK)
    repo, data = build(make_storage(), tight)
    session = reader(repo)
    assert session.read_many([(k, None) for k in keys(rows)]) == [data[r].tobytes() for r in rows]
    assert repo.stats().requests == len(rows)
    loose = ic.RepositoryConfig(read_coalesce_gap_bytes=9 * CHUNK)
    repo, data = build(make_storage(), loose)
    session = reader(repo)
    assert session.read_many([(k, None) for k in keys(rows)]) == [data[r].tobytes() for r in rows]
    assert repo.stats().requests == 1


def test_coalesced_requests_stay_within_the_size_limit(
    make_storage: Callable[[], ic.Storage],
) -> None:
    repo, data = build(make_storage(), ic.RepositoryConfig(read_coalesce_max_bytes=10 * CHUNK))
    session = reader(repo)
    got = session.read_many([(k, None) for k in keys(range(N))])
    assert got == [row.tobytes() for row in data]
    assert repo.stats().requests == N // 10


def test_large_chunks_are_read_in_parts(make_storage: Callable[[], ic.Storage]) -> None:
    config = ic.RepositoryConfig(read_split_bytes=64 * 1024)
    repo, data = build(make_storage(), config, n=2, chunk=300 * 1024)
    session = reader(repo)
    got = session.read_many([(keys([1])[0], None)])
    assert got == [data[1].tobytes()]
    stats = repo.stats()
    assert stats.requests == 5  # 300 KiB in parts of at most 64 KiB
    assert stats.bytes_read == data[1].nbytes


def test_chunks_of_their_own_objects_are_fetched_together(
    make_storage: Callable[[], ic.Storage],
) -> None:
    repo, data = build(make_storage(), ic.RepositoryConfig(chunk_pack_target_bytes=0), n=20)
    session = reader(repo)
    got = session.read_many([(k, None) for k in keys(range(20))])
    assert got == [row.tobytes() for row in data]
    assert repo.stats().requests == 20


# -- byte ranges, missing keys, metadata --------------------------------------------------
def test_byte_requests_and_missing_keys(make_storage: Callable[[], ic.Storage]) -> None:
    repo, data = build(make_storage())
    session = reader(repo)
    store = session.store
    requests: list[tuple[str, Any]] = [
        ("a/c/3/0", RangeByteRequest(10, 20)),
        ("a/c/4/0", OffsetByteRequest(1000)),
        ("a/c/5/0", SuffixByteRequest(7)),
        ("a/c/6/0", RangeByteRequest(1000, 5000)),  # past the end: clipped
        ("a/c/7/0", OffsetByteRequest(5000)),  # starts past the end: empty
        ("a/c/3/0", RangeByteRequest(15, 30)),  # overlaps the first one
        ("a/zarr.json", RangeByteRequest(0, 10)),
        ("a/zarr.json", None),
        ("b/zarr.json", None),  # no such node
        ("a/c/100/0", None),  # outside the grid
        ("a/c/8/0", None),
    ]
    got = get_partial(store, requests)
    expected = []
    for key, byte_range in requests:
        value = store.get_sync(key, prototype=PROTO, byte_range=byte_range)
        expected.append(None if value is None else value.to_bytes())
    assert got == expected
    assert got[:6] == [
        data[3, 10:20].tobytes(),
        data[4, 1000:].tobytes(),
        data[5, -7:].tobytes(),
        data[6, 1000:].tobytes(),
        b"",
        data[3, 15:30].tobytes(),
    ]
    assert got[6] is not None and got[7] is not None and got[7].startswith(got[6])
    assert got[8] is None and got[9] is None and got[10] == data[8].tobytes()
    repo.reset_stats()
    get_partial(store, requests)
    assert repo.stats().requests == 1


def test_malformed_keys_are_refused(make_storage: Callable[[], ic.Storage]) -> None:
    repo, _ = build(make_storage())
    with pytest.raises(ic.InvalidInputError):
        get_partial(reader(repo).store, [("a/c/0/0", None), ("/a/../x", None)])


def test_an_absent_chunk_never_costs_a_request(make_storage: Callable[[], ic.Storage]) -> None:
    storage = make_storage()
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(N, CHUNK), chunks=(1, CHUNK), dtype="u1")
    session.commit("empty array")
    session = repo.readonly_session(branch="main")
    repo.reset_stats()
    assert session.read_many([(k, None) for k in keys(range(N))]) == [None] * N
    assert repo.stats().requests == 0


# -- what is served without storage ------------------------------------------------------
def test_uncommitted_and_inline_chunks_need_no_request(
    make_storage: Callable[[], ic.Storage],
) -> None:
    repo = ic.Repository.create(make_storage())
    session = repo.writable_session("main")
    store = session.store
    arr = zarr.create_array(
        store, name="a", shape=(N, CHUNK), chunks=(1, CHUNK), dtype="u1", compressors=None
    )
    data = np.random.default_rng(1).integers(0, 256, size=(N, CHUNK), dtype="u1")
    arr[:] = data
    tiny = zarr.create_array(store, name="t", shape=(N,), chunks=(1,), dtype="u1", compressors=None)
    tiny[:] = np.arange(N, dtype="u1")
    repo.reset_stats()
    got = session.read_many([(k, None) for k in keys(range(N))] + [("t/c/7", None)])
    assert got == [row.tobytes() for row in data] + [b"\x07"]
    assert repo.stats().requests == 0  # the pack is still in memory, "t" is inline


def test_a_full_pack_being_uploaded_and_the_stored_ones_mix(tmp_path: Path) -> None:
    config = ic.RepositoryConfig(chunk_pack_target_bytes=16 * CHUNK)
    repo = ic.Repository.create(ic.local_filesystem_storage(tmp_path / "r"), config)
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="a", shape=(N, CHUNK), chunks=(1, CHUNK), dtype="u1", compressors=None
    )
    data = np.random.default_rng(2).integers(0, 256, size=(N, CHUNK), dtype="u1")
    arr[:] = data
    repo.reset_stats()
    got = session.read_many([(k, None) for k in keys(range(N))])
    assert got == [row.tobytes() for row in data]
    assert repo.stats().requests == N // 16  # the stored packs; the last one is in memory


# -- caches --------------------------------------------------------------------------------
def test_memory_cache_is_shared_with_single_reads(tmp_path: Path) -> None:
    config = ic.RepositoryConfig(caching=ic.CachingConfig(num_bytes_chunks=1 << 20))
    repo, data = build(ic.local_filesystem_storage(tmp_path / "r"), config)
    session = reader(repo)
    rows = list(range(0, N, 2))
    assert session.read_many([(k, None) for k in keys(rows)]) == [data[r].tobytes() for r in rows]
    assert repo.stats().requests == 1
    repo.reset_stats()
    got = session.read_many([(k, None) for k in keys(range(N))])
    assert got == [row.tobytes() for row in data]
    stats = repo.stats()
    # the odd rows were missing (and are fetched as one span); memory hits also count
    # manifest lookups, so only the misses are exact
    assert stats.requests == 1 and stats.memory_misses == N // 2
    repo.reset_stats()
    assert session.read(keys([1])[0]) == data[1].tobytes()  # cached by the batch
    assert repo.stats().requests == 0 and repo.stats().memory_misses == 0


def test_disk_cache_serves_a_new_repository_object(tmp_path: Path) -> None:
    caching = ic.CachingConfig(
        disk_cache_dir=str(tmp_path / "cache"), disk_cache_chunks=True, disk_cache_metadata=False
    )
    storage = ic.local_filesystem_storage(tmp_path / "r")
    repo, data = build(storage, ic.RepositoryConfig(caching=caching))
    session = reader(repo)
    assert session.read_many([(k, None) for k in keys(range(N))]) == [r.tobytes() for r in data]
    assert repo.stats().requests == 1 and repo.stats().disk_misses == N - 1
    again = ic.Repository.open(storage, ic.RepositoryConfig(caching=caching))
    session = again.readonly_session(branch="main")
    assert session.read(keys([0])[0]) == data[0].tobytes()  # loads the manifest
    again.reset_stats()
    got = session.read_many([(k, None) for k in keys(range(N))])
    assert got == [row.tobytes() for row in data]
    assert again.stats().requests == 0 and again.stats().disk_hits == N


# -- damage ----------------------------------------------------------------------------------
def test_a_truncated_pack_is_reported(tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(tmp_path / "r")
    repo, data = build(storage)
    (pack,) = storage.list("chunks/")
    storage.put(pack, storage.get(pack)[: 50 * CHUNK + 10])
    session = repo.readonly_session(branch="main")
    with pytest.raises(ic.FormatError, match="truncated"):
        session.read_many([(k, None) for k in keys(range(N))])
    got = session.read_many([(k, None) for k in keys(range(50))])
    assert got == [row.tobytes() for row in data[:50]]


def test_a_missing_pack_is_reported(tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(tmp_path / "r")
    repo, _ = build(storage)
    (pack,) = storage.list("chunks/")
    storage.delete(pack)
    with pytest.raises(ic.NotFoundError):
        repo.readonly_session(branch="main").read_many([(k, None) for k in keys(range(N))])


# -- zarr's range reads (zarr >= 3.4) -----------------------------------------------------
@pytest.mark.skipif(not HAS_GET_RANGES, reason="Store.get_ranges arrived in zarr 3.4")
def test_get_ranges_of_one_value(make_storage: Callable[[], ic.Storage]) -> None:
    repo, data = build(make_storage())
    store = reader(repo).store
    ranges = [RangeByteRequest(i * 100, i * 100 + 50) for i in range(10)] + [SuffixByteRequest(3)]
    expected = [data[2, i * 100 : i * 100 + 50].tobytes() for i in range(10)]
    expected.append(data[2, -3:].tobytes())

    got = store.get_ranges_sync("a/c/2/0", ranges, prototype=PROTO)
    assert [(i, b.to_bytes()) for i, b in got if b is not None] == list(enumerate(expected))

    async def collect() -> list[tuple[int, bytes]]:
        out = []
        async for group in store.get_ranges("a/c/2/0", ranges, prototype=PROTO):
            out.extend((i, b.to_bytes()) for i, b in group if b is not None)
        return sorted(out)

    assert sync(collect()) == list(enumerate(expected))
    assert repo.stats().requests == 2
    with pytest.raises(BaseExceptionGroup) as caught:
        store.get_ranges_sync("a/c/0/5", ranges, prototype=PROTO)
    assert caught.group_contains(FileNotFoundError)


@pytest.mark.skipif(not HAS_GET_RANGES, reason="Store.get_ranges arrived in zarr 3.4")
def test_partial_reads_of_a_shard_are_coalesced(tmp_path: Path) -> None:
    repo = ic.Repository.create(ic.local_filesystem_storage(tmp_path / "r"))
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store,
        name="s",
        shape=(64, 64),
        shards=(64, 64),
        chunks=(8, 8),
        dtype="u2",
        compressors=None,
    )
    data = np.arange(64 * 64, dtype="u2").reshape(64, 64)
    arr[:] = data
    session.commit("one shard")
    ro = repo.readonly_session(branch="main")
    arr = zarr.open_array(ro.store, path="s", mode="r")
    arr[0, 0]  # loads the manifest and the shard index
    repo.reset_stats()
    np.testing.assert_array_equal(arr[8:40, 8:40], data[8:40, 8:40])
    assert repo.stats().requests <= 2  # the index, and one coalesced read of 16 inner chunks


def test_store_level_policy_override() -> None:
    repo, data = build(ic.in_memory_storage())
    session = reader(repo)
    off = CoalescePolicy(max_coalesced_bytes=0)
    got = session.read_many([(k, None) for k in keys(range(10))], coalescing=off)
    assert got == [row.tobytes() for row in data[:10]]
    assert repo.stats().requests == 10
