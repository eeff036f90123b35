"""S3 through obstore (Python bindings of Rust's ``object_store``), with S3's conditional writes.

The same storage as :class:`~icechunk_fast.storage.S3Storage` (the shared core is
:class:`._object_store.ObjectStoreStorage`: retries, request limit, timeouts, the
write-id check that recognises a lost reply), with obstore's client instead of s3fs's
aiobotocore one. On moto it needs 3-5 times less CPU per request, which is what bounds
the request rate of a small machine (``docs/performance.md``).

Create-if-absent is obstore's ``mode="create"`` (``If-None-Match: *``), compare-and-swap
``mode={"e_tag": ...}`` (``If-Match``); the version token is the ETag, and the write id
goes into the user metadata as ``x-amz-meta-icechunk-write-id``, exactly as with s3fs,
so both clients can work on one repository. obstore's own retries are off: one policy,
ours, applies. Its errors carry no structured status, so they are read from the message
(``Server returned non-2xx status code: 503 ...``) into :class:`_ObstoreHttpError`, which
the request policy classifies like any other error reply.

obstore runs its requests on a Rust runtime of its own, which does not survive
``fork``: requests in a forked child would hang, so they raise :class:`StorageError`
instead. Worker processes must use the ``spawn`` or ``forkserver`` start method (dask's
default).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any

from ..errors import StorageError
from ._object_store import ObjectHead, ObjectStoreStorage
from ._requests import POLICY_ARGUMENTS
from ._s3_args import S3_ARGUMENT_HINTS, S3_CONFIG_FIELDS, check_s3_arguments
from ._utils import import_optional, reject_unknown_arguments

__all__ = ["ObstoreS3Storage", "obstore_s3_storage"]

_STATUS = re.compile(r"status code: (\d{3})")
_SINGLE_PUT_MAX = 64 << 20
_PART = 16 << 20  # multipart part size above that
# the process that started obstore's runtime (at its first request): a forked child
# inherits the runtime's state but not its threads
_runtime_pid: int | None = None
_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")


class _ObstoreHttpError(OSError):
    """An error reply, with the ``status_code`` and ``error_code`` the request policy
    classifies errors by."""

    def __init__(self, status_code: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_code = error_code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status_code, self.error_code, str(self)))


def _classified(exc: Exception) -> Exception:
    """An obstore error as one the request policy understands (or itself)."""
    from obstore import exceptions as oe  # why: obstore is optional (the [obstore] extra)

    text = str(exc).split("\n\nDebug source:", 1)[0]  # the rest is a Rust debug dump
    if isinstance(exc, FileNotFoundError | oe.NotFoundError):
        return FileNotFoundError(text)
    if isinstance(exc, oe.AlreadyExistsError | oe.PreconditionError):
        return _ObstoreHttpError(412, "PreconditionFailed", text)
    if isinstance(exc, oe.PermissionDeniedError | oe.UnauthenticatedError):
        return PermissionError(text)
    status = _STATUS.search(text)
    if status:
        code = _CODE.search(text)
        return _ObstoreHttpError(int(status.group(1)), code.group(1) if code else "", text)
    if "kind: Timeout" in str(exc):
        return TimeoutError(text)
    if "HTTP error:" in text:  # no reply at all: refused, reset, closed
        return ConnectionError(text)
    return exc


class ObstoreS3Storage(ObjectStoreStorage):
    """Objects under ``s3://bucket/prefix`` through obstore, with real conditional writes.

    Made by :func:`obstore_s3_storage`; see it for the arguments.
    """

    scheme = "s3"
    client_package = ("obstore", "obstore", "obstore_s3_storage")
    repr_fields = ("region", "endpoint_url")
    config_fields = S3_CONFIG_FIELDS

    # obstore's coroutines run on any loop: the inherited _install puts them on fsspec's,
    # the one the policy's semaphore and the sync methods already use

    def _make_fs(self) -> Any:
        global _runtime_pid
        import_optional(*self.client_package)
        from obstore.store import S3Store  # why: obstore is optional (the [obstore] extra)

        if _runtime_pid is not None and _runtime_pid != os.getpid():
            raise StorageError(
                f"{self!r}: obstore was used before this process was forked, and its "
                "runtime does not survive a fork; start worker processes with the "
                "'spawn' or 'forkserver' method, or use s3_storage (s3fs)",
                kind="storage-error",
            )
        _runtime_pid = os.getpid()

        c, p = self._config, self._policy
        endpoint = c.get("endpoint_url")
        kwargs: dict[str, Any] = {
            # path style for S3-compatible servers (and when asked), else virtual hosts
            "virtual_hosted_style_request": not (endpoint or c.get("force_path_style")),
        }
        if c.get("region"):
            kwargs["region"] = c["region"]
        if endpoint:
            kwargs["endpoint"] = endpoint
        if c.get("anonymous"):
            kwargs["skip_signature"] = True
        if c.get("access_key_id"):
            kwargs["access_key_id"] = c["access_key_id"]
            kwargs["secret_access_key"] = c.get("secret_access_key")
            if c.get("session_token"):
                kwargs["session_token"] = c["session_token"]
        return S3Store(
            self.bucket,
            client_options={
                "allow_http": bool(endpoint and endpoint.lower().startswith("http://")),
                "connect_timeout": timedelta(seconds=p.connect_timeout),
                "timeout": timedelta(seconds=p.read_timeout),  # per request
            },
            retry_config={"max_retries": 0, "retry_timeout": timedelta(0)},
            **kwargs,
        )

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``obstore.<name>(store, *args, **kwargs)``, its errors classified."""
        import obstore  # why: obstore is optional (the [obstore] extra)

        try:
            return await getattr(obstore, name)(self._current().fs, *args, **kwargs)
        except Exception as exc:
            classified = _classified(exc)
            if classified is exc:
                raise
            raise classified from exc

    # -- the requests ObjectStoreStorage is built on -------------------------------------
    async def _read_object(self, name: str, start: int, end: int | None) -> tuple[bytes, str]:
        if start == 0 and end is None:
            result = await self._call("get_async", name)
            data = await result.bytes_async()
            return bytes(data), str(result.meta.get("e_tag") or "")
        if end is None:
            result = await self._call("get_async", name, options={"range": {"offset": start}})
            return bytes(await result.bytes_async()), ""
        return bytes(await self._call("get_range_async", name, start=start, end=end)), ""

    async def _head_object(self, name: str) -> ObjectHead:
        # a GET with head=True is a HEAD request that, unlike obstore's head(), returns
        # the user metadata with the write id
        result = await self._call("get_async", name, options={"head": True})
        meta = result.meta
        write_id = result.attributes.get(self.write_id_key)
        return ObjectHead(int(meta["size"]), str(meta.get("e_tag") or ""), write_id)

    async def _list_page(self, prefix: str, token: str | None) -> tuple[list[str], str | None]:
        import obstore  # why: obstore is optional (the [obstore] extra)

        # object_store lists whole path segments: list the parent, the caller filters
        parent = prefix.rpartition("/")[0] or None
        names: list[str] = []
        try:
            async for batch in obstore.list(self._current().fs, parent, chunk_size=1000):
                names.extend(str(meta["path"]) for meta in batch)
        except Exception as exc:
            classified = _classified(exc)
            if classified is exc:
                raise
            raise classified from exc
        return names, None  # the stream follows S3's continuation tokens itself

    async def _put_object(self, name: str, body: bytes) -> None:
        # one PUT for a pack (32 MiB by default), as s3fs does up to 50 MiB; obstore's
        # own default would split anything above 5 MiB into a multipart upload
        multipart = len(body) > _SINGLE_PUT_MAX
        await self._call("put_async", name, body, use_multipart=multipart, chunk_size=_PART)

    async def _put_object_if(
        self, name: str, body: bytes, expected: str | None, write_id: str
    ) -> str:
        mode: Any = "create" if expected is None else {"e_tag": expected}
        result = await self._call(
            "put_async", name, body, mode=mode, attributes={self.write_id_key: write_id}
        )
        return str(result["e_tag"])

    async def _delete_object(self, name: str) -> None:
        await self._call("delete_async", name)

    async def _adelete_many(self, keys: list[str]) -> None:
        names = [self._object_name(k) for k in keys]
        self._check_writable()
        # one DeleteObjects request per 1,000 keys; absent keys are not errors
        await self._request("delete_many", keys[0], lambda: self._call("delete_async", names))


