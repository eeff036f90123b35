"""Storages from a URL: :func:`fsspec_storage` and :func:`http_storage`.

The dispatch by URL scheme lives here, above the backends, so that no backend imports
another: an ``s3://`` URL becomes an :class:`~icechunk_fast.storage.S3Storage` (with
conditional writes), any other URL or filesystem instance an
:class:`~icechunk_fast.storage.FsspecStorage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInputError
from ._fsspec import FSSPEC_POLICY_ARGUMENTS, FSSPEC_POLICY_HINTS, FsspecStorage
from ._s3 import S3Storage, s3_storage
from ._utils import import_optional, reject_unknown_arguments

__all__ = ["fsspec_storage", "http_storage"]

#: The s3fs-style options :func:`fsspec_storage` takes with an ``s3://`` URL, and the
#: :func:`s3_storage` argument each becomes.
_S3_URL_OPTIONS = {
    "endpoint_url": "endpoint_url",
    "key": "access_key_id",
    "secret": "secret_access_key",
    "token": "session_token",
    "anon": "anonymous",
    "region": "region",
    "force_path_style": "force_path_style",
    "allow_http": "allow_http",
}


def fsspec_storage(
    url_or_fs: str | Any,
    *,
    root: str = "",
    read_only: bool = False,
    unsafe_allow_unconditional_writes: bool = False,
    max_concurrent_requests: int = 256,
    max_tries: int = 8,
    initial_backoff: float = 0.1,
    max_backoff: float = 10.0,
    attempt_timeout: float | None = None,
    **options: Any,
) -> FsspecStorage | S3Storage:
    """Storage on any fsspec filesystem: a URL with its ``**options``, or an instance.

    ``s3://`` URLs become an :class:`S3Storage` (with conditional writes) and take the
    s3fs-style options ``endpoint_url``, ``key``, ``secret``, ``token``, ``anon`` plus
    ``region``, ``force_path_style`` and ``allow_http``. Any other filesystem, including
    ``gs://`` and ``abfs://`` URLs and any s3fs, gcsfs or adlfs instance passed in, has
    ``supports_conditional_writes = False`` (readable, but the repository refuses
    writable sessions) unless ``unsafe_allow_unconditional_writes=True``, which is safe
    only when one process alone ever writes to the repository. For GCS and Azure with
    conditional writes use :func:`gcs_storage` and :func:`azure_storage`.

    Raises
    ------
    TypeError
        An argument that would not be used: ``root`` with a URL (put the path in the
        URL), ``**options`` with a filesystem instance (configure the instance), or an
        option other than the ones above with an ``s3://`` URL.

    Examples
    --------
    >>> storage = fsspec_storage("memory://scratch", unsafe_allow_unconditional_writes=True)
    >>> storage.supports_conditional_writes
    True
    """
    policy: dict[str, Any] = {
        "max_concurrent_requests": max_concurrent_requests,
        "max_tries": max_tries,
        "initial_backoff": initial_backoff,
        "max_backoff": max_backoff,
        "attempt_timeout": attempt_timeout,
    }
    if isinstance(url_or_fs, str) and root:
        raise TypeError(
            "fsspec_storage() got 'root' with a URL; it goes with a filesystem instance: "
            "put the path in the URL"
        )
    if isinstance(url_or_fs, str) and url_or_fs.startswith(("s3://", "s3a://")):
        return _s3_from_url(url_or_fs, options, read_only, policy)
    if isinstance(url_or_fs, str):
        return FsspecStorage(
            url_or_fs,
            storage_options=options,
            read_only=read_only,
            unsafe_allow_unconditional_writes=unsafe_allow_unconditional_writes,
            **policy,
        )
    if options:
        names = ", ".join(repr(name) for name in options)
        raise TypeError(
            f"fsspec_storage() got options {names} with a filesystem instance; they go "
            "with a URL: configure the instance itself"
        )
    return FsspecStorage(
        url_or_fs,
        root,
        read_only=read_only,
        unsafe_allow_unconditional_writes=unsafe_allow_unconditional_writes,
        **policy,
    )


def _s3_from_url(
    url: str, options: dict[str, Any], read_only: bool, policy: dict[str, Any]
) -> S3Storage:
    """:func:`fsspec_storage` for an ``s3://`` URL: an :class:`S3Storage`."""
    unknown = sorted(set(options) - set(_S3_URL_OPTIONS))
    if unknown:
        raise TypeError(
            f"fsspec_storage({url!r}) got options {unknown} that an s3:// URL does not "
            f"use; it takes only {sorted(_S3_URL_OPTIONS)}. Use s3_storage(...), or pass "
            "an s3fs filesystem instance (which has no conditional writes)"
        )
    bucket, _, prefix = url.split("://", 1)[1].partition("/")
    kwargs = {_S3_URL_OPTIONS[k]: v for k, v in options.items()}
    storage = s3_storage(bucket=bucket, prefix=prefix, **kwargs, **policy)
    if read_only:
        storage.make_read_only()
    return storage


def http_storage(
    base_url: str, *, storage_options: Mapping[str, Any] | None = None, **policy: Any
) -> FsspecStorage:
    """Read-only storage of a repository served over HTTP(S) (any static file server).

    Every write raises :class:`ReadOnlyError`; ``supports_conditional_writes`` is False.
    Servers that ignore ``Range`` headers work too, at the cost of whole-object reads.

    Parameters
    ----------
    base_url
        The ``http://`` or ``https://`` URL of the repository's root.
    storage_options
        Options for fsspec's HTTP filesystem (``headers``, ``client_kwargs``, ...).
    **policy
        The request policy: ``max_concurrent_requests``, ``max_tries``,
        ``initial_backoff``, ``max_backoff``, ``attempt_timeout``.

    Raises
    ------
    TypeError
        Any other keyword argument (timeouts of the connection and of reads go in
        ``storage_options``, as aiohttp ``client_kwargs``).
    """
    hints = {
        **FSSPEC_POLICY_HINTS,
        "read_only": "an HTTP storage is always read-only",
        "unsafe_allow_unconditional_writes": "an HTTP storage is always read-only",
    }
    reject_unknown_arguments("http_storage", policy, FSSPEC_POLICY_ARGUMENTS, hints)
    if not isinstance(base_url, str) or not base_url.lower().startswith(("http://", "https://")):
        raise InvalidInputError(f"http_storage needs an http(s):// URL, got {base_url!r}")
    import_optional("aiohttp", "http", "http_storage")
    return FsspecStorage(
        base_url.rstrip("/"),
        storage_options=storage_options,
        read_only=True,
        read_only_reason="HTTP storage has no writes",
        **policy,
    )
