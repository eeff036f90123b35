"""GCS and Azure storages against emulators on loopback: fake-gcs-server and Azurite.

The storage contract itself runs on both in ``tests/test_storage.py`` (its ``gcs`` and
``azure`` backends). Here: that each emulator really enforces the preconditions (racing
raw writes, exactly one wins: a server that ignored them would let every writer "win"
and every other test here pass falsely), repositories with zarr, racing writers, lost
replies and retries through the fault proxy of ``tests/_s3.py``, pickling, constructors.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import numpy as np
import pytest
import zarr

import icechunk_fast as ic
from icechunk_fast.storage import AzureStorage, GcsStorage, ObjectNotFoundError
from tests import _azure, _gcs, _racing, _s3
from tests._racing import make_array, read_values

CLOUDS: dict[str, ModuleType] = {"gcs": _gcs, "azure": _azure}
RACERS = 8
ROUNDS = 5
WRITERS = 6
ATTEMPTS = 8


@pytest.fixture(params=sorted(CLOUDS), scope="module")
def cloud(request: pytest.FixtureRequest) -> ModuleType:
    """The test helper module of one emulator (``tests/_gcs.py`` or ``tests/_azure.py``),
    its server running."""
    module = CLOUDS[request.param]
    if module.MISSING:
        pytest.skip(module.MISSING)
    module.endpoint()
    return module


@pytest.fixture
def proxy(cloud: ModuleType) -> Iterator[_s3.FaultProxy]:
    with _s3.FaultProxy(cloud.endpoint()) as p:
        yield p


def _at_once(n: int, call: object) -> list[object]:
    """``call(i)`` from ``n`` threads released together."""
    assert callable(call)
    start = threading.Barrier(n)

    def run(i: int) -> object:
        start.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


# -- the emulators enforce what the storages rely on ------------------------------------------
def test_racing_creates_and_swaps_have_one_winner(cloud: ModuleType) -> None:
    # separate clients (connections), so the requests really race at the server
    prefix = cloud.fresh_prefix()
    clients = [cloud.storage(prefix) for _ in range(RACERS)]
    for r in range(ROUNDS):
        key = f"refs/r{r}"
        created = _at_once(RACERS, lambda i, k=key: clients[i].put_if_absent(k, b"%d" % i))
        assert created.count(True) == 1, f"round {r}: {created.count(True)} creates won"
        winner = created.index(True)
        data, version = clients[0].get_with_version(key)
        assert data == b"%d" % winner

        swapped = _at_once(
            RACERS, lambda i, k=key, v=version: clients[i].put_if_match(k, b"s%d" % i, v)
        )
        won = [i for i, new in enumerate(swapped) if new is not None]
        assert len(won) == 1, f"round {r}: {len(won)} swaps won"
        assert clients[0].get_with_version(key) == (b"s%d" % won[0], swapped[won[0]])


def test_version_tokens_are_the_native_ones(cloud: ModuleType) -> None:
    storage = cloud.storage()
    version = storage.put_if_match("repo", b"v0", None)
    assert version is not None and storage.get_with_version("repo") == (b"v0", version)
    if cloud is _gcs:
        assert version.isdigit()  # the object's generation
        assert storage.put_if_match("repo", b"x", "0") is None  # 0 would mean "absent"
    else:
        assert version.startswith('"0x')  # the blob's ETag
    assert storage.put_if_match("repo", b"x", "garbage") is None
    assert storage.get("repo") == b"v0"


# -- repositories ------------------------------------------------------------------------------
def test_zarr_round_trip_and_time_travel(cloud: ModuleType) -> None:
    storage = cloud.storage()
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    group = zarr.open_group(session.store, mode="w")
    # chunks of 2 KiB: stored as objects (packs), not inlined in the manifest
    arr = group.create_array("a", shape=(64, 8), chunks=(32, 8), dtype="f8", fill_value=0.0)
    first = np.random.default_rng(0).random((64, 8))
    arr[...] = first
    snap1 = session.commit("first")
    repo.create_tag("v1", snap1)

    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a")[0, :] = -1.0
    snap2 = session.commit("second")

    again = ic.Repository.open(pickle.loads(pickle.dumps(storage)))  # a new client
    assert [s.id for s in again.ancestry(branch="main")][:2] == [snap2, snap1]
    latest = np.asarray(zarr.open_array(again.readonly_session("main").store, path="a")[...])
    assert (latest[0] == -1).all() and (latest[1:] == first[1:]).all()
    tagged = again.readonly_session(tag="v1").store
    assert (np.asarray(zarr.open_array(tagged, path="a")[...]) == first).all()
    assert list(storage.list("chunks/")), "no chunk objects written"


def test_racing_writers_on_one_branch(cloud: ModuleType) -> None:
    assert _racing.check_racing_writers(cloud.storage(), WRITERS, ATTEMPTS) >= 1


def test_prefixes_are_isolated(cloud: ModuleType) -> None:
    a, b = cloud.storage(), cloud.storage()
    a.put("chunks/X", b"a")
    b.put("chunks/X", b"b")
    assert a.get("chunks/X") == b"a" and list(a.list()) == ["chunks/X"]
    nested = cloud.storage(a.prefix + "/chunks")
    assert list(nested.list()) == ["X"]


# -- lost replies, retries ---------------------------------------------------------------------
def test_lost_replies_of_conditional_writes(cloud: ModuleType, proxy: _s3.FaultProxy) -> None:
    storage = cloud.storage(url=proxy.url)
    proxy.drop_after_forward(1)
    assert storage.put_if_absent("refs/x", b"mine")  # landed; its reply was lost
    [dropped] = proxy.outcomes("dropped reply")
    assert dropped[3] is not None, "the proxy saw no write id"
    resent = [row for row in proxy.log if row[2] and row[3] == dropped[3]]
    assert len(resent) >= 2, "the conditional write was not sent again"
    assert not storage.put_if_absent("refs/x", b"again")
    data, version = storage.get_with_version("refs/x")
    proxy.drop_before_forward(1)  # never reached the server: a plain retry
    new = storage.put_if_match("refs/x", b"two", version)
    assert new is not None and storage.get_with_version("refs/x") == (b"two", new)
    assert storage.put_if_match("refs/x", b"stale", version) is None  # a real conflict
    assert data == b"mine" and storage.get("refs/x") == b"two"


def test_commit_whose_reply_is_lost_reports_success_once(
    cloud: ModuleType, proxy: _s3.FaultProxy
) -> None:
    storage = cloud.storage(url=proxy.url)
    repo = ic.Repository.create(storage)
    session = repo.writable_session("main")
    make_array(session, 2)
    base = session.commit("array")

    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a")[1] = 42
    proxy.drop_after_forward(1)
    snap = session.commit("through a lossy network")
    assert len(proxy.outcomes("dropped reply")) == 1

    direct = ic.Repository.open(cloud.storage(storage.prefix))
    ancestry = [s.id for s in direct.ancestry(branch="main")]
    assert ancestry[:2] == [snap, base] and len(ancestry) == 3
    assert list(read_values(direct.readonly_session("main").store)) == [-1, 42]


def test_throttling_is_retried_and_other_errors_are_not(
    cloud: ModuleType, proxy: _s3.FaultProxy
) -> None:
    storage = cloud.storage(url=proxy.url, initial_backoff=0.01, max_backoff=0.05, max_tries=3)
    storage.put("k", b"v")
    proxy.fail_next("GET", 503, "ServerBusy", 1)
    proxy.fail_next("GET", 429, "TooManyRequests", 1)
    assert storage.get("k") == b"v"
    assert len(proxy.outcomes("injected 503")) == 1 == len(proxy.outcomes("injected 429"))
    # three failures for three attempts: had the client retried by itself, it would
    # have used them up within one of ours and then succeeded
    proxy.fail_next("GET", 503, "ServerBusy", 3)
    with pytest.raises(ic.StorageError, match="after 3 attempts"):
        storage.get("k")
    assert len(proxy.outcomes("injected 503")) == 4
    proxy.fail_next("GET", 403, "AuthorizationFailure", 1)
    with pytest.raises(ic.StorageError):
        storage.get("k")
    assert len(proxy.outcomes("injected 403")) == 1


# -- construction, repr, pickling --------------------------------------------------------------
def test_repr_hides_credentials_and_pickles_without_a_client(cloud: ModuleType) -> None:
    storage = cloud.storage("some/prefix")
    assert isinstance(storage, GcsStorage | AzureStorage) and storage.supports_conditional_writes
    text = repr(storage)
    assert "prefix='some/prefix'" in text
    assert _azure.ACCOUNT_KEY[:12] not in text
    storage.exists("repo")  # make the client live, then pickle
    blob = pickle.dumps(storage)
    assert b"aiohttp" not in blob and len(blob) < 2000
    clone = pickle.loads(blob)
    assert clone == storage and repr(clone) == text and not clone.exists("repo")
    with pytest.raises(ObjectNotFoundError):
        clone.get("repo")


def test_constructor_checks() -> None:
    with pytest.raises(ic.InvalidInputError):
        ic.gcs_storage(bucket="a/b", prefix="p")
    with pytest.raises(ic.InvalidInputError):
        ic.gcs_storage(bucket="bkt", prefix="../escape", anonymous=True)
    with pytest.raises(ic.InvalidInputError):
        ic.gcs_storage(bucket="bkt", prefix="p", anonymous=True, token="google_default")
    with pytest.raises(ic.InvalidInputError):
        ic.azure_storage(account="acct", container="", prefix="p")
    with pytest.raises(ic.InvalidInputError):
        ic.azure_storage(account="acct", container="c", prefix="p", anonymous=True, sas_token="s")


def test_filesystem_instances_without_conditions_refuse_commits(cloud: ModuleType) -> None:
    # the same service through fsspec's generic interface: no verified precondition there
    native = cloud.storage()
    generic = ic.fsspec_storage(native.fs, root=native.root)
    assert not generic.supports_conditional_writes
    ic.Repository.create(native)
    with pytest.raises(ic.SessionStateError):
        ic.Repository.open(generic).writable_session("main")
    unsafe = ic.fsspec_storage(native.fs, root=native.root, unsafe_allow_unconditional_writes=True)
    assert unsafe.supports_conditional_writes
