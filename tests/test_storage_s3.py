"""S3 storage against a real S3 server on loopback (moto), with faults injected by a proxy.

The storage contract itself runs on S3 in ``tests/test_storage.py`` (its ``s3`` backend);
here: repositories on S3, racing writers, lost responses, throttling and retries,
limits, pickling across processes, and the other fsspec constructors.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import multiprocessing as mp
import pickle
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

pytest.importorskip("moto")
pytest.importorskip("s3fs")
pytest.importorskip("boto3")

import icechunk_fast as ic
from icechunk_fast.storage import ObjectNotFoundError, S3Storage
from tests import _racing, _s3
from tests._racing import make_array, read_values

WRITERS = 8
ATTEMPTS = 20


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    return _s3.endpoint()


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[_s3.FaultProxy]:
    with _s3.FaultProxy(s3_endpoint) as p:
        yield p


# -- construction, repr, pickling ---------------------------------------------------------
def test_repr_hides_credentials_and_pickles_without_a_client(s3_endpoint: str) -> None:
    storage = ic.s3_storage(
        bucket=_s3.BUCKET,
        prefix="some/prefix",
        region=_s3.REGION,
        endpoint_url=s3_endpoint,
        allow_http=True,
        access_key_id="AKIA-visible-id",
        secret_access_key="s3cr3t-never-shown",
        session_token="t0ken-never-shown",
        force_path_style=True,
    )
    assert isinstance(storage, S3Storage) and storage.supports_conditional_writes
    text = repr(storage)
    assert "prefix='some/prefix'" in text and _s3.BUCKET in text
    assert "s3cr3t" not in text and "t0ken" not in text and "AKIA" not in text
    storage.exists("repo")  # make the client live, then pickle
    blob = pickle.dumps(storage)
    assert b"aiobotocore" not in blob and b"aiohttp" not in blob and len(blob) < 2000
    clone = pickle.loads(blob)
    assert clone == storage and repr(clone) == text and not clone.exists("repo")


def test_constructor_checks(s3_endpoint: str) -> None:
    base = {"bucket": _s3.BUCKET, "prefix": "p", "endpoint_url": s3_endpoint}
    with pytest.raises(ic.InvalidInputError, match="allow_http"):
        ic.s3_storage(**base, **_s3.CREDENTIALS)
    with pytest.raises(ic.InvalidInputError):
        ic.s3_storage(**base, allow_http=True, anonymous=True, **_s3.CREDENTIALS)
    with pytest.raises(ic.InvalidInputError):
        ic.s3_storage(**base, allow_http=True, access_key_id="only-the-id")
    with pytest.raises(ic.InvalidInputError):
        ic.s3_storage(**base, allow_http=True, from_env=False)
    with pytest.raises(ic.InvalidInputError):
        ic.s3_storage(**{**base, "prefix": "../escape"}, allow_http=True, **_s3.CREDENTIALS)
    with pytest.raises(ic.InvalidInputError):
        ic.s3_storage(bucket="a/b", prefix="p")


def test_missing_clients_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` fail
    with pytest.raises(ImportError, match=r"icechunk_fast\[s3\]"):
        ic.s3_storage(bucket="bkt", prefix="p", anonymous=True)
    for module, extra, make in (
        ("gcsfs", "gcs", lambda: ic.gcs_storage(bucket="bkt", prefix="p")),
        ("adlfs", "azure", lambda: ic.azure_storage(account="a", container="c", prefix="p")),
    ):
        monkeypatch.setitem(sys.modules, module, None)
        with pytest.raises(ImportError, match=rf"icechunk_fast\[{extra}\]"):
            make()


def test_prefixes_are_isolated(s3_endpoint: str) -> None:
    a, b = _s3.storage(), _s3.storage()
    a.put("chunks/X", b"a")
    b.put("chunks/X", b"b")
    assert a.get("chunks/X") == b"a" and list(a.list()) == ["chunks/X"]
    nested = _s3.storage(a.prefix + "/chunks")  # a prefix inside another repo's prefix
    assert list(nested.list()) == ["X"]


def test_fsspec_storage_s3_url_has_conditional_writes(s3_endpoint: str) -> None:
    storage = ic.fsspec_storage(
        f"s3://{_s3.BUCKET}/{_s3.fresh_prefix()}",
        endpoint_url=s3_endpoint,
        key="testing",
        secret="testing",
        region=_s3.REGION,
        force_path_style=True,
        allow_http=True,
    )
    assert isinstance(storage, S3Storage) and storage.supports_conditional_writes
    assert storage.put_if_absent("k", b"1") and not storage.put_if_absent("k", b"2")
    reader = ic.fsspec_storage(
        f"s3://{_s3.BUCKET}/{storage.prefix}",
        endpoint_url=s3_endpoint,
        anon=False,
        key="testing",
        secret="testing",
        force_path_style=True,
        allow_http=True,
        read_only=True,
    )
    for clone in (reader, pickle.loads(pickle.dumps(reader))):
        assert clone.get("k") == b"1" and not clone.supports_conditional_writes
        with pytest.raises(ic.ReadOnlyError):
            clone.put("k", b"x")


# -- generic fsspec filesystems ------------------------------------------------------------
def test_plain_fsspec_refuses_commits_unless_opted_in() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    safe = ic.fsspec_storage(url)
    assert not safe.supports_conditional_writes
    repo = ic.Repository.create(safe)
    with pytest.raises(ic.SessionStateError):
        repo.writable_session("main")
    unsafe = ic.fsspec_storage(url, unsafe_allow_unconditional_writes=True)
    assert unsafe.supports_conditional_writes
    session = ic.Repository.open(unsafe).writable_session("main")
    make_array(session, 3)
    snap = session.commit("on memory")
    assert ic.Repository.open(safe).lookup_branch("main") == snap


def test_fsspec_storage_over_a_filesystem_instance(tmp_path: Path) -> None:
    import fsspec

    local = fsspec.filesystem("file")
    storage = ic.fsspec_storage(
        local, root=str(tmp_path / "r"), unsafe_allow_unconditional_writes=True
    )
    storage.put("a/b", b"x")
    assert (tmp_path / "r" / "a" / "b").read_bytes() == b"x"
    assert list(storage.list()) == ["a/b"]
    clone = pickle.loads(pickle.dumps(storage))
    assert clone.get("a/b") == b"x"
    with pytest.raises(ic.InvalidInputError):
        storage.put("../x", b"no")


# -- repositories on S3 ----------------------------------------------------------------------
def test_repository_round_trip_and_time_travel(s3_endpoint: str) -> None:
    storage = _s3.storage()
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    group = zarr.open_group(session.store, mode="w")
    # chunks of 2 KiB: stored as objects, not inlined in the manifest
    arr = group.create_array("a", shape=(64, 8), chunks=(32, 8), dtype="f8", fill_value=0.0)
    first = np.random.default_rng(0).random((64, 8))  # incompressible
    arr[...] = first
    snap1 = session.commit("first")
    repo.create_tag("v1", snap1)

    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a")[0, :] = -1.0
    snap2 = session.commit("second")

    # a new client: reopen through a pickled storage
    again = ic.Repository.open(pickle.loads(pickle.dumps(storage)))
    assert [s.id for s in again.ancestry(branch="main")][:2] == [snap2, snap1]
    latest = np.asarray(zarr.open_array(again.readonly_session("main").store, path="a")[...])
    assert (latest[0] == -1).all() and (latest[1:] == first[1:]).all()
    tagged = again.readonly_session(tag="v1").store
    assert (np.asarray(zarr.open_array(tagged, path="a")[...]) == first).all()
    listed = sorted(storage.list("chunks/"))
    raw = _s3.client().list_objects_v2(Bucket=_s3.BUCKET, Prefix=f"{storage.prefix}/chunks/")
    assert listed and listed == sorted(o["Key"][len(storage.prefix) + 1 :] for o in raw["Contents"])


def test_racing_writers_on_one_branch(s3_endpoint: str) -> None:
    _racing.check_racing_writers(_s3.storage(), WRITERS, ATTEMPTS)


# -- lost responses ----------------------------------------------------------------------------
@pytest.mark.parametrize("keep_alive", [True, False], ids=["client-resends", "we-resend"])
def test_commit_whose_reply_is_lost_reports_success_once(
    s3_endpoint: str, keep_alive: bool
) -> None:
    # keep-alive: aiohttp resends the PUT on the dropped reused connection by itself;
    # without: the dropped connection surfaces as an error and our retry resends.
    with _s3.FaultProxy(s3_endpoint, keep_alive=keep_alive) as proxy:
        storage = _s3.storage(url=proxy.url)
        repo = ic.Repository.create(storage)
        session = repo.writable_session("main")
        make_array(session, 2)
        base = session.commit("array")

        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a")[1] = 42
        proxy.drop_after_forward(1)
        snap = session.commit("through a lossy network")

        [dropped] = proxy.outcomes("dropped reply")
        resent = [row for row in proxy.log if row[2] and row[3] == dropped[3]]
        assert len(resent) >= 2, "the conditional PUT was not sent again"
    direct = ic.Repository.open(_s3.storage(storage.prefix))
    ancestry = [s.id for s in direct.ancestry(branch="main")]
    assert ancestry[:2] == [snap, base] and len(ancestry) == 3
    assert list(read_values(direct.readonly_session("main").store)) == [-1, 42]


def test_lost_replies_of_conditional_writes(proxy: _s3.FaultProxy) -> None:
    storage = _s3.storage(url=proxy.url)
    proxy.drop_after_forward(1)
    assert storage.put_if_absent("refs/x", b"mine")  # landed; its reply was lost
    assert not storage.put_if_absent("refs/x", b"again")
    data, version = storage.get_with_version("refs/x")
    proxy.drop_before_forward(1)  # never reached the server: a plain retry
    new = storage.put_if_match("refs/x", b"two", version)
    assert new is not None and storage.get_with_version("refs/x") == (b"two", new)
    assert storage.put_if_match("refs/x", b"stale", version) is None  # a real conflict
    assert data == b"mine" and storage.get("refs/x") == b"two"


# -- throttling, retries, limits ---------------------------------------------------------------
def test_throttling_and_server_errors_are_retried(proxy: _s3.FaultProxy) -> None:
    storage = _s3.storage(url=proxy.url, initial_backoff=0.01, max_backoff=0.05)
    storage.put("k", b"v")
    proxy.fail_next("GET", 503, "SlowDown", 2)
    proxy.fail_next("GET", 429, "TooManyRequests", 1)
    assert storage.get("k") == b"v"
    assert len(proxy.outcomes("injected 503")) == 2 and len(proxy.outcomes("injected 429")) == 1
    proxy.fail_next("PUT", 500, "InternalError", 2)
    assert storage.put_if_match("repo", b"v0", None) is not None
    proxy.fail_next("HEAD", 503, "SlowDown", 1)
    assert storage.exists("repo")


def test_retries_are_bounded_and_errors_are_clear(proxy: _s3.FaultProxy) -> None:
    storage = _s3.storage(url=proxy.url, max_tries=3, initial_backoff=0.01, max_backoff=0.02)
    storage.put("k", b"v")
    proxy.fail_next("GET", 503, "SlowDown", 5)
    with pytest.raises(ic.StorageError, match="after 3 attempts") as info:
        storage.get("k")
    assert isinstance(info.value, OSError) and len(proxy.outcomes("injected 503")) == 3
    proxy.fail_next("GET", 403, "AccessDenied", 1)  # not transient: no retry
    with pytest.raises(ic.StorageError):
        storage.get("k")
    assert len(proxy.outcomes("injected 403")) == 1


def test_attempt_timeout_retries_a_stalled_request(proxy: _s3.FaultProxy) -> None:
    storage = _s3.storage(url=proxy.url, attempt_timeout=0.5, initial_backoff=0.01)
    storage.put("k", b"v")
    proxy.stall_next("GET", 3.0)
    started = time.perf_counter()
    assert storage.get("k") == b"v"
    assert time.perf_counter() - started < 2.5


async def test_async_twins_respect_the_request_limit(proxy: _s3.FaultProxy) -> None:
    storage = _s3.storage(url=proxy.url, max_concurrent_requests=2)
    await asyncio.gather(*(storage.put_async(f"c/{i}", bytes([i]) * 100) for i in range(16)))
    got = await asyncio.gather(*(storage.get_range_async(f"c/{i}", 1, 3) for i in range(16)))
    assert got == [bytes([i]) * 2 for i in range(16)]
    assert await storage.get_async("c/3") == b"\x03" * 100
    assert proxy.max_in_flight <= 2


# -- across processes ----------------------------------------------------------------------------
def _read_in_child(blob: bytes, key: str) -> bytes:
    return pickle.loads(blob).get(key)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_pickled_storage_works_in_a_spawned_process(s3_endpoint: str) -> None:
    storage = _s3.storage()
    storage.put("k", b"from the parent")
    with mp.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_read_in_child, (pickle.dumps(storage), "k")) == b"from the parent"


# -- HTTP, read-only -----------------------------------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_http_storage_reads_a_served_repository(tmp_path: Path) -> None:
    repo = ic.Repository.create(ic.local_filesystem_storage(tmp_path / "repo"))
    session = repo.writable_session("main")
    make_array(session, 4)
    zarr.open_array(session.store, path="a")[:] = [1, 2, 3, 4]
    snap = session.commit("served")

    handler = functools.partial(_QuietHandler, directory=str(tmp_path / "repo"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        storage = ic.http_storage(f"http://127.0.0.1:{server.server_address[1]}/")
        assert storage.read_only and not storage.supports_conditional_writes
        remote = ic.Repository.open(storage)
        assert remote.lookup_branch("main") == snap
        assert list(read_values(remote.readonly_session("main").store)) == [1, 2, 3, 4]
        assert storage.get_range("repo", 2, 5) == storage.get("repo")[2:5]  # no Range support
        with pytest.raises(ic.ReadOnlyError, match="read-only"):
            storage.put("x", b"y")
        with pytest.raises(ic.SessionStateError):
            remote.writable_session("main")
        with pytest.raises(ObjectNotFoundError):
            storage.get("nope")
        assert pickle.loads(pickle.dumps(storage)).get("repo") == storage.get("repo")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
