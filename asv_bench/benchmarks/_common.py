"""Shared pieces of the asv suite: sizes, the three implementations, repo helpers.

Nothing here is a benchmark (no ``time_``/``peakmem_``/``track_`` names).
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import numpy as np
import zarr
import zarr.storage
from zarr.core.buffer import Buffer, default_buffer_prototype
from zarr.core.sync import sync

import icechunk_fast

os.environ.setdefault("ICECHUNK_LOG", "error")  # the real icechunk warns per local repo
try:  # the real icechunk (a Rust extension); optional
    import icechunk
except ImportError:  # pragma: no cover - depends on the environment
    icechunk = None

__all__ = [
    "FAST",
    "IC",
    "IMPLS",
    "N_REFS",
    "N_REFS_ICECHUNK",
    "PARAM_NAMES",
    "PROTO",
    "SCALE",
    "ZARR",
    "collect",
    "fill_refs",
    "get_one",
    "manifest_bytes",
    "n_refs",
    "new_repo",
    "new_tmpdir",
    "new_writable",
    "open_readonly",
    "open_repo",
    "ref_values",
    "refs_repo",
    "remove",
    "require",
    "scaled",
]

FAST, IC, ZARR = "icechunk_fast", "icechunk", "zarr_local"
IMPLS = [FAST, IC, ZARR]
PARAM_NAMES = ["impl"]
PROTO = default_buffer_prototype()


def _read_scale() -> float:
    raw = os.environ.get("ICECHUNK_FAST_BENCH_SCALE", "1.0")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"ICECHUNK_FAST_BENCH_SCALE must be a positive number, got {raw!r}"
        ) from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"ICECHUNK_FAST_BENCH_SCALE must be a positive number, got {raw!r}")
    return value


#: Multiplies every workload size; read once, when the suite is imported.
SCALE = _read_scale()


def scaled(n: float, minimum: int = 1) -> int:
    """``n * SCALE`` rounded, and at least ``minimum``."""
    return max(minimum, round(n * SCALE))


# -- implementations ----------------------------------------------------------------
def require(impl: str, *, repo: bool = False) -> None:
    """Raise ``NotImplementedError`` (asv: skipped) when ``impl`` cannot run here.

    ``repo=True`` marks a workload that exists only for a repository (commits, chunk
    refs, manifests), so zarr's LocalStore is skipped too.
    """
    if impl not in IMPLS:
        raise ValueError(f"unknown implementation {impl!r}; expected one of {IMPLS}")
    if impl == IC and icechunk is None:
        raise NotImplementedError("icechunk is not importable in this environment")
    if repo and impl == ZARR:
        raise NotImplementedError("zarr LocalStore has no commits, chunk refs or manifests")


def _module(impl: str) -> Any:
    return icechunk_fast if impl == FAST else icechunk


def _config(impl: str, no_inline: bool) -> Any:
    if not no_inline:
        return None
    return _module(impl).RepositoryConfig(inline_chunk_threshold_bytes=0)


def new_repo(impl: str, path: str, *, no_inline: bool = False) -> Any:
    """A new repository on local disk at ``path`` (not for zarr's LocalStore)."""
    mod = _module(impl)
    return mod.Repository.create(mod.local_filesystem_storage(path), _config(impl, no_inline))


def new_writable(impl: str, path: str, *, no_inline: bool = False) -> tuple[Any, Any]:
    """``(store, session or None)`` over a new repository / directory at ``path``."""
    if impl == ZARR:
        return zarr.storage.LocalStore(path), None
    session = new_repo(impl, path, no_inline=no_inline).writable_session("main")
    return session.store, session


def open_repo(impl: str, path: str) -> Any:
    """``Repository.open`` of the repository on local disk at ``path``."""
    mod = _module(impl)
    return mod.Repository.open(mod.local_filesystem_storage(path))


def open_readonly(impl: str, path: str) -> Any:
    """A read-only store over ``path``, opened from scratch (no warm caches)."""
    if impl == ZARR:
        return zarr.storage.LocalStore(path, read_only=True)
    return open_repo(impl, path).readonly_session(branch="main").store


def new_tmpdir(what: str) -> str:
    """A new directory in the temp dir (``$TMPDIR`` or ``/tmp``)."""
    return tempfile.mkdtemp(prefix=f"icf_asv_{what}_")


def remove(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


async def _drain(it: AsyncIterator[str]) -> list[str]:
    return [item async for item in it]


def collect(it: AsyncIterator[str]) -> list[str]:
    """Every item of a store's async iterator (``list_dir`` etc.), from sync code."""
    return sync(_drain(it))


# -- many chunk refs (workloads 4, 5, 9, 10) ----------------------------------------
#: Refs written to the real icechunk, whose store has no ``set_sync``: its async ``set``
#: costs ~250 us per ref on local disk (one file per chunk), so 1,000,000 would take
#: minutes. Its ref benchmarks use this many instead (see each docstring).
N_REFS = scaled(1_000_000, 100)
N_REFS_ICECHUNK = scaled(50_000, 100)
IC_SET_BATCH = 1000


def n_refs(impl: str) -> int:
    return N_REFS_ICECHUNK if impl == IC else N_REFS


def ref_values(n: int) -> bytes:
    """``n`` little-endian int64 values ``1..n``: chunk ``i`` holds ``i + 1``."""
    return (np.arange(n, dtype="<i8") + 1).tobytes()


def refs_repo(impl: str, path: str, n: int) -> tuple[Any, Any]:
    """``(session, store)`` of a new repo with an empty array ``r`` of ``n`` 8-byte chunks.

    ``inline_chunk_threshold_bytes=0``: every chunk becomes a native ref, not inline.
    """
    store, session = new_writable(impl, path, no_inline=True)
    zarr.create_array(
        store, name="r", shape=(n,), chunks=(1,), dtype="<i8", compressors=None, fill_value=0
    )
    return session, store


def fill_refs(
    impl: str, store: Any, raw: bytes, n: int, order: Sequence[int] | None = None
) -> None:
    """Write chunks ``r/c/0 .. r/c/{n-1}`` (in ``order`` if given), ``set_sync`` if present.

    The real icechunk store has no ``set_sync``: its async ``set`` is gathered
    ``IC_SET_BATCH`` at a time in one ``zarr.core.sync.sync`` call.
    """
    from_bytes = PROTO.buffer.from_bytes
    indices: Sequence[int] = range(n) if order is None else order
    set_sync = getattr(store, "set_sync", None)
    if set_sync is not None:
        for i in indices:
            set_sync(f"r/c/{i}", from_bytes(raw[8 * i : 8 * i + 8]))
        return

    async def fill() -> None:
        for lo in range(0, n, IC_SET_BATCH):
            await asyncio.gather(
                *(
                    store.set(f"r/c/{i}", from_bytes(raw[8 * i : 8 * i + 8]))
                    for i in indices[lo : lo + IC_SET_BATCH]
                )
            )

    sync(fill())


def get_one(store: Any, key: str) -> Buffer | None:
    """One ``store.get``: ``get_sync`` where the store has it, else through ``sync``."""
    get_sync = getattr(store, "get_sync", None)
    if get_sync is not None:
        return get_sync(key, prototype=PROTO)
    return sync(store.get(key, PROTO))


def manifest_bytes(path: str) -> tuple[int, int]:
    """``(total bytes, file count)`` under ``<path>/manifests`` on disk."""
    total = count = 0
    for dirpath, _, filenames in os.walk(os.path.join(path, "manifests")):
        for name in filenames:
            if name.startswith("."):
                continue  # a temporary file of an unfinished write
            total += os.path.getsize(os.path.join(dirpath, name))
            count += 1
    return total, count


def build_per_impl(name: str, build: Callable[[str, str], object]) -> dict[str, str]:
    """Run ``build(impl, path)`` for every importable implementation (in asv's cwd).

    For ``setup_cache``: returns ``{impl: absolute path}`` of what was built.
    """
    paths = {}
    for impl in IMPLS:
        try:
            require(impl)
        except NotImplementedError:
            continue
        path = os.path.abspath(f"{name}-{impl}")
        build(impl, path)
        paths[impl] = path
    return paths
