"""Object storage through fsspec: the request machinery, and any fsspec filesystem.

How it runs
    Every request is a coroutine on one event loop per process: fsspec's own IO loop
    (``fsspec.asyn.get_loop()``), the loop async filesystems such as s3fs are bound to.
    Blocking methods submit to it with :func:`fsspec.asyn.sync`; the ``*_async`` twins
    hand the coroutine to it with :func:`asyncio.run_coroutine_threadsafe` and await the
    result from the caller's loop, so no event loop ever runs inside another. Filesystems
    without async support run on the same loop through :func:`asyncio.to_thread`.

Requests
    Each attempt holds a slot of a semaphore (``max_concurrent_requests``, 256 by
    default, per storage object) and may carry a timeout. Throttling (503 ``SlowDown``,
    429) and transient failures (connection reset, timeouts, 5xx) are retried with
    exponential backoff and jitter, at most ``max_tries`` attempts in all. The clients'
    own retry loops (botocore's, s3fs's) are turned off so that one policy applies.

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
import errno
import hashlib
import os
import random
import threading
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import IcechunkError, InvalidInputError, ReadOnlyError, StorageError
from ._base import ObjectNotFoundError, Storage, validate_key, validate_prefix

__all__ = ["FsspecStorage", "fsspec_storage", "http_storage"]

T = TypeVar("T")

_THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "TooManyRequests",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "ConditionalRequestConflict",  # S3: a concurrent conditional write is in flight
        "OperationAborted",
        "ServerBusy",  # Azure
        "OperationTimedOut",  # Azure
        "rateLimitExceeded",  # GCS
        "backendError",  # GCS
    }
)
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_ERRNOS = frozenset(
    {errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT, errno.EAGAIN}
)


@dataclass(frozen=True, slots=True)
class _RequestPolicy:
    max_concurrent_requests: int = 256
    max_tries: int = 8
    initial_backoff: float = 0.1
    max_backoff: float = 10.0
    attempt_timeout: float | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.max_concurrent_requests < 1:
            raise InvalidInputError("max_concurrent_requests must be at least 1")
        if self.max_tries < 1:
            raise InvalidInputError("max_tries must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise InvalidInputError("need 0 <= initial_backoff <= max_backoff")
        if self.attempt_timeout is not None and self.attempt_timeout <= 0:
            raise InvalidInputError("attempt_timeout must be positive or None")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): half fixed,
        half random ("equal jitter"), so that retrying writers spread out."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class _ProcessState:
    """What must never cross a pickle or a fork: the live filesystem and loop objects."""

    __slots__ = ("fs", "lock", "loop", "pid", "semaphore")

    def __init__(self, fs: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.pid = os.getpid()
        self.fs = fs
        self.loop = loop
        self.semaphore: asyncio.Semaphore | None = None  # made on the loop, when first used
        self.lock: asyncio.Lock | None = None


# -- error classification --------------------------------------------------------------
def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _response_error(exc: BaseException) -> tuple[str, int]:
    """(error code, HTTP status) of an error reply, else ('', 0).

    Understands botocore's ``ClientError`` (a ``response`` mapping) and errors with
    ``status_code`` and ``error_code`` attributes: azure-core's ``HttpResponseError``
    and the GCS storage's own.
    """
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error") or {}
        meta = response.get("ResponseMetadata") or {}
        return str(error.get("Code", "")), int(meta.get("HTTPStatusCode", 0) or 0)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        code = getattr(exc, "error_code", None)
        return str(getattr(code, "value", code) or ""), status  # azure: a str enum
    return "", 0


def _is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: throttling, 5xx, dropped connections, timeouts."""
    for e in _chain(exc):
        if isinstance(e, IcechunkError | FileNotFoundError | FileExistsError | PermissionError):
            return False
        code, status = _response_error(e)
        if code or status:
            return code in _THROTTLE_CODES or status in _TRANSIENT_STATUS
        http_status = getattr(e, "status", None)  # aiohttp.ClientResponseError
        if isinstance(http_status, int) and http_status in _TRANSIENT_STATUS:
            return True
        if isinstance(e, TimeoutError | ConnectionError):
            return True
        if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNOS:
            return True
        names = {cls.__name__ for cls in type(e).__mro__}
        if names & {
            "HTTPClientError",  # botocore: connection closed, timeouts, endpoint errors
            "ClientConnectionError",  # aiohttp: server disconnected, connection reset
            "ClientPayloadError",
            "FSTimeoutError",
            "IncompleteReadError",
            "ServiceRequestError",  # azure-core: the request did not get through
            "ServiceResponseError",  # azure-core: no (complete) reply
        }:
            return True
    return False


