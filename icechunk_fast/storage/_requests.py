"""The request machinery of the remote storages: loop, limits, retries, errors.

Shared by :class:`~icechunk_fast.storage.FsspecStorage` and the object-store storages
(:mod:`._object_store`); a private module meant to be shared, so its names carry no
leading underscore.

How it runs
    Every request is a coroutine on one event loop per process: fsspec's own IO loop
    (``fsspec.asyn.get_loop()``), the loop async filesystems such as s3fs are bound to.
    Blocking methods submit to it with :func:`fsspec.asyn.sync`; the ``*_async`` twins
    hand the coroutine to it with :func:`asyncio.run_coroutine_threadsafe` and await the
    result from the caller's loop, so no event loop ever runs inside another. Clients
    without async support run on the same loop through :func:`asyncio.to_thread`.

Requests
    Each attempt holds a slot of a semaphore (``max_concurrent_requests``, 256 by
    default, per storage object) and may carry a timeout. Throttling (503 ``SlowDown``,
    429) and transient failures (connection reset, timeouts, 5xx) are retried with
    exponential backoff and jitter, at most ``max_tries`` attempts in all. The clients'
    own retry loops (botocore's, s3fs's) are turned off so that one policy applies.

Processes
    The client and the loop objects never cross a pickle or a fork: they live in a
    :class:`ProcessState`, made again (by the storage's ``_make_fs``) in a new process.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import threading
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import fsspec.asyn

from ..errors import IcechunkError, InvalidInputError, ReadOnlyError, StorageError
from ._base import ObjectNotFoundError, Storage, validate_key
from ._utils import gather_or_cancel

__all__ = [
    "POLICY_ARGUMENTS",
    "AsyncRequestStorage",
    "ProcessState",
    "RequestPolicy",
    "is_invalid_range",
    "is_precondition_failure",
    "is_transient",
]

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
class RequestPolicy:
    """How requests are limited, timed and retried (see the module docs)."""

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


#: The keyword arguments of :class:`RequestPolicy`, which every remote storage takes.
POLICY_ARGUMENTS = frozenset(RequestPolicy.__dataclass_fields__)


class ProcessState:
    """What must never cross a pickle or a fork: the live client and loop objects."""

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
    and the GCS and obstore storages' own.
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


def is_transient(exc: BaseException) -> bool:
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


def is_precondition_failure(exc: BaseException) -> bool:
    """True for the reply of a conditional write whose condition did not hold."""
    for e in _chain(exc):
        code, status = _response_error(e)
        if code in _PRECONDITION_CODES or status == 412:
            return True
    return False


def is_invalid_range(exc: BaseException) -> bool:
    """True for the reply to a range that starts past the end of the object."""
    for e in _chain(exc):
        code, status = _response_error(e)
        if code == "InvalidRange" or status == 416:
            return True
    return False


# -- the base of the remote storages ---------------------------------------------------
class AsyncRequestStorage(Storage):
    """A storage whose requests are coroutines run under one :class:`RequestPolicy`.

    Subclasses supply the client (:meth:`_make_fs`), their identity (:meth:`_location`)
    and the request coroutines ``_aget``, ``_aread_range``, ``_aget_with_version``,
    ``_asize``, ``_alist``, ``_aput``, ``_aput_if_match`` and ``_adelete``; this class
    turns them into the blocking and ``*_async`` methods of :class:`Storage`.

    Parameters
    ----------
    read_only
        Refuse every write with :class:`ReadOnlyError`.
    read_only_reason
        Said in the :class:`ReadOnlyError` of a refused write.
    **policy
        The arguments of :class:`RequestPolicy`.
    """

    is_remote = True
    _root: str = ""

    def __init__(
        self, *, read_only: bool = False, read_only_reason: str = "", **policy: Any
    ) -> None:
        self._policy = RequestPolicy(**policy)
        self._policy_kwargs = dict(policy)
        self.read_only = bool(read_only)
        self._read_only_reason = read_only_reason
        self._state_lock = threading.Lock()
        self._state: ProcessState | None = None  # the client is made at the first request

    # -- what a subclass supplies ----------------------------------------------------------
    @abstractmethod
    def _make_fs(self) -> Any:
        """A new client for this process (at the first request, after a fork or unpickle)."""

    @abstractmethod
    def _location(self) -> str:
        """Where the objects are, for the repr, equality and error messages."""

    @abstractmethod
    async def _aget(self, key: str) -> bytes: ...

    @abstractmethod
    async def _aread_range(self, key: str, start: int, end: int | None) -> bytes:
        """One ranged request for a valid, non-empty range; may return more bytes than
        asked (a server that ignores ``Range``), or fail with an invalid-range reply."""

    @abstractmethod
    async def _aget_with_version(self, key: str) -> tuple[bytes, str]: ...

    @abstractmethod
    async def _asize(self, key: str) -> int: ...

    @abstractmethod
    async def _alist(self, prefix: str) -> list[str]: ...

    @abstractmethod
    async def _aput(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    async def _aput_if_match(self, key: str, data: bytes, expected: str | None) -> str | None:
        """Write only if the current version is ``expected`` (None: only if absent)."""

    @abstractmethod
    async def _adelete(self, key: str) -> None: ...

    # -- per-process state -------------------------------------------------------------
    def _install(self, fs: Any) -> None:
        # async clients are bound to a loop (fsspec's, for the ones made with
        # asynchronous=False); everything else runs on fsspec's IO loop
        loop = fs.loop if getattr(fs, "async_impl", False) else fsspec.asyn.get_loop()
        self._state = ProcessState(fs, loop)

    def _current(self) -> ProcessState:
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
        """The client object (live; do not pickle it yourself)."""
        return self._current().fs

    @property
    def root(self) -> str:
        """The path under which keys live (``bucket/prefix`` on an object store)."""
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

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, AsyncRequestStorage)
            and other._location() == self._location()
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._location()))

    # -- running coroutines ------------------------------------------------------------
    def _run(self, coro_fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
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
                if tries < policy.max_tries and is_transient(exc):
                    await asyncio.sleep(policy.backoff(tries))
                    continue
                translated = self._translate(exc, what, key, tries)
                if translated is exc:
                    raise
                raise translated from exc

    def _translate(self, exc: BaseException, what: str, key: str, tries: int) -> BaseException:
        if isinstance(exc, IcechunkError):
            return exc
        if is_precondition_failure(exc):
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

    # -- coroutines shared by every backend --------------------------------------------
    async def _aget_range(self, key: str, start: int, end: int | None) -> bytes:
        validate_key(key)
        if start < 0 or (end is not None and end < 0):
            raise InvalidInputError(f"negative byte range {start}..{end}")
        if end is not None and end <= start:
            await self._asize(key)  # still a not-found error for a missing object
            return b""
        try:
            data = await self._aread_range(key, start, end)
        except StorageError as exc:
            if exc.__cause__ is not None and is_invalid_range(exc.__cause__):
                return b""  # the object exists but is shorter than ``start``
            raise
        if end is not None and len(data) > end - start:
            data = data[start:end]  # a server that ignored the Range header sent it all
        return data

    async def _aget_ranges(self, requests: Sequence[tuple[str, int, int]]) -> list[bytes]:
        """All ranged reads at once; each holds a slot of the semaphore while it runs."""
        return await gather_or_cancel(
            [self._aget_range(key, start, end) for key, start, end in requests]
        )

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
