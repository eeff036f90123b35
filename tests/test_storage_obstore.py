"""The obstore S3 client against moto on loopback, with faults injected by a proxy.

The storage contract runs on it in ``tests/test_storage.py`` (backend ``s3-obstore``)
and commits failing at every request in ``tests/test_s3_faults.py``; here: what is
particular to this client (its errors, read from messages), lost replies, retries,
and a repository shared with the s3fs client.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import zarr

pytest.importorskip("moto")
pytest.importorskip("boto3")
pytest.importorskip("s3fs")
pytest.importorskip("obstore")

import icechunk_fast as ic
from icechunk_fast.storage import ObstoreS3Storage
from icechunk_fast.storage._obstore import _classified
from icechunk_fast.storage._requests import (
    is_invalid_range,
    is_precondition_failure,
    is_transient,
)
from tests import _s3


@pytest.fixture(scope="module")
def s3_endpoint() -> str:
    return _s3.endpoint()


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[_s3.FaultProxy]:
    with _s3.FaultProxy(s3_endpoint) as p:
        yield p


def test_errors_are_classified_from_their_messages() -> None:
    from obstore import exceptions as oe

    def generic(middle: str) -> Exception:
        return oe.GenericError(
            f"Generic S3 error: Error performing GET http://h/b/k in 1ms - {middle}"
            "\n\nDebug source:\nGeneric { ... kind: Request ... }"
        )

    slow = _classified(
        generic(
            "Server returned non-2xx status code: 503 Service Unavailable: "
            "<Error><Code>SlowDown</Code></Error>"
        )
    )
    assert (slow.status_code, slow.error_code) == (503, "SlowDown")  # type: ignore[attr-defined]
    assert is_transient(slow) and "Debug source" not in str(slow)
    short = _classified(generic("Server returned non-2xx status code: 416 Range Not Satisfiable"))
    assert is_invalid_range(short) and not is_transient(short)
    denied = _classified(generic("Server returned non-2xx status code: 403 Forbidden"))
    assert not is_transient(denied)
    assert is_transient(_classified(generic("HTTP error: error sending request")))
    assert is_precondition_failure(_classified(oe.PreconditionError("412")))
    assert is_precondition_failure(_classified(oe.AlreadyExistsError("exists")))
    assert isinstance(_classified(oe.NotFoundError("gone")), FileNotFoundError)
    assert pickle.loads(pickle.dumps(slow)).status_code == 503  # type: ignore[attr-defined]


def test_construction_repr_pickling(s3_endpoint: str) -> None:
    storage = ic.obstore_s3_storage(
        bucket=_s3.BUCKET,
        prefix="some/prefix",
        region=_s3.REGION,
        endpoint_url=s3_endpoint,
        allow_http=True,
        access_key_id="AKIA-visible-id",
        secret_access_key="s3cr3t-never-shown",
    )
    assert isinstance(storage, ObstoreS3Storage) and storage.supports_conditional_writes
    assert "s3cr3t" not in repr(storage) and "AKIA" not in repr(storage)
    assert not storage.exists("repo")  # the client is live; it must not be pickled
    clone = pickle.loads(pickle.dumps(storage))
    assert clone == storage and repr(clone) == repr(storage)
    with pytest.raises(ic.InvalidInputError, match="allow_http"):
        ic.obstore_s3_storage(bucket="b", prefix="p", endpoint_url=s3_endpoint, anonymous=True)
    with pytest.raises(ic.InvalidInputError):
        ic.obstore_s3_storage(bucket="b", prefix="p", access_key_id="only-the-id")


def test_missing_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)
    with pytest.raises(ImportError, match=r"icechunk_fast\[obstore\]"):
        ic.obstore_s3_storage(bucket="bkt", prefix="p", anonymous=True)


def test_lost_replies_of_conditional_writes(proxy: _s3.FaultProxy) -> None:
    storage = _s3.obstore_storage(url=proxy.url)
    proxy.drop_after_forward(1)
    assert storage.put_if_absent("refs/x", b"mine")  # landed; its reply was lost
    [dropped] = proxy.outcomes("dropped reply")
    assert sum(1 for row in proxy.log if row[3] == dropped[3]) >= 2, "no resend"
    assert not storage.put_if_absent("refs/x", b"again")
    _, version = storage.get_with_version("refs/x")
    proxy.drop_after_forward(1)
    new = storage.put_if_match("refs/x", b"two", version)
    assert new is not None and storage.get_with_version("refs/x") == (b"two", new)
    assert storage.put_if_match("refs/x", b"stale", version) is None  # a real conflict


def test_throttling_is_retried_and_retries_are_bounded(proxy: _s3.FaultProxy) -> None:
    storage = _s3.obstore_storage(
        url=proxy.url, max_tries=3, initial_backoff=0.01, max_backoff=0.02
    )
    storage.put("k", b"v")
    proxy.fail_next("GET", 503, "SlowDown", 2)
    assert storage.get("k") == b"v"
    proxy.fail_next("PUT", 500, "InternalError", 1)
    assert storage.put_if_absent("repo", b"v0")
    proxy.fail_next("GET", 503, "SlowDown", 3)
    with pytest.raises(ic.StorageError, match="after 3 attempts"):
        storage.get("k")
    proxy.fail_next("GET", 403, "AccessDenied", 1)  # not transient: one attempt
    before = len(proxy.outcomes("injected 403"))
    with pytest.raises(ic.StorageError):
        storage.get("k")
    assert len(proxy.outcomes("injected 403")) == before + 1


def test_one_repository_two_clients(s3_endpoint: str) -> None:
    """Both clients write the same objects and the same write ids: they can share."""
    through_s3fs = _s3.storage()
    through_obstore = _s3.obstore_storage(through_s3fs.prefix)
    repo = ic.Repository.create(through_obstore)
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name="a", shape=(8, 256), chunks=(1, 256), dtype="f8", fill_value=0.0
    )
    values = np.random.default_rng(0).random((8, 256))
    arr[:] = values
    first = session.commit("by obstore")
    other = ic.Repository.open(through_s3fs)
    session = other.writable_session("main")
    zarr.open_array(session.store, path="a")[0] = -1.0
    second = session.commit("by s3fs")
    back = ic.Repository.open(_s3.obstore_storage(through_s3fs.prefix))
    assert [s.id for s in back.ancestry(branch="main")][:2] == [second, first]
    got = zarr.open_array(back.readonly_session("main").store, path="a", mode="r")[:]
    values[0] = -1.0
    np.testing.assert_array_equal(got, values)
    assert sorted(through_obstore.list("snapshots/")) == sorted(through_s3fs.list("snapshots/"))


def test_a_forked_child_gets_an_error_not_a_hang(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from icechunk_fast.storage import _obstore

    _s3.obstore_storage().exists("k")  # the runtime is running in this process
    monkeypatch.setattr(_obstore, "_runtime_pid", -1)  # as seen from a forked child
    with pytest.raises(ic.StorageError, match="spawn"):
        _s3.obstore_storage().exists("k")