def obstore_s3_storage(
    *,
    bucket: str,
    prefix: str | None,
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_http: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    force_path_style: bool = False,
    **policy: Any,
) -> ObstoreS3Storage:
    """Storage in an S3 bucket (or an S3-compatible server) through obstore.

    Takes the arguments of :func:`~icechunk_fast.storage.s3_storage` and behaves the
    same (commits safe from any number of writers, through S3's conditional writes);
    only the client differs: obstore's Rust one, which costs several times less CPU per
    request than s3fs's. Credentials come from the arguments, or anonymously, or (the
    default) from the environment (``AWS_*`` variables; obstore reads no
    ``~/.aws/config`` profiles).

    Parameters
    ----------
    bucket, prefix
        Where the repository lives: ``s3://bucket/prefix``.
    region, endpoint_url
        The region, and an endpoint for S3-compatible servers (MinIO, Ceph, ...).
    allow_http
        Permit a plain ``http://`` endpoint.
    access_key_id, secret_access_key, session_token
        Static credentials.
    anonymous
        Unsigned requests (public buckets).
    from_env
        Take credentials from the environment (the default when none are given).
    force_path_style
        ``https://host/bucket/key`` addressing (always used with ``endpoint_url``).
    **policy
        The request policy: ``max_concurrent_requests`` (256), ``max_tries`` (8),
        ``initial_backoff`` (0.1 s), ``max_backoff`` (10 s), ``attempt_timeout``
        (None), ``connect_timeout`` (10 s), ``read_timeout`` (60 s, here the limit of
        one whole request).

    Raises
    ------
    TypeError
        An argument not listed here, such as Icechunk's ``get_credentials``,
        ``expires_after`` or ``requester_pays``: it would not be used. The message says
        what to pass instead.
    InvalidInputError
        Contradictory credential options, or an ``http://`` endpoint without
        ``allow_http=True``.
    ImportError
        obstore is not installed (``pip install 'icechunk_fast[obstore]'``).

    """
    reject_unknown_arguments("obstore_s3_storage", policy, POLICY_ARGUMENTS, S3_ARGUMENT_HINTS)
    check_s3_arguments(
        bucket,
        endpoint_url,
        allow_http,
        access_key_id,
        secret_access_key,
        session_token,
        anonymous,
        from_env,
    )
    return ObstoreS3Storage(
        bucket=bucket,
        prefix=prefix or "",
        region=region,
        endpoint_url=endpoint_url,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        anonymous=bool(anonymous),
        force_path_style=force_path_style,
        **policy,
    )
