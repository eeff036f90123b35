"""The storage contract (icechunk_fast.storage.testing.StorageTests) on every built-in
backend, and what is particular to the local one and to the wrappers."""

from __future__ import annotations

import os
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
from icechunk_fast.storage.testing import HOSTILE_KEYS, StorageTests
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


class TestBuiltinBackends(StorageTests):
    """The shipped conformance suite, on every built-in backend."""

    @pytest.fixture(params=sorted(BACKENDS))
    def storage(self, request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
        if MISSING.get(request.param):
            pytest.skip(MISSING[request.param])
        return BACKENDS[request.param](tmp_path)


def test_local_never_writes_outside_root(tmp_path: Path) -> None:
    storage = local_filesystem_storage(tmp_path / "root")
    for key in HOSTILE_KEYS:
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
