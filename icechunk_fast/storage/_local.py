"""Local filesystem storage, safe for many processes committing at once.

- Every write goes to a hidden temporary file in the target's directory and is then
  renamed (``os.replace``) or hard-linked (``os.link``, for create-if-absent) into
  place, so no partially written object is ever visible under its final name.
- Compare-and-swap holds an exclusive ``flock`` on ``<root>/.lock`` while it compares
  the current object with the expected version and renames the new one in. Versions are
  content hashes, so the comparison needs no extra state on disk.
- Keys are checked by :func:`validate_key`; no user-supplied string becomes a path.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import StorageError
from ._base import ObjectNotFoundError, Storage, validate_key, validate_prefix
from ._utils import content_version

__all__ = ["LocalFileSystemStorage", "local_filesystem_storage"]


_INLINE_IO_BYTES = 1 << 20
_READ_THREADS = min(8, 2 * (os.cpu_count() or 1))
_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _read_pool() -> ThreadPoolExecutor:
    """A process-wide pool for big reads (made again in a forked child)."""
    global _pool
    pool = _pool
    if pool is None or pool[0] != os.getpid():
        with _pool_lock:
            pool = _pool
            if pool is None or pool[0] != os.getpid():
                executor = ThreadPoolExecutor(_READ_THREADS, thread_name_prefix="icechunk-read")
                pool = _pool = (os.getpid(), executor)
    return pool[1]


class LocalFileSystemStorage(Storage):
    """Objects as files under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self._root = str(self.root)
        self._made_dirs: set[str] = set()

    def __repr__(self) -> str:
        return f"LocalFileSystemStorage({str(self.root)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (LocalFileSystemStorage, (self._root,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalFileSystemStorage) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def _path(self, key: str) -> str:
        return f"{self._root}/{validate_key(key)}"

    # -- reads ------------------------------------------------------------------
    def _read(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"object {key!r} not found in {self.root}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        try:
            if end is None:
                end = os.fstat(fd).st_size
            want = max(0, end - start)
            data = os.pread(fd, want, start)
            if len(data) < want:  # short read: a range past the end, or a huge object
                parts = [data]
                pos = start + len(data)
                while pos < end:
                    more = os.pread(fd, end - pos, pos)
                    if not more:
                        break
                    parts.append(more)
                    pos += len(more)
                data = b"".join(parts)
            return data
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        finally:
            os.close(fd)

    def get(self, key: str) -> bytes:
        return self._read(key)

    def get_range(self, key: str, start: int, end: int | None) -> bytes:
        return self._read(key, start, end)

    def get_ranges(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        # Measured on 2 cores (page cache): reads of 1 MiB and more finish ~2x sooner on
        # a few threads (pread drops the GIL while it copies); 256 KiB reads and smaller
        # are 1.5-3x slower that way than one after another. So big ones go to threads.
        big = [i for i, (_, start, end) in enumerate(requests) if end - start >= _INLINE_IO_BYTES]
        if len(big) < 2:
            return [self._read(key, start, end) for key, start, end in requests]
        pool = _read_pool()
        pending = {i: pool.submit(self._read, *requests[i]) for i in big}
        out = [
            b"" if i in pending else self._read(key, start, end)
            for i, (key, start, end) in enumerate(requests)
        ]
        for i, future in pending.items():
            out[i] = future.result()
        return out

    def get_with_version(self, key: str) -> tuple[bytes, str]:
        data = self._read(key)
        return data, content_version(data)

    def size(self, key: str) -> int:
        try:
            return os.stat(self._path(key)).st_size
        except FileNotFoundError:
            raise ObjectNotFoundError(f"object {key!r} not found in {self.root}") from None

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        # Walk only the directory the prefix names, then filter by the rest.
        head, _, _ = prefix.rpartition("/")
        top = os.path.join(self.root, head) if head else str(self.root)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = os.path.relpath(dirpath, self.root)
            base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            for name in filenames:
                if name.startswith("."):
                    continue  # temp files and the lock
                key = base + name
                if key.startswith(prefix):
                    yield key

    # -- writes -----------------------------------------------------------------
    def _ensure_dir(self, directory: str) -> None:
        if directory not in self._made_dirs:
            os.makedirs(directory, exist_ok=True)
            self._made_dirs.add(directory)

    def _write_temp(self, path: str, data: bytes, *, durable: bool = False) -> str:
        directory, name = os.path.split(path)
        self._ensure_dir(directory)
        tmp = os.path.join(directory, f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:  # directory removed behind our back
            self._made_dirs.discard(directory)
            self._ensure_dir(directory)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def put(self, key: str, data: bytes) -> None:
        self._check_writable()
        path = self._path(key)
        try:
            os.replace(self._write_temp(path, data), path)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._check_writable()
        path = self._path(key)
        tmp = self._write_temp(path, data)
        try:
            os.link(tmp, path)  # atomic: fails if the name exists
        except FileExistsError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot create {path}: {exc}") from exc
        finally:
            os.unlink(tmp)
        return True

    def put_if_match(self, key: str, data: bytes, expected_version: str | None) -> str | None:
        self._check_writable()
        path = self._path(key)
        tmp = self._write_temp(path, data, durable=True)  # the commit point: make it stick
        try:
            with self._locked():
                try:
                    with open(path, "rb") as f:
                        current: str | None = content_version(f.read())
                except FileNotFoundError:
                    current = None
                if current != expected_version:
                    return None
                # No fsync of the directory: it would only make the newest swap survive
                # a power failure, and the objects that swap points to are not fsynced
                # either. The file fsync above is what matters: a torn repo info would
                # lose the whole history, a lost rename only the newest commit.
                os.replace(tmp, path)
                tmp = ""
        except OSError as exc:
            raise StorageError(f"cannot update {path}: {exc}") from exc
        finally:
            if tmp:
                os.unlink(tmp)
        return content_version(data)

    def delete(self, key: str) -> None:
        self._check_writable()
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r}: {exc}") from exc

    # -- helpers ----------------------------------------------------------------
    def _locked(self) -> _FileLock:
        self._ensure_dir(str(self.root))
        return _FileLock(os.path.join(self.root, ".lock"))

    # Local I/O of small objects is faster inline than through a thread hop (measured:
    # 25,000 puts of 1 KiB take 0.6 s inline on tmpfs and 3.4 s on ext4, but 5.5 s and
    # 4.4 s through asyncio.to_thread); big objects still go to a worker thread.
    async def get_async(self, key: str) -> bytes:
        return self.get(key)

    async def get_range_async(self, key: str, start: int, end: int | None) -> bytes:
        if end is not None and end - start > _INLINE_IO_BYTES:
            return await super().get_range_async(key, start, end)
        return self.get_range(key, start, end)

    async def get_ranges_async(self, requests: Sequence[tuple[str, int, int]]) -> Sequence[bytes]:
        if sum(end - start for _, start, end in requests) > _INLINE_IO_BYTES:
            return await super().get_ranges_async(requests)
        return self.get_ranges(requests)

    async def put_async(self, key: str, data: bytes) -> None:
        if len(data) > _INLINE_IO_BYTES:
            await super().put_async(key, data)
        else:
            self.put(key, data)


class _FileLock:
    """An exclusive ``flock`` held for the duration of a ``with`` block."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _FileLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def local_filesystem_storage(path: str | os.PathLike[str]) -> LocalFileSystemStorage:
    """Storage in a directory of the local (or a shared POSIX) filesystem.

    Commits from many processes on one machine are serialized with an exclusive file
    lock and atomic renames; no half-written object is ever visible.
    """
    return LocalFileSystemStorage(path)
