"""The shared core of storages on a cloud object store with native conditional writes.

S3, GCS and Azure Blob differ in how a request is spelled, not in what a storage does
with it. :class:`ObjectStoreStorage` keeps what they share: the bucket and prefix,
pickling as constructor arguments, key-to-object-name mapping, range reads, listings
filtered to our keys, and the conditional write with its lost-reply check. A backend
supplies a handful of request coroutines (``_read_object``, ``_head_object``,
``_list_page``, ``_put_object``, ``_put_object_if``, ``_delete_object``) and the client
it runs them on (``_make_fs``). Under it, :class:`._requests.AsyncRequestStorage` runs
each request: event loop, request limit, timeouts, retries and error translation.

Lost replies
    Every conditional write stores a fresh id in the object's metadata. When a write
    lands but its reply is lost, the client (aiohttp on a dropped keep-alive
    connection, or our retry loop) sends it again, and the resend fails its
    precondition against our own object. So after any precondition failure the
    object's metadata is read back: if it carries our id, the write is reported as
    done, with the version read back.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, StorageError
from ._base import ObjectNotFoundError, validate_key, validate_prefix
from ._requests import POLICY_ARGUMENTS, AsyncRequestStorage, is_precondition_failure
from ._utils import clean_prefix, import_optional, reject_unknown_arguments

__all__ = ["ObjectHead", "ObjectStoreStorage"]


@dataclass(frozen=True, slots=True)
class ObjectHead:
    """What a metadata request says about one object."""

    size: int
    version: str
    write_id: str | None


class ObjectStoreStorage(AsyncRequestStorage):
    """Objects under ``<bucket>/<prefix>`` of a cloud object store.

    Not made directly: see :class:`~icechunk_fast.storage.S3Storage`,
    :class:`~icechunk_fast.storage.GcsStorage` and
    :class:`~icechunk_fast.storage.AzureStorage`. Instances pickle as their
    constructor arguments (credentials included: that is what lets dask workers use
    them) and never show credentials in their repr.
    """

    supports_conditional_writes = True
    #: The constructor argument that names the bucket (``"container"`` on Azure).
    bucket_argument = "bucket"
    #: URL scheme, for the repr and equality.
    scheme = ""
    #: ``(module, extra, constructor)``: the client package, for the ImportError.
    client_package = ("", "", "")
    #: Metadata key of the write id of a conditional write.
    write_id_key = "icechunk-write-id"
    #: Config entries shown by the repr and part of equality (never secrets).
    repr_fields: tuple[str, ...] = ()
    #: The backend's constructor arguments besides the bucket, ``prefix``, ``read_only``
    #: and the request policy; anything else is refused, never silently ignored.
    config_fields: frozenset[str] = frozenset()

    def __init__(self, **kwargs: Any) -> None:
        fixed = {self.bucket_argument, "prefix", "read_only"}
        accepted = self.config_fields | POLICY_ARGUMENTS | fixed
        reject_unknown_arguments(type(self).__name__, kwargs, accepted)
        import_optional(*self.client_package)  # fail now, not at the first request
        policy = {k: v for k, v in kwargs.items() if k in POLICY_ARGUMENTS}
        config = {k: v for k, v in kwargs.items() if k not in POLICY_ARGUMENTS}
        prefix = clean_prefix(config.get("prefix") or "")
        super().__init__(read_only=bool(config.get("read_only", False)), **policy)
        self._config = config
        self.bucket: str = config[self.bucket_argument]
        self.prefix: str = prefix
        self._key_prefix = f"{self.prefix}/" if self.prefix else ""
        self.supports_conditional_writes = not self.read_only
        self._root = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), {**self._config, **self._policy_kwargs}))

    def make_read_only(self) -> None:
        """Refuse writes from now on; kept in the config, so it survives pickling."""
        self._config["read_only"] = True
        self.read_only = True
        self.supports_conditional_writes = False

    # -- identity --------------------------------------------------------------------------
    def _endpoint(self) -> str | None:
        return self._config.get("endpoint_url")

    def _location(self) -> str:
        endpoint = self._endpoint()
        return f"{self.scheme}://{self._root}" + (f" at {endpoint}" if endpoint else "")

    def __repr__(self) -> str:
        parts = [f"{self.bucket_argument}={self.bucket!r}", f"prefix={self.prefix!r}"]
        parts += [f"{n}={self._config[n]!r}" for n in self.repr_fields if self._config.get(n)]
        if self._config.get("anonymous"):
            parts.append("anonymous=True")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- what a backend supplies --------------------------------------------------------
    async def _read_object(self, name: str, start: int, end: int | None) -> tuple[bytes, str]:
        """Bytes ``[start, end)`` of object ``name`` and its version; 404 if absent."""
        raise NotImplementedError

    async def _head_object(self, name: str) -> ObjectHead:
        """Size, version and write id of object ``name``; 404 if absent."""
        raise NotImplementedError

    async def _list_page(self, prefix: str, token: str | None) -> tuple[list[str], str | None]:
        """One page of object names starting with ``prefix``, and the next page's token."""
        raise NotImplementedError

    async def _put_object(self, name: str, body: bytes) -> None:
        """Write object ``name`` unconditionally."""
        raise NotImplementedError

    async def _put_object_if(
        self, name: str, body: bytes, expected: str | None, write_id: str
    ) -> str:
        """Write ``name`` only if absent (``expected=None``) or at version ``expected``,
        with ``write_id`` in its metadata; return the new version. A failed
        precondition raises (an error :func:`._requests.is_precondition_failure` recognizes)."""
        raise NotImplementedError

    async def _delete_object(self, name: str) -> None:
        raise NotImplementedError

    def _can_match(self, expected: str) -> bool:
        """False for a token that can never be an object's version on this backend."""
        return True

    # -- the storage operations, in terms of the above -------------------------------------
    def _object_name(self, key: str) -> str:
        return self._key_prefix + validate_key(key)

    async def _read(self, key: str, start: int, end: int | None) -> tuple[bytes, str]:
        name = self._object_name(key)
        return await self._request("get", key, lambda: self._read_object(name, start, end))

    async def _aget(self, key: str) -> bytes:
        return (await self._read(key, 0, None))[0]

    async def _aget_with_version(self, key: str) -> tuple[bytes, str]:
        data, version = await self._read(key, 0, None)
        if not version:
            raise StorageError(f"{self!r} sent no version for {key!r}", kind="storage-error")
        return data, version

    async def _aread_range(self, key: str, start: int, end: int | None) -> bytes:
        return (await self._read(key, start, end))[0]

    async def _head(self, key: str) -> ObjectHead | None:
        name = self._object_name(key)
        try:
            return await self._request("head", key, lambda: self._head_object(name))
        except ObjectNotFoundError:
            return None

    async def _asize(self, key: str) -> int:
        head = await self._head(key)
        if head is None:
            raise ObjectNotFoundError(f"object {key!r} not found in {self!r}")
        return head.size

    async def _alist(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        full_prefix = self._key_prefix + prefix
        keys: list[str] = []
        token: str | None = None
        while True:
            page, token = await self._request(
                "list", prefix, functools.partial(self._list_page, full_prefix, token)
            )
            for name in page:
                if not name.startswith(full_prefix):
                    continue
                try:
                    keys.append(validate_key(name[len(self._key_prefix) :]))
                except InvalidInputError:
                    continue  # not written by us
            if not token:
                return keys

    async def _aput(self, key: str, data: bytes) -> None:
        name = self._object_name(key)
        self._check_writable()
        body = bytes(data)
        await self._request("put", key, lambda: self._put_object(name, body))

    async def _aput_if_match(self, key: str, data: bytes, expected: str | None) -> str | None:
        """Conditional write; see the module docs for how a lost reply is recognized."""
        name = self._object_name(key)
        self._check_writable()
        if expected is not None and not self._can_match(expected):
            return None
        write_id = uuid.uuid4().hex
        body = bytes(data)
        try:
            return await self._request(
                "conditional put",
                key,
                lambda: self._put_object_if(name, body, expected, write_id),
            )
        except ObjectNotFoundError:
            if expected is None:
                raise
            # a match condition on a missing object: S3 answers 404 rather than 412
        except Exception as exc:
            if not is_precondition_failure(exc):
                raise
        # Failed against another writer's object, or against our own (our first write
        # landed, its reply was lost, and the resend found it).
        head = await self._head(key)
        if head is not None and head.write_id == write_id:
            return head.version
        return None

    async def _adelete(self, key: str) -> None:
        name = self._object_name(key)
        self._check_writable()
        with contextlib.suppress(ObjectNotFoundError):  # a missing object is not an error
            await self._request("delete", key, lambda: self._delete_object(name))


def _rebuild(cls: type[ObjectStoreStorage], kwargs: dict[str, Any]) -> ObjectStoreStorage:
    return cls(**kwargs)
