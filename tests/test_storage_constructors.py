"""The storage constructors' contract: an argument is used, or it is refused.

A constructor that swallowed an unknown keyword (``**kwargs``) would silently ignore,
say, Icechunk's ``get_credentials=`` or ``service_account_file=`` and go on with other
credentials. Here: every such argument raises ``TypeError`` naming it (and, for names
users bring from Icechunk, s3fs or adlfs, saying what to pass instead), and the
credentials that are accepted are the ones the requests carry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import icechunk_fast as ic
from icechunk_fast.storage import (
    AzureStorage,
    FsspecStorage,
    GcsStorage,
    ObstoreS3Storage,
    S3Storage,
)
from tests import _azure, _s3

S3_BASE: dict[str, Any] = {"bucket": "bkt", "prefix": "p", "anonymous": True}
GCS_BASE: dict[str, Any] = {"bucket": "bkt", "prefix": "p", "anonymous": True}
AZURE_BASE: dict[str, Any] = {"account": "acct", "container": "c", "prefix": "p"}

S3_FACTORIES: dict[str, Callable[..., Any]] = {
    "s3_storage": ic.s3_storage,
    "obstore_s3_storage": ic.obstore_s3_storage,
}


def _refused(make: Callable[..., Any], name: str, value: object, **base: Any) -> str:
    """The message of the TypeError that ``make(**base, name=value)`` raises."""
    with pytest.raises(TypeError) as info:
        make(**base, **{name: value})
    message = str(info.value)
    assert repr(name) in message, message
    return message


# -- unused arguments are refused --------------------------------------------------------
@pytest.mark.parametrize("factory", sorted(S3_FACTORIES))
@pytest.mark.parametrize(
    ("name", "value", "instead"),
    [
        ("get_credentials", lambda: None, "access_key_id"),
        ("scatter_initial_credentials", True, "from_env"),
        ("expires_after", "2030-01-01", "from_env"),
        ("requester_pays", True, "not supported"),
        ("network_stream_timeout_seconds", 30, "read_timeout"),
        ("key", "AKIA", "access_key_id"),
        ("secret", "s", "secret_access_key"),
        ("read_only", True, "read-only sessions"),
        ("max_retries", 3, "help("),  # a typo of max_tries: no hint, but named
    ],
)
def test_s3_constructors_refuse_unused_arguments(
    factory: str, name: str, value: object, instead: str
) -> None:
    message = _refused(S3_FACTORIES[factory], name, value, **S3_BASE)
    assert message.startswith(f"{factory}()") and instead in message


def test_every_unused_argument_is_named() -> None:
    with pytest.raises(TypeError) as info:
        ic.s3_storage(**S3_BASE, requester_pays=True, get_credentials=lambda: None)
    assert "'requester_pays'" in str(info.value) and "'get_credentials'" in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "instead"),
    [
        ("service_account_file", "/path/key.json", "token="),
        ("service_account_key", "{}", "token="),
        ("application_credentials", "/path/creds.json", "token="),
        ("bearer_token", "ya29.x", "token="),
        ("from_env", True, "token="),
        ("get_credentials", lambda: None, "token="),
        ("config", {}, "project="),
        ("read_only", True, "read-only sessions"),
    ],
)
def test_gcs_storage_refuses_unused_arguments(name: str, value: object, instead: str) -> None:
    assert instead in _refused(ic.gcs_storage, name, value, **GCS_BASE)


@pytest.mark.parametrize(
    ("name", "value", "instead"),
    [
        ("access_key", "k", "account_key="),
        ("bearer_token", "t", "sas_token"),
        ("credential", object(), "connection_string"),
        ("from_env", True, "leave it out"),
        ("config", {}, "connection_string="),
    ],
)
def test_azure_storage_refuses_unused_arguments(name: str, value: object, instead: str) -> None:
    assert instead in _refused(ic.azure_storage, name, value, **AZURE_BASE)


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (S3Storage, S3_BASE),
        (ObstoreS3Storage, S3_BASE),
        (GcsStorage, GCS_BASE),
        (AzureStorage, AZURE_BASE),
    ],
)
def test_storage_classes_refuse_unknown_arguments(cls: type, base: dict[str, Any]) -> None:
    _refused(cls, "requester_pays", True, **base)


def test_fsspec_storage_refuses_arguments_it_would_not_use(tmp_path: Path) -> None:
    import fsspec

    url = f"memory://{uuid.uuid4().hex}"
    assert "in the URL" in _refused(ic.fsspec_storage, "root", "sub", url_or_fs=url)
    local = fsspec.filesystem("file")
    message = _refused(ic.fsspec_storage, "auto_mkdir", True, url_or_fs=local, root=str(tmp_path))
    assert "configure the instance" in message
    s3_url = f"s3://{_s3.BUCKET}/p"
    assert "s3_storage" in _refused(ic.fsspec_storage, "requester_pays", True, url_or_fs=s3_url)
    # connect and read timeouts are the filesystem's own options, not ours
    assert "attempt_timeout" in _refused(FsspecStorage, "read_timeout", 5, target=url)
    _refused(FsspecStorage, "root", "sub", target=url)
    _refused(FsspecStorage, "storage_options", {"auto_mkdir": True}, target=local)


def test_http_storage_refuses_arguments_it_would_not_use() -> None:
    base = {"base_url": "http://127.0.0.1:1/repo"}
    assert "attempt_timeout" in _refused(ic.http_storage, "connect_timeout", 5, **base)
    assert "read-only" in _refused(ic.http_storage, "read_only", False, **base)
    assert "read-only" in _refused(
        ic.http_storage, "unsafe_allow_unconditional_writes", True, **base
    )
    _refused(ic.http_storage, "headers", {}, **base)  # goes in storage_options


def test_local_and_memory_storages_take_no_options(tmp_path: Path) -> None:
    _refused(ic.local_filesystem_storage, "read_only", True, path=tmp_path)
    _refused(ic.in_memory_storage, "read_only", True)


def test_refused_before_anything_is_installed_or_checked() -> None:
    # the TypeError wins over the other argument checks: it is the first thing to fix
    with pytest.raises(TypeError, match="requester_pays"):
        ic.s3_storage(bucket="a/b", prefix="p", requester_pays=True)


# -- accepted credentials are used ---------------------------------------------------------
@pytest.fixture(scope="module")
def s3_endpoint() -> str:
    if not _s3.AVAILABLE:
        pytest.skip("moto, s3fs or boto3 is not installed")
    return _s3.endpoint()


def _s3_through(factory: str, url: str, **credentials: Any) -> Any:
    if factory == "obstore_s3_storage" and not _s3.OBSTORE:
        pytest.skip("obstore is not installed")
    return S3_FACTORIES[factory](
        bucket=_s3.BUCKET,
        prefix=_s3.fresh_prefix(),
        region=_s3.REGION,
        endpoint_url=url,
        allow_http=True,
        force_path_style=True,
        **credentials,
    )


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> str:
    """Other credentials in the environment, to tell them from the ones passed."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return "AKIAFROMTHEENVIRONMENT"


