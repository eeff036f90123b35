"""A commit on S3 whose network fails at any one of its requests, before or after moto.

The S3 storage (through s3fs, and through obstore where it is installed) talks to moto
through :class:`tests._s3.FaultProxy`. At the ``n``-th request of a commit the network
goes down: that request never reaches moto, or reaches it and loses its reply (the write
was applied, the client never hears so), and every request after it, retries and
resends included, is dropped unsent. So the failures are the real ones (the clients'
own disconnect errors, our retry loop, its final ``StorageError``), at every point of
the commit, counted on a clean run first.

After each failed commit the repository, reopened from S3 alone, is at the old or the
new snapshot with exactly that snapshot's data; once the network is back, the same
session's commit goes through.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import zarr

pytest.importorskip("moto")
pytest.importorskip("s3fs")
pytest.importorskip("boto3")

import icechunk_fast as ic
from icechunk_fast.storage import Storage
from tests import _faults, _s3

# fail fast: every retry meets the same dead network
POLICY = {"max_tries": 3, "initial_backoff": 0.01, "max_backoff": 0.02}
# requests every commit of the scenario sends (first key segment), besides reads
REQUIRED = {("PUT", "chunks"), ("PUT", "manifests"), ("PUT", "transactions"), ("PUT", "snapshots")}
PUBLISH = ("PUT", "repo")  # the compare-and-swap of the repo info, always the last

CLIENTS = {"s3fs": _s3.storage}
if _s3.OBSTORE:
    CLIENTS["obstore"] = _s3.obstore_storage


@pytest.fixture(scope="module")
def proxy() -> Iterator[_s3.FaultProxy]:
    with _s3.FaultProxy(_s3.endpoint()) as p:
        yield p


@pytest.fixture(params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _through(proxy: _s3.FaultProxy, client: str) -> Storage:
    return CLIENTS[client](url=proxy.url, **POLICY)


def _direct(storage: Storage) -> Storage:
    """The same bucket and prefix, not through the proxy: a fresh s3fs client."""
    return _s3.storage(storage.prefix)  # type: ignore[attr-defined]


def _kinds(
    rows: list[tuple[str, str, bool, str | None, str]], prefix: str
) -> list[tuple[str, str]]:
    """(method, first key segment) of logged requests under ``prefix``."""
    marker = f"/{_s3.BUCKET}/{prefix}/"
    return [(m, path.split(marker, 1)[1].split("/")[0]) for m, path, *_ in rows if marker in path]


def _count_commit_requests(proxy: _s3.FaultProxy, client: str) -> int:
    storage = _through(proxy, client)
    _faults.create_first(storage)
    session = _faults.stage_second(storage)
    before = len(proxy.log)
    proxy.heal()  # resets the request counter
    session.commit("second")
    kinds = _kinds(proxy.log[before:], storage.prefix)  # type: ignore[attr-defined]
    assert len(kinds) == proxy.seen and set(kinds) >= REQUIRED and kinds[-1] == PUBLISH, kinds
    return proxy.seen


@pytest.mark.parametrize("reply_lost", [False, True], ids=["lost-before-moto", "reply-lost"])
def test_commit_failing_at_every_request(
    proxy: _s3.FaultProxy, client: str, reply_lost: bool
) -> None:
    total = _count_commit_requests(proxy, client)
    storage = _through(proxy, client)
    direct = _direct(storage)  # each check opens a new Repository on it: no caches
    first = _faults.create_first(storage)
    landed_at = []
    for n in range(1, total + 1):
        session = _faults.stage_second(storage)
        proxy.outage_at(n, reply_lost=reply_lost)
        try:
            with pytest.raises(ic.StorageError) as info:
                session.commit("second")
            assert isinstance(info.value, OSError)
            assert proxy.seen > n, f"request {n}: the failed request was not retried"
        finally:
            proxy.heal()

        tip = _faults.check_old_or_new(direct, first)
        if tip is not None:
            landed_at.append(n)  # it landed and nobody heard
        retried = session.commit("second")  # lands, or reports the one that did
        assert _faults.check_old_or_new(direct, first) == retried, f"request {n}"
        assert tip in (None, retried), f"request {n}: a second commit on top of the first"
        ic.Repository.open(direct).reset_branch("main", first)  # the next round starts over
    # only the swap of the repo info publishes, and only when moto got it
    assert landed_at == ([total] if reply_lost else [])


def test_pack_upload_failing_during_writes_is_stored_by_the_commit(
    proxy: _s3.FaultProxy, client: str
) -> None:
    storage = _through(proxy, client)
    first = _faults.create_first(storage)
    session = ic.Repository.open(storage, _faults.CONFIG).writable_session("main")
    a = zarr.open_array(session.store, path="a")
    proxy.outage_at(1)
    try:
        # four chunk writes fill a pack; its upload, in the fourth write, fails
        with pytest.raises(ic.StorageError):
            for i in range(1, 5):
                a[i * _faults.CHUNK : (i + 1) * _faults.CHUNK] = -1.0
    finally:
        proxy.heal()
    snap = session.commit("packed chunks")  # stores the pack before publishing
    repo = ic.Repository.open(_direct(storage), _faults.CONFIG)
    assert [s.id for s in repo.ancestry(branch="main")][:2] == [snap, first]
    values = zarr.open_array(repo.readonly_session(branch="main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(values, _faults.A_SECOND)


def test_retry_after_an_unacknowledged_commit(proxy: _s3.FaultProxy) -> None:
    total = _count_commit_requests(proxy, "s3fs")
    storage = _through(proxy, "s3fs")
    first = _faults.create_first(storage)
    session = _faults.stage_second(storage)
    proxy.outage_at(total, reply_lost=True)  # the repo swap lands; its reply is lost
    try:
        with pytest.raises(ic.StorageError):
            session.commit("second")
    finally:
        proxy.heal()
    landed = _faults.check_old_or_new(_direct(storage), first)
    assert landed is not None
    with pytest.raises(ic.SessionStateError, match="may have landed"):
        session.store._session.delete("a/c/0")  # no new changes before the retry
    assert session.commit("second") == landed
    assert _faults.check_old_or_new(_direct(storage), first) == landed
