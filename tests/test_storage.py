"""The storage contract, run against every backend."""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from icechunk_fast.errors import InvalidInputError, ReadOnlyError
from icechunk_fast.storage import (
    ObjectNotFoundError,
    Storage,
    fsspec_storage,
    in_memory_storage,
    local_filesystem_storage,
)
from icechunk_fast.storage._counting import CountingStorage
from icechunk_fast.storage._wrapper import WrapperStorage
from tests import _azure, _gcs, _s3

BACKENDS: dict[str, Callable[[Path], Storage]] = {
    "memory": lambda _: in_memory_storage(),
    "local": lambda tmp: local_filesystem_storage(tmp / "repo"),
    "fsspec-memory": lambda _: fsspec_storage(
        f"memory://{uuid.uuid4().hex}", unsafe_allow_unconditional_writes=True
    ),
    # servers on loopback, started once per test process; a fresh prefix per test
    "s3": _s3.backend,  # moto
    "s3-obstore": _s3.obstore_backend,  # moto, through obstore's client
    "gcs": _gcs.backend,  # fake-gcs-server
    "azure": _azure.backend,  # Azurite
}
MISSING = {
    "s3": "" if _s3.AVAILABLE else "moto, s3fs or boto3 is not installed",
    "s3-obstore": "" if _s3.AVAILABLE and _s3.OBSTORE else "moto or obstore is not installed",
    "gcs": _gcs.MISSING,
    "azure": _azure.MISSING,
}


@pytest.fixture(params=sorted(BACKENDS))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if MISSING.get(request.param):
        pytest.skip(MISSING[request.param])
    return BACKENDS[request.param](tmp_path)


def test_put_get_size_exists(storage: Storage) -> None:
    assert not storage.exists("chunks/A")
    storage.put("chunks/A", b"hello world")
    assert storage.get("chunks/A") == b"hello world"
    assert storage.size("chunks/A") == 11
    assert storage.exists("chunks/A")
    storage.put("chunks/A", b"replaced")
    assert storage.get("chunks/A") == b"replaced"
    storage.put("empty", b"")
    assert storage.get("empty") == b""


def test_missing_objects(storage: Storage) -> None:
    for call in (
        lambda: storage.get("nope"),
        lambda: storage.get_range("nope", 0, 1),
        lambda: storage.size("nope"),
        lambda: storage.get_with_version("nope"),
    ):
        with pytest.raises(ObjectNotFoundError):
            call()
    with pytest.raises(KeyError):  # NotFoundError is also a KeyError
        storage.get("nope")
    storage.delete("nope")  # not an error


def test_ranges(storage: Storage) -> None:
    storage.put("k", bytes(range(100)))
    assert storage.get_range("k", 10, 20) == bytes(range(10, 20))
    assert storage.get_range("k", 90, None) == bytes(range(90, 100))
    assert storage.get_range("k", 95, 200) == bytes(range(95, 100))
    assert storage.get_range("k", 0, 0) == b""


def test_put_if_absent(storage: Storage) -> None:
    assert storage.put_if_absent("refs/x", b"one")
    assert not storage.put_if_absent("refs/x", b"two")
    assert storage.get("refs/x") == b"one"


def test_compare_and_swap(storage: Storage) -> None:
    assert storage.put_if_match("repo", b"v0", "not-a-version") is None
    v0 = storage.put_if_match("repo", b"v0", None)
    assert v0 is not None
    assert storage.put_if_match("repo", b"again", None) is None  # exists now
    data, version = storage.get_with_version("repo")
    assert data == b"v0"
    v1 = storage.put_if_match("repo", b"v1", version)
    assert v1 is not None
    assert storage.put_if_match("repo", b"stale", version) is None
    assert storage.get("repo") == b"v1"
    assert storage.get_with_version("repo")[1] == v1


def test_compare_and_swap_under_threads(storage: Storage) -> None:
    storage.put("counter", b"0")
    wins: list[int] = []

    def worker() -> None:
        done = 0
        while done < 25:
            data, version = storage.get_with_version("counter")
            if storage.put_if_match("counter", str(int(data) + 1).encode(), version) is not None:
                done += 1
        wins.append(done)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert int(storage.get("counter")) == 100 == sum(wins)


def test_list_and_delete(storage: Storage) -> None:
    keys = ["chunks/A", "chunks/B", "manifests/M", "repo", "snapshots/S1"]
    for k in keys:
        storage.put(k, b"x")
    assert sorted(storage.list()) == keys
    assert sorted(storage.list("chunks/")) == ["chunks/A", "chunks/B"]
    assert sorted(storage.list("snap")) == ["snapshots/S1"]
    assert list(storage.list("nothing/")) == []
    storage.delete_many(["chunks/A", "repo"])
    assert sorted(storage.list()) == ["chunks/B", "manifests/M", "snapshots/S1"]