#: Error codes of a failed write precondition. Azure answers an ``If-None-Match: *``
#: upload onto an existing blob with 409 ``BlobAlreadyExists``, not 412.
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "ConditionNotMet", "BlobAlreadyExists"})


def _is_precondition_failure(exc: BaseException) -> bool:
    for e in _chain(exc):
        code, status = _response_error(e)
        if code in _PRECONDITION_CODES or status == 412:
            return True
    return False


def _is_invalid_range(exc: BaseException) -> bool:
    for e in _chain(exc):
        code, status = _response_error(e)
        if code == "InvalidRange" or status == 416:
            return True
    return False


def _import_optional(module: str, extra: str, what: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise ImportError(
            f"{what} needs the optional package {module!r}: "
            f"pip install 'icechunk_fast[{extra}]' (or pip install {module})"
        ) from exc


def _clean_prefix(prefix: str) -> str:
    """A user prefix as ``a/b`` (no leading, trailing or doubled slashes, no dot segments)."""
    if not isinstance(prefix, str):
        raise InvalidInputError(f"prefix must be a str, got {type(prefix).__name__}")
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts) or "\x00" in prefix:
        raise InvalidInputError(f"unsafe storage prefix {prefix!r}")
    return "/".join(parts)


def _version_of(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


async def _gather_or_cancel(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Results of ``coros`` run at once; on the first failure the rest are cancelled
    (no orphan requests keep running) and that failure is raised as it is."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# -- the generic storage ---------------------------------------------------------------
class FsspecStorage(Storage):
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
        None: no limit), ``connect_timeout`` and ``read_timeout`` (10 and 60 seconds,
        where the client takes them).
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
        self._policy = _RequestPolicy(**policy)
        self._policy_kwargs = dict(policy)
        self.read_only = bool(read_only)
        self._read_only_reason = read_only_reason
        self._unsafe = bool(unsafe_allow_unconditional_writes)
        self.supports_conditional_writes = self._unsafe and not self.read_only
        self._state_lock = threading.Lock()
        self._state: _ProcessState | None = None
        self._storage_options = dict(storage_options or {})
        if isinstance(target, str):
            self._url: str | None = target
            self._given_fs: Any = None
            fs, path = self._fs_from_url(target, self._storage_options)
            self._root = path.rstrip("/")
            self._install(fs)
        else:
            if storage_options:
                raise InvalidInputError("storage_options go with a URL, not a filesystem")
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
        import fsspec.core

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
        import fsspec.asyn

        loop = fs.loop if getattr(fs, "async_impl", False) else fsspec.asyn.get_loop()
        self._state = _ProcessState(fs, loop)
        protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
        if set(protocols) & {"file", "local", "memory"}:
            self.is_remote = False  # a disk cache of local or in-memory files gains nothing

    def _make_fs(self) -> Any:
        """A new filesystem object for this process (after a fork or an unpickle)."""
        if self._url is not None:
            return self._fs_from_url(self._url, self._storage_options)[0]
        import pickle

        # fsspec filesystems pickle as their constructor arguments, so this makes a
        # fresh client bound to this process's IO loop.
        return pickle.loads(pickle.dumps(self._given_fs))

    def _current(self) -> _ProcessState:
        state = self._state
        if state is not None and state.pid == os.getpid():
            return state
        if state is not None:  # forked: the parent's lock may have been held at the fork
            self._state_lock = threading.Lock()
        with self._state_lock:
            state = self._state
            if state is None or state.pid != os.getpid():
                self._install(self._make_fs())
                state = self._state
            assert state is not None
            return state

    @property
    def fs(self) -> Any:
        """The fsspec filesystem object (live; do not pickle it yourself)."""
        return self._current().fs

    @property
    def root(self) -> str:
        return self._root

    # -- pickling and identity ---------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_state"] = None
        state["_state_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._state_lock = threading.Lock()

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

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, FsspecStorage)
            and other._location() == self._location()
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._location()))

    # -- running coroutines ------------------------------------------------------------
    def _run(self, coro_fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        import fsspec.asyn

        loop = self._current().loop
        try:
            return fsspec.asyn.sync(loop, coro_fn, *args)
        except NotImplementedError as exc:  # called from a coroutine on fsspec's own loop
            raise StorageError(
                f"blocking call into {self!r} from fsspec's IO loop; use the *_async methods"
            ) from exc

    async def _arun(self, coro_fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        loop = self._current().loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return await coro_fn(*args)
        future = asyncio.run_coroutine_threadsafe(coro_fn(*args), loop)
        return await asyncio.wrap_future(future)

    def _limiter(self) -> asyncio.Semaphore:
        state = self._current()
        if state.semaphore is None:  # only ever touched on the loop's own thread
            state.semaphore = asyncio.Semaphore(self._policy.max_concurrent_requests)
        return state.semaphore

    def _cas_lock(self) -> asyncio.Lock:
        state = self._current()
        if state.lock is None:
            state.lock = asyncio.Lock()
        return state.lock

    async def _request(self, what: str, key: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """One logical request: limited, timed, retried on transient failures, and its
        final failure translated into our errors."""
        policy = self._policy
        tries = 0
        while True:
            tries += 1
            try:
                async with self._limiter():
                    if policy.attempt_timeout is None:
                        return await attempt()
                    return await asyncio.wait_for(attempt(), policy.attempt_timeout)
            except Exception as exc:
                if tries < policy.max_tries and _is_transient(exc):
                    await asyncio.sleep(policy.backoff(tries))
                    continue
                translated = self._translate(exc, what, key, tries)
                if translated is exc:
                    raise
                raise translated from exc

    def _translate(self, exc: BaseException, what: str, key: str, tries: int) -> BaseException:
        if isinstance(exc, IcechunkError):
            return exc
        if _is_precondition_failure(exc):
            return exc  # handled by the conditional writes
        if isinstance(exc, FileNotFoundError) or _response_error(exc)[1] == 404:
            return ObjectNotFoundError(f"object {key!r} not found in {self!r}")
        after = f" after {tries} attempts" if tries > 1 else ""
        return StorageError(
            f"{what} of {key!r} in {self!r} failed{after}: {type(exc).__name__}: {exc}",
            kind="storage-error",
        )

    def _check_writable(self) -> None:
        if self.read_only:
            reason = f" ({self._read_only_reason})" if self._read_only_reason else ""
            raise ReadOnlyError(
                f"{self!r} is read-only{reason}; writes are refused", kind="read-only-storage"
            )

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

    async def _aget_range(self, key: str, start: int, end: int | None) -> bytes:
        path = self._path(key)
        if start < 0 or (end is not None and end < 0):
            raise InvalidInputError(f"negative byte range {start}..{end}")
        if end is not None and end <= start:
            await self._asize(key)  # still a not-found error for a missing object
            return b""
        try:
            data = await self._request(
                "get_range", key, lambda: self._fs_call("cat_file", path, start=start, end=end)
            )
        except StorageError as exc:
            if exc.__cause__ is not None and _is_invalid_range(exc.__cause__):
                return b""  # the object exists but is shorter than ``start``
            raise
        data = bytes(data)
        if end is not None and len(data) > end - start:
            data = data[start:end]  # a server that ignored the Range header sent it all
        return data

    async def _aget_with_version(self, key: str) -> tuple[bytes, str]:
        data = await self._aget(key)
        return data, _version_of(data)

    async def _aget_ranges(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        """All ranged reads at once; each holds a slot of the semaphore while it runs."""
        return await _gather_or_cancel(
            [self._aget_range(key, start, end) for key, start, end in requests]
        )

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
            return _version_of(bytes(data))

    async def _adelete(self, key: str) -> None:
        path = self._path(key)
        self._check_writable()
        with contextlib.suppress(ObjectNotFoundError):
            await self._request("delete", key, lambda: self._fs_call("rm_file", path))

    async def _adelete_many(self, keys: list[str]) -> None:
        for key in keys:
            validate_key(key)
        self._check_writable()
        await asyncio.gather(*(self._adelete(k) for k in keys))

    # -- the Storage interface -----------------------------------------------------------
    def get(self, key: str) -> bytes:
        return self._run(self._aget, key)

    def get_range(self, key: str, start: int, end: int | None) -> bytes:
        return self._run(self._aget_range, key, start, end)

    def get_ranges(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        if len(requests) == 1:
            return [self.get_range(*requests[0])]
        return self._run(self._aget_ranges, requests)

    def get_with_version(self, key: str) -> tuple[bytes, str]:
        return self._run(self._aget_with_version, key)

    def size(self, key: str) -> int:
        return self._run(self._asize, key)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        return iter(self._run(self._alist, prefix))

    def put(self, key: str, data: bytes) -> None:
        self._run(self._aput, key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._run(self._aput_if_match, key, data, None) is not None

    def put_if_match(self, key: str, data: bytes, expected_version: str | None) -> str | None:
        return self._run(self._aput_if_match, key, data, expected_version)

    def delete(self, key: str) -> None:
        self._run(self._adelete, key)

    def delete_many(self, keys: Iterable[str]) -> None:
        batch = list(keys)
        if batch:
            self._run(self._adelete_many, batch)

    async def get_async(self, key: str) -> bytes:
        return await self._arun(self._aget, key)

    async def get_range_async(self, key: str, start: int, end: int | None) -> bytes:
        return await self._arun(self._aget_range, key, start, end)

    async def get_ranges_async(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        return await self._arun(self._aget_ranges, requests)

    async def put_async(self, key: str, data: bytes) -> None:
        await self._arun(self._aput, key, data)


# -- constructors ------------------------------------------------------------------------
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
) -> FsspecStorage:
    """Storage on any fsspec filesystem: a URL with its ``**options``, or an instance.

    ``s3://`` URLs become an :class:`S3Storage` (with conditional writes) and take the
    s3fs-style options ``endpoint_url``, ``key``, ``secret``, ``token``, ``anon`` plus
    ``region``, ``force_path_style`` and ``allow_http``. Any other filesystem, including
    ``gs://`` and ``abfs://`` URLs and any s3fs, gcsfs or adlfs instance passed in, has
    ``supports_conditional_writes = False`` (readable, but the repository refuses
    writable sessions) unless ``unsafe_allow_unconditional_writes=True``, which is safe
    only when one process alone ever writes to the repository. For GCS and Azure with
    conditional writes use :func:`gcs_storage` and :func:`azure_storage`.

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
    if isinstance(url_or_fs, str) and url_or_fs.startswith(("s3://", "s3a://")):
        from ._s3 import s3_from_url  # the S3 module builds on this one

        return s3_from_url(url_or_fs, options, read_only, policy)
    if isinstance(url_or_fs, str):
        return FsspecStorage(
            url_or_fs,
            storage_options=options,
            read_only=read_only,
            unsafe_allow_unconditional_writes=unsafe_allow_unconditional_writes,
            **policy,
        )
    if options:
        raise InvalidInputError(f"options {sorted(options)} go with a URL, not a filesystem")
    return FsspecStorage(
        url_or_fs,
        root,
        read_only=read_only,
        unsafe_allow_unconditional_writes=unsafe_allow_unconditional_writes,
        **policy,
    )


def http_storage(base_url: str, **policy: Any) -> FsspecStorage:
    """Read-only storage of a repository served over HTTP(S) (any static file server).

    Every write raises :class:`ReadOnlyError`; ``supports_conditional_writes`` is False.
    Servers that ignore ``Range`` headers work too, at the cost of whole-object reads.
    """
    if not isinstance(base_url, str) or not base_url.lower().startswith(("http://", "https://")):
        raise InvalidInputError(f"http_storage needs an http(s):// URL, got {base_url!r}")
    _import_optional("aiohttp", "http", "http_storage")
    return FsspecStorage(
        base_url.rstrip("/"),
        read_only=True,
        read_only_reason="HTTP storage has no writes",
        **policy,
    )
