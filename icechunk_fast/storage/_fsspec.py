"""Storage on any fsspec filesystem, through the shared request machinery.

Requests run as coroutines on fsspec's IO loop under one request policy (see
:mod:`._requests`); filesystems without async support run on that loop through
:func:`asyncio.to_thread`.

Conditional writes
    S3, GCS and Azure have native atomic preconditions; their storages
    (:mod:`._s3`, :mod:`._gcs`, :mod:`._azure`, on the shared core in
    :mod:`._object_store`) use them, with a check that recognizes a write whose reply
    was lost. Any other filesystem (local, memory, or an s3fs/gcsfs/adlfs instance
    passed in) gets no verified atomic precondition, so its storage says
    ``supports_conditional_writes = False`` and the repository refuses writable sessions
    on it. ``unsafe_allow_unconditional_writes=True`` lifts that: the conditional
    operations then check and write in two steps, serialized only among the threads
    using this storage object. Use it only when a single process ever writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
from collections.abc import Mapping
from typing import Any

import fsspec.core

from ..errors import InvalidInputError
from ._base import ObjectNotFoundError, validate_key, validate_prefix
from ._requests import POLICY_ARGUMENTS, AsyncRequestStorage
from ._utils import content_version, reject_unknown_arguments

__all__ = ["FSSPEC_POLICY_ARGUMENTS", "FSSPEC_POLICY_HINTS", "FsspecStorage"]

#: The request policy an fsspec filesystem can be given: its connect and read timeouts
#: are the filesystem's own options (``storage_options``), not ours.
FSSPEC_POLICY_ARGUMENTS = POLICY_ARGUMENTS - {"connect_timeout", "read_timeout"}
_TIMEOUT_HINT = (
    "not passed to fsspec filesystems; give the filesystem's own timeout options "
    "(e.g. s3fs config_kwargs, aiohttp client_kwargs) or use attempt_timeout="
)
FSSPEC_POLICY_HINTS = {"connect_timeout": _TIMEOUT_HINT, "read_timeout": _TIMEOUT_HINT}


class FsspecStorage(AsyncRequestStorage):
    """Objects under ``root`` of an fsspec filesystem.

    Parameters
    ----------
    target
        An fsspec URL (``"memory://repo"``, ``"gs://bucket/prefix"``, chained URLs too)
        or a filesystem instance. Instances must be synchronous-mode ones (the default
        ``asynchronous=False``).
    root
        With a filesystem instance: the path under which keys live.
    storage_options
        With a URL: options for the filesystem (credentials, endpoints...).
    read_only
        Refuse every write with :class:`ReadOnlyError`.
    unsafe_allow_unconditional_writes
        Claim conditional-write support although the filesystem has no atomic
        precondition (see the module docs); only for a single writing process.
    read_only_reason
        Said in the :class:`ReadOnlyError` of a refused write.
    **policy
        The request policy: ``max_concurrent_requests`` (256, requests in flight),
        ``max_tries`` (8 attempts, including the first), ``initial_backoff`` and
        ``max_backoff`` (0.1 and 10 seconds), ``attempt_timeout`` (seconds per attempt,
        None: no limit). Connect and read timeouts are the filesystem's own options.

    Raises
    ------
    TypeError
        An argument that would not be used: ``root`` with a URL, ``storage_options``
        with a filesystem instance, or an unknown policy argument.
    """

    supports_conditional_writes = False
    is_remote = True  # the disk cache tier pays off; see _install for local protocols

    def __init__(
        self,
        target: str | Any,
        root: str = "",
        *,
        storage_options: Mapping[str, Any] | None = None,
        read_only: bool = False,
        unsafe_allow_unconditional_writes: bool = False,
        read_only_reason: str = "",
        **policy: Any,
    ) -> None:
        what = type(self).__name__
        reject_unknown_arguments(what, policy, FSSPEC_POLICY_ARGUMENTS, FSSPEC_POLICY_HINTS)
        if isinstance(target, str) and root:
            raise TypeError(f"{what}() got 'root' with a URL; put the path in the URL")
        if not isinstance(target, str) and storage_options:
            raise TypeError(
                f"{what}() got 'storage_options' with a filesystem instance; they go with "
                "a URL: configure the instance itself"
            )
        super().__init__(read_only=read_only, read_only_reason=read_only_reason, **policy)
        self._unsafe = bool(unsafe_allow_unconditional_writes)
        self.supports_conditional_writes = self._unsafe and not self.read_only
        self._storage_options = dict(storage_options or {})
        if isinstance(target, str):
            self._url: str | None = target
            self._given_fs: Any = None
            fs, path = self._fs_from_url(target, self._storage_options)
            self._root = path.rstrip("/")
            self._install(fs)
        else:
            if getattr(target, "asynchronous", False):
                raise InvalidInputError(
                    "pass a filesystem made with asynchronous=False (the default); "
                    "icechunk_fast runs it on fsspec's own IO loop"
                )
            self._url = None
            self._given_fs = target
            self._root = target._strip_protocol(root).rstrip("/") if root else ""
            self._install(target)

    @staticmethod
    def _fs_from_url(url: str, options: Mapping[str, Any]) -> tuple[Any, str]:
        try:
            fs, path = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            raise ImportError(
                f"cannot open {url!r}: {exc}. For cloud storage install the extra, e.g. "
                "pip install 'icechunk_fast[s3]', '[gcs]' or '[azure]'"
            ) from exc
        return fs, str(path)

    # -- per-process state -------------------------------------------------------------
    def _install(self, fs: Any) -> None:
        super()._install(fs)
        protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
        if set(protocols) & {"file", "local", "memory"}:
            self.is_remote = False  # a disk cache of local or in-memory files gains nothing

    def _make_fs(self) -> Any:
        """A new filesystem object for this process (after a fork or an unpickle)."""
        if self._url is not None:
            return self._fs_from_url(self._url, self._storage_options)[0]
        # fsspec filesystems pickle as their constructor arguments, so this makes a
        # fresh client bound to this process's IO loop.
        return pickle.loads(pickle.dumps(self._given_fs))

    # -- identity ----------------------------------------------------------------------
    def _location(self) -> str:
        if self._url is not None:
            return self._url
        protocol = getattr(self._given_fs, "protocol", "?")
        if isinstance(protocol, tuple | list):
            protocol = protocol[0]
        return f"{protocol}://{self._root.lstrip('/')}"

    def __repr__(self) -> str:
        flags = ""
        if self.read_only:
            flags += ", read_only=True"
        if self._unsafe:
            flags += ", unsafe_allow_unconditional_writes=True"
        return f"{type(self).__name__}({self._location()!r}{flags})"

    # -- filesystem calls (sync filesystems go through a worker thread) ----------------
    def _path(self, key: str) -> str:
        validate_key(key)
        return f"{self._root}/{key}" if self._root else key

    async def _fs_call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        fs = self._current().fs
        if getattr(fs, "async_impl", False):
            return await getattr(fs, f"_{name}")(*args, **kwargs)
        return await asyncio.to_thread(getattr(fs, name), *args, **kwargs)

    # -- coroutine cores ---------------------------------------------------------------
    async def _aget(self, key: str) -> bytes:
        path = self._path(key)
        return bytes(await self._request("get", key, lambda: self._fs_call("cat_file", path)))

    async def _aread_range(self, key: str, start: int, end: int | None) -> bytes:
        path = self._path(key)
        return bytes(
            await self._request(
                "get_range", key, lambda: self._fs_call("cat_file", path, start=start, end=end)
            )
        )

    async def _aget_with_version(self, key: str) -> tuple[bytes, str]:
        data = await self._aget(key)
        return data, content_version(data)

    async def _asize(self, key: str) -> int:
        path = self._path(key)
        info = await self._request("size", key, lambda: self._fs_call("info", path))
        if info.get("type", "file") != "file":
            raise ObjectNotFoundError(f"object {key!r} not found in {self!r}")
        if info.get("size") is None:  # e.g. an HTTP server that sends no Content-Length
            return len(await self._aget(key))
        return int(info["size"])

    async def _alist(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        head = prefix.rpartition("/")[0]
        top = f"{self._root}/{head}" if head else (self._root or "")
        found = await self._request("list", prefix, lambda: self._fs_call("find", top))
        base = self._current().fs._strip_protocol(self._root).rstrip("/") if self._root else ""
        keys = []
        for p in found:
            p = str(p)
            rel = p[len(base) + 1 :] if base else p.lstrip("/")
            if base and not p.startswith(base + "/"):
                continue
            if rel.startswith(prefix):
                try:
                    keys.append(validate_key(rel))
                except InvalidInputError:
                    continue  # not one of ours (temp or hidden files)
        return keys

    async def _aput(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self._check_writable()
        fs = self._current().fs
        if not getattr(fs, "async_impl", False):
            parent = path.rpartition("/")[0]
            if parent:
                await self._request("put", key, lambda: self._fs_call("makedirs", parent, True))
        await self._request("put", key, lambda: self._fs_call("pipe_file", path, bytes(data)))

    async def _aput_if_match(self, key: str, data: bytes, expected: str | None) -> str | None:
        # Best effort: check then write, atomic only among users of this storage object.
        self._path(key)
        self._check_writable()
        async with self._cas_lock():
            try:
                current: str | None = (await self._aget_with_version(key))[1]
            except ObjectNotFoundError:
                current = None
            if current != expected:
                return None
            await self._aput(key, data)
            return content_version(bytes(data))

    async def _adelete(self, key: str) -> None:
        path = self._path(key)
        self._check_writable()
        with contextlib.suppress(ObjectNotFoundError):
            await self._request("delete", key, lambda: self._fs_call("rm_file", path))
