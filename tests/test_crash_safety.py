"""A commit that dies part way leaves the repository at its old or its new snapshot."""

from __future__ import annotations

import pytest
import zarr

import icechunk_fast as ic
from icechunk_fast.storage import InMemoryStorage
from tests import _faults


class FailingStorage(InMemoryStorage):
    """Fails the ``fail_at``-th write (counting from 1) after it is armed."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_at = 0
        self.writes = 0

    def _tick(self) -> None:
        if self.fail_at:
            self.writes += 1
            if self.writes == self.fail_at:
                raise ic.StorageError("injected failure")

    def put(self, key: str, data: bytes) -> None:
        self._tick()
        super().put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._tick()
        return super().put_if_absent(key, data)

    def put_if_match(self, key: str, data: bytes, expected_version: str | None) -> str | None:
        self._tick()
        return super().put_if_match(key, data, expected_version)


def test_every_failure_point_leaves_old_or_new() -> None:
    writes_per_commit = None
    for fail_at in range(1, 40):
        storage = FailingStorage()
        first = _faults.create_first(storage)
        storage.fail_at = fail_at  # counts the writes of open + write + commit
        try:
            _faults.stage_second(storage).commit("second")
        except ic.StorageError:
            pass
        else:
            writes_per_commit = writes_per_commit or storage.writes
        storage.fail_at = 0
        _faults.check_old_or_new(storage, first)
        if writes_per_commit is not None and fail_at > writes_per_commit:
            break
    assert writes_per_commit is not None, "the commit never got through"


def test_uncommitted_work_is_invisible() -> None:
    storage = ic.in_memory_storage()
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 7
    del session  # the process "dies" before committing
    reopened = ic.Repository.open(storage)
    with pytest.raises(FileNotFoundError):
        zarr.open_array(reopened.readonly_session(branch="main").store, path="a", mode="r")


def test_lost_reply_to_our_own_swap_counts_as_success() -> None:
    """The swap lands but the writer hears "precondition failed" (reply lost, resent)."""

    class LostReply(InMemoryStorage):
        lose_next = False

        def put_if_match(self, key: str, data: bytes, expected_version: str | None) -> str | None:
            version = super().put_if_match(key, data, expected_version)
            if self.lose_next and key == "repo" and version is not None:
                self.lose_next = False
                return None  # it happened, but we are told it did not
            return version

    storage = LostReply()
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(2,), dtype="i1", fill_value=0)
    storage.lose_next = True
    snap = session.commit("once")
    history = [s.id for s in repo.ancestry(branch="main")]
    assert history[0] == snap and history.count(snap) == 1 and len(history) == 2