@pytest.mark.parametrize("factory", sorted(S3_FACTORIES))
def test_explicit_s3_credentials_sign_every_request(
    factory: str, s3_endpoint: str, aws_environment: str
) -> None:
    with _s3.FaultProxy(s3_endpoint) as proxy:
        storage = _s3_through(
            factory,
            proxy.url,
            access_key_id="AKIAPASSEDEXPLICITLY",
            secret_access_key="passed-secret",
            session_token="passed-session-token",
        )
        storage.put("k", b"v")
        assert storage.get("k") == b"v" and storage.put_if_absent("c", b"1")
        assert len(proxy.request_headers) >= 3
        for headers in proxy.request_headers:
            assert "Credential=AKIAPASSEDEXPLICITLY/" in headers["authorization"]
            assert headers["x-amz-security-token"] == "passed-session-token"


@pytest.mark.parametrize("factory", sorted(S3_FACTORIES))
def test_environment_s3_credentials_when_none_are_passed(
    factory: str, s3_endpoint: str, aws_environment: str
) -> None:
    with _s3.FaultProxy(s3_endpoint) as proxy:
        storage = _s3_through(factory, proxy.url, from_env=True)
        storage.put("k", b"v")
        assert proxy.request_headers
        for headers in proxy.request_headers:
            assert f"Credential={aws_environment}/" in headers["authorization"]


@pytest.mark.parametrize("factory", sorted(S3_FACTORIES))
def test_anonymous_s3_requests_are_unsigned(
    factory: str, s3_endpoint: str, aws_environment: str
) -> None:
    with _s3.FaultProxy(s3_endpoint) as proxy:
        storage = _s3_through(factory, proxy.url, anonymous=True)
        assert not storage.exists("k")
        assert proxy.request_headers
        assert not any("authorization" in headers for headers in proxy.request_headers)


def test_azure_account_key_is_checked_by_the_server() -> None:
    if _azure.MISSING:
        pytest.skip(_azure.MISSING)
    good = _azure.storage()
    good.put("k", b"v")
    wrong_key = _azure.connection_string(_azure.endpoint()).replace(
        _azure.ACCOUNT_KEY, "d3Jvbmcga2V5" * 7 + "AA=="
    )
    wrong = ic.azure_storage(
        account=_azure.ACCOUNT,
        container=_azure.CONTAINER,
        prefix=good.prefix,
        connection_string=wrong_key,
        max_tries=1,
    )
    with pytest.raises(ic.StorageError, match=r"403|Authoriz"):
        wrong.get("k")
