"""A conformance suite for :class:`~icechunk_fast.storage.Storage` implementations.

Every built-in backend passes it (``tests/test_storage.py`` runs it on memory, local
disk, fsspec, S3 through s3fs and obstore, GCS and Azure emulators). A third-party
storage is checked the same way, with pytest (and pytest-asyncio for the async twins)::

    from icechunk_fast.storage.testing import StorageTests

    class TestMyStorage(StorageTests):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(tmp_path)  # empty, writable, with conditional writes

(Not ``icechunk_fast.testing``: that name is kept for the Icechunk-compatible helpers,
``icechunk.testing.strategies`` and friends, that code written for Icechunk imports.)

The suite checks reads, ranged reads, missing objects, create-if-absent,
compare-and-swap (also under racing threads), listing, deletes, refusal of keys that
could escape the storage's root, pickling and the async twins.
"""

from __future__ import annotations

import pickle
import threading

import pytest

from ..errors import InvalidInputError
from ._base import ObjectNotFoundError, Storage

__all__ = ["HOSTILE_KEYS", "StorageTests"]

HOSTILE_KEYS = [
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


class StorageTests:
    """Subclass with a ``storage`` fixture returning an empty, writable storage."""

    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("a StorageTests subclass defines the storage fixture")

    def test_put_get_size_exists(self, storage: Storage) -> None:
        assert not storage.exists("chunks/A")
        storage.put("chunks/A", b"hello world")
        assert storage.get("chunks/A") == b"hello world"
        assert storage.size("chunks/A") == 11
        assert storage.exists("chunks/A")
        storage.put("chunks/A", b"replaced")
        assert storage.get("chunks/A") == b"replaced"
        storage.put("empty", b"")
        assert storage.get("empty") == b""

    def test_missing_objects(self, storage: Storage) -> None:
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

    def test_ranges(self, storage: Storage) -> None:
        storage.put("k", bytes(range(100)))
        assert storage.get_range("k", 10, 20) == bytes(range(10, 20))
        assert storage.get_range("k", 90, None) == bytes(range(90, 100))
        assert storage.get_range("k", 95, 200) == bytes(range(95, 100))
        assert storage.get_range("k", 0, 0) == b""

    def test_put_if_absent(self, storage: Storage) -> None:
        assert storage.put_if_absent("refs/x", b"one")
        assert not storage.put_if_absent("refs/x", b"two")
        assert storage.get("refs/x") == b"one"

    def test_compare_and_swap(self, storage: Storage) -> None:
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

    def test_compare_and_swap_under_threads(self, storage: Storage) -> None:
        storage.put("counter", b"0")
        wins: list[int] = []

        def worker() -> None:
            done = 0
            while done < 25:
                data, version = storage.get_with_version("counter")
                if (
                    storage.put_if_match("counter", str(int(data) + 1).encode(), version)
                    is not None
                ):
                    done += 1
            wins.append(done)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert int(storage.get("counter")) == 100 == sum(wins)

    def test_list_and_delete(self, storage: Storage) -> None:
        keys = ["chunks/A", "chunks/B", "manifests/M", "repo", "snapshots/S1"]
        for k in keys:
            storage.put(k, b"x")
        assert sorted(storage.list()) == keys
        assert sorted(storage.list("chunks/")) == ["chunks/A", "chunks/B"]
        assert sorted(storage.list("snap")) == ["snapshots/S1"]
        assert list(storage.list("nothing/")) == []
        storage.delete_many(["chunks/A", "repo"])
        assert sorted(storage.list()) == ["chunks/B", "manifests/M", "snapshots/S1"]

    @pytest.mark.parametrize("key", HOSTILE_KEYS)
    def test_hostile_keys_are_refused(self, storage: Storage, key: str) -> None:
        for call in (
            lambda: storage.put(key, b"x"),
            lambda: storage.put_if_absent(key, b"x"),
            lambda: storage.put_if_match(key, b"x", None),
            lambda: storage.get(key),
            lambda: storage.delete(key),
        ):
            with pytest.raises(InvalidInputError):
                call()

    def test_pickle_round_trip(self, storage: Storage) -> None:
        storage.put("k", b"v")
        clone = pickle.loads(pickle.dumps(storage))
        assert clone.get("k") == b"v"
        assert repr(clone) == repr(storage) or type(clone) is type(storage)

    async def test_async_twins(self, storage: Storage) -> None:
        await storage.put_async("a", b"0123456789")
        assert await storage.get_async("a") == b"0123456789"
        assert await storage.get_range_async("a", 2, 5) == b"234"