HOSTILE = [
    "../x",
    "/abs",
    "a//b",
    "a/../b",
    "a/./b",
    ".hidden",
    "a/",
    "",
    "nul\x00byte",
    "x" * 2000,
    "sp ace",
    "back\\slash",
]


@pytest.mark.parametrize("key", HOSTILE)
def test_hostile_keys_are_refused(storage: Storage, key: str) -> None:
    for call in (
        lambda: storage.put(key, b"x"),
        lambda: storage.put_if_absent(key, b"x"),
        lambda: storage.put_if_match(key, b"x", None),
        lambda: storage.get(key),
        lambda: storage.delete(key),
    ):
        with pytest.raises(InvalidInputError):
            call()


def test_pickle_round_trip(storage: Storage) -> None:
    storage.put("k", b"v")
    clone = pickle.loads(pickle.dumps(storage))
    assert clone.get("k") == b"v"
    assert repr(clone) == repr(storage) or type(clone) is type(storage)


async def test_async_twins(storage: Storage) -> None:
    await storage.put_async("a", b"0123456789")
    assert await storage.get_async("a") == b"0123456789"
    assert await storage.get_range_async("a", 2, 5) == b"234"


def test_local_never_writes_outside_root(tmp_path: Path) -> None:
    storage = local_filesystem_storage(tmp_path / "root")
    for key in HOSTILE:
        with pytest.raises(InvalidInputError):
            storage.put(key, b"x")
    assert not (tmp_path / "x").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["root"])


def test_local_leaves_no_temp_files_and_lists_none(tmp_path: Path) -> None:
    storage = local_filesystem_storage(tmp_path)
    storage.put("a/b", b"1")
    storage.put_if_absent("a/b", b"2")
    storage.put_if_match("a/b", b"3", "bad")
    _data, version = storage.get_with_version("a/b")
    storage.put_if_match("a/b", b"4", version)
    names = sorted(os.listdir(tmp_path / "a"))
    assert names == ["b"]
    assert list(storage.list()) == ["a/b"]


def test_local_temp_files_from_a_crash_are_invisible(tmp_path: Path) -> None:
    storage = local_filesystem_storage(tmp_path)
    storage.put("chunks/A", b"done")
    (tmp_path / "chunks" / ".B.deadbeef.tmp").write_bytes(b"half")
    assert list(storage.list()) == ["chunks/A"]
    with pytest.raises(ObjectNotFoundError):
        storage.get("chunks/B")


def test_read_only_memory_storage_refuses_writes() -> None:
    storage = in_memory_storage()
    storage.read_only = True
    with pytest.raises(ReadOnlyError):
        storage.put("k", b"v")


# -- wrappers ----------------------------------------------------------------------------
def _storage_methods() -> set[str]:
    return {n for n in dir(Storage) if not n.startswith("_") and callable(getattr(Storage, n))}


@pytest.mark.parametrize("wrapper", [WrapperStorage, CountingStorage])
def test_wrappers_forward_every_call(wrapper: type[WrapperStorage]) -> None:
    # a method left to Storage's default would bypass the inner storage's own one
    assert _storage_methods() <= set(vars(wrapper)) | set(vars(WrapperStorage))
    inner = in_memory_storage()
    wrapped = wrapper(inner)
    wrapped.put("a", b"xyz")
    assert inner.get("a") == b"xyz" and wrapped.get_range("a", 1, 2) == b"y"
    assert wrapped.put_if_absent("b", b"1") and not wrapped.put_if_absent("b", b"2")
    assert list(wrapped.get_ranges([("a", 0, 1), ("b", 0, 1)])) == [b"x", b"1"]
    assert sorted(wrapped.list()) == ["a", "b"] and wrapped.exists("a")
    wrapped.delete_many(["a", "b"])
    assert list(inner.list()) == []
    assert wrapped == inner and wrapped == wrapper(inner) and repr(wrapped) == repr(inner)
    assert (wrapped.supports_conditional_writes, wrapped.is_remote) == (True, False)


def test_counting_storage_counts_requests_and_bytes() -> None:
    counting = CountingStorage(in_memory_storage())
    counting.put("a", b"xyz")
    counting.get("a")
    counting.get_ranges([("a", 0, 1), ("a", 1, 3)])
    stats = counting.stats
    assert (stats.requests, stats.bytes_written, stats.bytes_read) == (4, 3, 6)
